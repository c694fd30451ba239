"""ClusterMesh policy semantics (cilium_verdicts/mesh.py), from Cilium 1.18.10's documentation and source.

Sources, read at v1.18.10 (cilium/cilium commit 6bf2fe83d2fce50283b702d96c6190f7693dc224, "Prepare for
release v1.18.10", VERSION 1.18.10; the same commit tests/reference/cilium/README.md names):
- MESH = Documentation/network/clustermesh/policy.rst (docs.cilium.io/en/v1.18/network/clustermesh/policy/):
  "Note that Kubernetes security policies are not automatically distributed across clusters, it is
  your responsibility to apply ``CiliumNetworkPolicy`` or ``NetworkPolicy`` in all clusters."
  "Note that by default policies automatically select endpoints from all the clusters unless it is
  explicitly specified. To restrict endpoint selection to the local cluster by default you can enable
  the option ``--policy-default-local-cluster`` via the ConfigMap option ``policy-default-local-cluster``
  or the Helm value ``clustermesh.policyDefaultLocalCluster``."
  "The following policy illustrates how to explicitly allow pods to communicate to all clusters."
  (allow-cross-cluster-any: ``matchExpressions: [{key: io.cilium.k8s.policy.cluster, operator: Exists}]``)
- OPTION = pkg/clustermesh/types/option.go: ``PolicyDefaultLocalCluster: false`` by default;
  LocalClusterNameForPolicies returns the local name only when it is set.
- NP = pkg/k8s/network_policy.go parseNetworkPolicyPeer: "The PodSelector should only reflect to the
  configured cluster unless the selector explicitly targets another cluster already" (checked with
  isPodSelectorSelectingCluster): NetworkPolicy peers follow the same rule as CNP peers
  (pkg/k8s/apis/cilium.io/utils/utils.go addClusterFilterByDefault).
- ENTITY = pkg/policy/api/entity.go InitEntities: the ``cluster`` entity's selectors are host,
  remote-node, init, ingress, health, unmanaged, kube-apiserver and
  ``k8s:io.cilium.k8s.policy.cluster=<local cluster name>``.
- LB = Documentation/network/clustermesh/services.rst: "Establishing load-balancing between clusters is
  achieved by defining a Kubernetes service with identical name and namespace in each cluster and
  adding the annotation ``service.cilium.io/global: "true"`` to declare it global. Cilium will
  automatically perform load-balancing to pods in both clusters." and "Below example will expose
  remote endpoint without sharing local endpoints." (``service.cilium.io/shared: "false"``)
Expected values were written from these texts before running the evaluator.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from .conftest import (
    ALLOWED,
    DEFAULT_DENY,
    NA,
    check,
    deployment,
    docs_yaml,
    netpol,
    service,
)

ALLOW_CROSS_CLUSTER = """
    apiVersion: "cilium.io/v2"
    kind: CiliumNetworkPolicy
    metadata:
      name: "allow-cross-cluster"
    spec:
      description: "Allow x-wing to be deployed in the local cluster to contact rebel-base in cluster2"
      endpointSelector:
        matchLabels:
          name: x-wing
      egress:
      - toEndpoints:
        - matchLabels:
            name: rebel-base
            io.cilium.k8s.policy.cluster: cluster2
    """
ALLOW_CROSS_CLUSTER_ANY = """
    apiVersion: "cilium.io/v2"
    kind: CiliumNetworkPolicy
    metadata:
      name: "allow-cross-cluster-any"
    spec:
      description: "Allow x-wing to be deployed in the local cluster to contact rebel-base in any cluster"
      endpointSelector:
        matchLabels:
          name: x-wing
      egress:
      - toEndpoints:
        - matchLabels:
            name: rebel-base
          matchExpressions:
            - key: io.cilium.k8s.policy.cluster
              operator: Exists
    """
# The same policy without naming clusters in the peer (MESH: "unless it is explicitly specified").
ALLOW_ANY_CLUSTER = """
    apiVersion: "cilium.io/v2"
    kind: CiliumNetworkPolicy
    metadata:
      name: "allow-rebel-base"
    spec:
      endpointSelector:
        matchLabels:
          name: x-wing
      egress:
      - toEndpoints:
        - matchLabels:
            name: rebel-base
    """


def mesh_of(clusters: dict, local: bool = False):
    from cilium_verdicts.mesh import Mesh
    return Mesh.from_objects(clusters, policy_default_local_cluster=local)


def starwars(*extra_1, extra_2=()):
    """The docs' two clusters: x-wing and rebel-base in both (as the ClusterMesh getting-started does)."""
    app = [deployment("x-wing", labels={"name": "x-wing"}, ports=(80,)),
           deployment("rebel-base", labels={"name": "rebel-base"}, ports=(80,))]
    return {"cluster1": [*app, *extra_1], "cluster2": [*app, *extra_2]}


def probe(m, source, to, port=80, **kw):
    from cilium_verdicts import Probe
    return m.evaluate(Probe(source=source, to=to, port=port, **kw))[1]


def test_ids_carry_the_cluster():
    """Multi-cluster results name workloads ns/name@cluster; each pod carries Cilium's cluster label."""
    m = mesh_of(starwars())
    view = m.views["cluster1"]
    assert sorted(w.key for w in view.workloads.values() if not w.builtin) == [
        "default/rebel-base@cluster1", "default/rebel-base@cluster2", "default/x-wing@cluster1",
        "default/x-wing@cluster2"]
    assert view.workload("default/x-wing@cluster2").labels["io.cilium.k8s.policy.cluster"] == "cluster2"
    assert view.workload("default/x-wing@cluster2").cilium_labels["io.cilium.k8s.policy.cluster"] == "cluster2"
    pairs = m.all_pairs()
    assert {(p.source, p.to) for p, _ in pairs} >= {("default/x-wing@cluster1", "default/rebel-base@cluster2")}
    assert all(v.verdict == "allow" for _, v in pairs)  # no policy anywhere: everything flows


def test_allow_cross_cluster_selects_only_the_named_cluster():
    """MESH "Allowing Specific Communication Between Clusters": "Allow x-wing to be deployed in the local
    cluster to contact rebel-base in cluster2" - applied in cluster1; its egress now being default-deny,
    x-wing may reach nothing else."""
    m = mesh_of(starwars(*docs_yaml(ALLOW_CROSS_CLUSTER, "default")))
    check(probe(m, "default/x-wing@cluster1", "default/rebel-base@cluster2"), "allow", ALLOWED, ALLOWED)
    check(probe(m, "default/x-wing@cluster1", "default/rebel-base@cluster1"), "drop", DEFAULT_DENY, NA)
    # applied in cluster1 only: x-wing of cluster2 is selected by nothing (MESH: not distributed)
    check(probe(m, "default/x-wing@cluster2", "default/rebel-base@cluster1"), "allow", ALLOWED, ALLOWED)


def test_applied_in_cluster2_the_policy_selects_x_wing_of_cluster2_only():
    """MESH: policies are "not automatically distributed across clusters": applied only in cluster2
    ("the local cluster" is then cluster2), it selects cluster2's x-wing, which may reach rebel-base of
    cluster2 only; cluster1's x-wing is selected by nothing."""
    m = mesh_of(starwars(extra_2=docs_yaml(ALLOW_CROSS_CLUSTER, "default")))
    check(probe(m, "default/x-wing@cluster1", "default/rebel-base@cluster1"), "allow", ALLOWED, ALLOWED)
    check(probe(m, "default/x-wing@cluster2", "default/rebel-base@cluster2"), "allow", ALLOWED, ALLOWED)
    check(probe(m, "default/x-wing@cluster2", "default/rebel-base@cluster1"), "drop", DEFAULT_DENY, NA)


@pytest.mark.parametrize("local", [False, True])
def test_allow_cross_cluster_any_reaches_every_cluster_with_either_default(local):
    """MESH: "how to explicitly allow pods to communicate to all clusters": the key named with Exists
    keeps every cluster even with clustermesh.policyDefaultLocalCluster (utils.go: the filter is added
    only when the selector lacks the key)."""
    m = mesh_of(starwars(*docs_yaml(ALLOW_CROSS_CLUSTER_ANY, "default")), local=local)
    check(probe(m, "default/x-wing@cluster1", "default/rebel-base@cluster1"), "allow", ALLOWED, ALLOWED)
    check(probe(m, "default/x-wing@cluster1", "default/rebel-base@cluster2"), "allow", ALLOWED, ALLOWED)


def test_peers_select_every_cluster_by_default():
    """MESH: "by default policies automatically select endpoints from all the clusters unless it is
    explicitly specified" (Cilium 1.18)."""
    m = mesh_of(starwars(*docs_yaml(ALLOW_ANY_CLUSTER, "default")))
    check(probe(m, "default/x-wing@cluster1", "default/rebel-base@cluster1"), "allow", ALLOWED, ALLOWED)
    check(probe(m, "default/x-wing@cluster1", "default/rebel-base@cluster2"), "allow", ALLOWED, ALLOWED)


def test_policy_default_local_cluster_restricts_peers():
    """MESH: with clustermesh.policyDefaultLocalCluster the option "restrict[s] endpoint selection to
    the local cluster by default"; a peer that names the cluster keeps it."""
    m = mesh_of(starwars(*docs_yaml(ALLOW_ANY_CLUSTER, "default")), local=True)
    check(probe(m, "default/x-wing@cluster1", "default/rebel-base@cluster1"), "allow", ALLOWED, ALLOWED)
    v = probe(m, "default/x-wing@cluster1", "default/rebel-base@cluster2")
    check(v, "drop", DEFAULT_DENY, NA)
    assert any("cluster cluster1 only" in line for line in v.why), v.why
    named = mesh_of(starwars(*docs_yaml(ALLOW_CROSS_CLUSTER, "default")), local=True)
    check(probe(named, "default/x-wing@cluster1", "default/rebel-base@cluster2"), "allow", ALLOWED, ALLOWED)


def test_network_policy_is_not_distributed():
    """MESH: "Kubernetes security policies are not automatically distributed across clusters": a
    NetworkPolicy default deny applied in cluster1 isolates cluster1's pods only."""
    deny = netpol("default-deny", "default", podSelector={})
    m = mesh_of(starwars(deny))
    check(probe(m, "default/x-wing@cluster2", "default/rebel-base@cluster1"), "drop", ALLOWED, DEFAULT_DENY)
    check(probe(m, "default/x-wing@cluster1", "default/rebel-base@cluster2"), "allow", ALLOWED, ALLOWED)


@pytest.mark.parametrize("local, remote_allowed", [(False, True), (True, False)])
def test_network_policy_peers_follow_the_same_default(local, remote_allowed):
    """NP: a NetworkPolicy podSelector peer gets the local cluster only with
    policy-default-local-cluster; in 1.18's default it selects matching pods of every cluster."""
    allow = netpol("allow-xwing", "default", podSelector={"matchLabels": {"name": "rebel-base"}},
                   ingress=[{"from": [{"podSelector": {"matchLabels": {"name": "x-wing"}}}]}])
    m = mesh_of(starwars(allow), local=local)
    check(probe(m, "default/x-wing@cluster1", "default/rebel-base@cluster1"), "allow", ALLOWED, ALLOWED)
    v = probe(m, "default/x-wing@cluster2", "default/rebel-base@cluster1")
    check(v, "allow" if remote_allowed else "drop", ALLOWED, ALLOWED if remote_allowed else DEFAULT_DENY)


def test_network_policy_peer_naming_the_cluster():
    """NP: "unless the selector explicitly targets another cluster already": a podSelector naming
    io.cilium.k8s.policy.cluster selects that cluster's pods, with or without the option."""
    allow = netpol("allow-remote-xwing", "default", podSelector={"matchLabels": {"name": "rebel-base"}},
                   ingress=[{"from": [{"podSelector": {"matchLabels": {
                       "name": "x-wing", "io.cilium.k8s.policy.cluster": "cluster2"}}}]}])
    for local in (False, True):
        m = mesh_of(starwars(allow), local=local)
        check(probe(m, "default/x-wing@cluster2", "default/rebel-base@cluster1"), "allow", ALLOWED, ALLOWED)
        check(probe(m, "default/x-wing@cluster1", "default/rebel-base@cluster1"), "drop", ALLOWED, DEFAULT_DENY)


def test_cluster_entity_is_the_local_cluster():
    """ENTITY: toEntities cluster selects the local cluster's endpoints only; ``all`` every one."""
    to_cluster = docs_yaml("""
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: {name: to-cluster}
        spec:
          endpointSelector: {matchLabels: {name: x-wing}}
          egress:
          - toEntities: [cluster]
        """, "default")
    m = mesh_of(starwars(*to_cluster))
    check(probe(m, "default/x-wing@cluster1", "default/rebel-base@cluster1"), "allow", ALLOWED, ALLOWED)
    check(probe(m, "default/x-wing@cluster1", "default/rebel-base@cluster2"), "drop", DEFAULT_DENY, NA)
    to_all = [dict(to_cluster[0], spec={**to_cluster[0]["spec"], "egress": [{"toEntities": ["all"]}]})]
    m = mesh_of(starwars(*to_all))
    check(probe(m, "default/x-wing@cluster1", "default/rebel-base@cluster2"), "allow", ALLOWED, ALLOWED)


def test_global_service_reaches_the_other_cluster():
    """LB: a Service of the same name and namespace in each cluster, annotated global, load-balances
    to pods of both clusters; a Service without the annotation stays local (lookup by name goes to
    the client's own kube-dns)."""
    def svc(glob):
        s = service("rebel-base", "default", {"name": "rebel-base"}, [80])
        if glob:
            s["metadata"]["annotations"] = {"service.cilium.io/global": "true"}
        return s
    only_there = {"cluster1": [deployment("x-wing", labels={"name": "x-wing"}), svc(True)],
                  "cluster2": [deployment("rebel-base", labels={"name": "rebel-base"}, ports=(80,)), svc(True)]}
    m = mesh_of(only_there)
    check(probe(m, "default/x-wing@cluster1", "default/rebel-base@cluster2", via="service-name"), "allow")
    local_only = {"cluster1": [deployment("x-wing", labels={"name": "x-wing"}), svc(False)],
                  "cluster2": [deployment("rebel-base", labels={"name": "rebel-base"}, ports=(80,)), svc(False)]}
    from cilium_verdicts import PolicyInputError
    with pytest.raises(PolicyInputError, match="no Service"):
        probe(mesh_of(local_only), "default/x-wing@cluster1", "default/rebel-base@cluster2", via="service-name")


def test_a_global_service_that_does_not_share_exposes_remote_backends_only():
    """LB: ``service.cilium.io/shared: "false"`` in cluster1 "will expose remote endpoint without sharing
    local endpoints": cluster1's clients reach cluster2's pod through it, cluster2's clients never reach
    cluster1's pod through cluster2's global service."""
    def svc(shared):
        s = service("rebel-base", "default", {"name": "rebel-base"}, [80])
        s["metadata"]["annotations"] = {"service.cilium.io/global": "true", **({} if shared else {
            "service.cilium.io/shared": "false"})}
        return s
    base = [deployment("x-wing", labels={"name": "x-wing"}), deployment("rebel-base", labels={"name": "rebel-base"},
                                                                          ports=(80,))]
    m = mesh_of({"cluster1": [*base, svc(False)], "cluster2": [*base, svc(True)]})
    view1, view2 = m.views["cluster1"], m.views["cluster2"]
    assert sorted(view1.services["default/rebel-base"].backends) == ["default/rebel-base@cluster1",
                                                                     "default/rebel-base@cluster2"]
    assert sorted(view2.services["default/rebel-base"].backends) == ["default/rebel-base@cluster2"]
    from cilium_verdicts import PolicyInputError
    with pytest.raises(PolicyInputError, match="no Service"):
        probe(m, "default/x-wing@cluster2", "default/rebel-base@cluster1", via="service-name")
    check(probe(m, "default/x-wing@cluster1", "default/rebel-base@cluster2", via="service-name"), "allow")


def test_bad_cluster_name_is_refused():
    from cilium_verdicts import PolicyInputError
    for bad in ("Cluster_1", "-a", "a-", "a" * 33):  # types.go: ^([a-z0-9][-a-z0-9]*)?[a-z0-9]$, at most 32
        with pytest.raises(PolicyInputError, match="cluster name"):
            mesh_of({bad: []})
    assert sorted(mesh_of({"a": [], "a" * 32: []}).views) == ["a", "a" * 32]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "model", "verdicts", *args], capture_output=True, text=True)


def test_cli_cluster_flags(tmp_path):
    """``verdicts --cluster NAME=PATH`` (repeatable) loads each cluster; ids carry @cluster;
    ``--policy-default-local-cluster`` follows the Helm value."""
    clusters = starwars(*docs_yaml(ALLOW_ANY_CLUSTER, "default"))
    for name, objs in clusters.items():
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump_all(objs))
    args = [f"--cluster=cluster1={tmp_path / 'cluster1.yaml'}", f"--cluster=cluster2={tmp_path / 'cluster2.yaml'}",
            "--format", "json"]
    run = run_cli(*args)
    assert run.returncode == 0, run.stderr
    cells = {(c["from"], c["to"]): c["verdict"] for c in json.loads(run.stdout)["cells"]}
    assert cells[("default/x-wing@cluster1", "default/rebel-base@cluster2")] == "allow"
    run = run_cli(*args, "--policy-default-local-cluster")
    cells = {(c["from"], c["to"]): c["verdict"] for c in json.loads(run.stdout)["cells"]}
    assert cells[("default/x-wing@cluster1", "default/rebel-base@cluster2")] == "drop"
    assert cells[("default/x-wing@cluster1", "default/rebel-base@cluster1")] == "allow"
    run = run_cli(*args, "--explain", "x-wing@cluster1", "default/rebel-base@cluster2:80",
                  "--policy-default-local-cluster")
    assert run.returncode == 0 and "drop" in run.stdout, run.stdout + run.stderr
    bad = run_cli("--cluster", "cluster1")
    assert bad.returncode == 2 and "NAME=PATH" in bad.stderr and not bad.stdout
    both = run_cli("-f", str(tmp_path), f"--cluster=cluster1={tmp_path / 'cluster1.yaml'}")
    assert both.returncode == 2 and "do not combine" in both.stderr
