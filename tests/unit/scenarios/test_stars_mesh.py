"""stars-mesh (seed 003 as written: two clusters, ClusterMesh): every stage reproduces the seed's outcome.

Sources, quoted next to each expectation (written from the texts, not from the code):
- SEED = /work/shared/seeds/003_*.txt. Placement: "we deploy the `frontend` and `backend` of the "stars"
  in the on-premises CCP tenant cluster and `client` and `management-ui` services in the EKS cluster"
  (contexts `ccp` and `aws`). Final result: "`client` is an allowed client of `frontend`; `frontend` is
  an allowed client of `backend`; `management-ui` is an allowed client of all the services (to collect
  data)", "C allowed client to F, and F allowed client to B", "the same effective policy as the
  original Calico Stars Demo".
- EKS / Calico tutorial for the intermediate stages, as in test_stars.py.
- K8S = kubernetes.io network-policies: "By default, a pod is non-isolated for ingress": nothing
  isolates the management-ui pod, so requests TO it stay allowed.
- MESH = docs.cilium.io "Cluster Mesh / Network Policy" (1.18): "by default policies automatically
  select endpoints from all the clusters unless it is explicitly specified".
"""
from __future__ import annotations

import ipaddress
import re

import pytest
import yaml

from cilium_verdicts.mesh import Mesh
from model import clustermesh, lint
from model.settings import SettingsError, load_settings
from scenarios import PACKS, _seed, stars, stars_mesh
from tests.validation import (
    require_reference,
    unknown_helm_keys,
    validate_core,
    validate_helm_values,
)

C, F, B, M = "client/client@aws", "stars/frontend@ccp", "stars/backend@ccp", "management-ui/management-ui@aws"
PAIRS = [(s, d) for s in (C, F, B, M) for d in (C, F, B, M) if s != d]
STAGE_NAMES = ["open", "default-deny", "backend-policy", "allow-ui", "frontend-policy"]
TO_MGMT = ("K8S: management-ui is selected by no policy (seed and original), so it accepts everything",
           {(C, M), (F, M), (B, M)})
ALLOWED: dict[str, list[tuple[str, set]]] = {
    "open": [('SEED: "When accessing the UI with no network-policies applied"; EKS: "Before you create any '
              'network policies, all services can communicate bidirectionally"', set(PAIRS))],
    "default-deny": [TO_MGMT],
    "backend-policy": [('Calico tutorial step 4: "The frontend can now access the backend (on TCP port 6379 '
                        'only)..."', {(F, B)}), TO_MGMT],
    "allow-ui": [('EKS: "the management user interface can reach the nodes again"', {(M, C), (M, F), (M, B)}),
                 ('SEED: "Allow frontend as client of backend" (kept)', {(F, B)}), TO_MGMT],
    "frontend-policy": [('SEED: "C allowed client to F, and F allowed client to B"', {(C, F), (F, B)}),
                        ('SEED: "`management-ui` is an allowed client of all the services (to collect data)"',
                         {(M, C), (M, F), (M, B)}), TO_MGMT],
}
# The ports of the seed's final result: "client -> frontend :80, frontend -> backend :6379" (the Stars
# manifests' containerPorts; frontend-policy "port: 80", backend-policy "port: 6379").
FINAL_PORTS = {(C, F): 80, (F, B): 6379}


def stage(name):
    return next(s for s in stars_mesh.stages(None) if s.name == name)


def mesh(name):
    return Mesh.from_objects(stars_mesh.cluster_objects(None, stage(name)),
                             policy_default_local_cluster=stars_mesh.POLICY_DEFAULT_LOCAL_CLUSTER)


def allowed(name):
    return set().union(*(pairs for _, pairs in ALLOWED[name]))


def test_stage_names_are_the_stars_names_in_seed_order():
    assert [s.name for s in stars_mesh.stages(None)] == STAGE_NAMES == list(ALLOWED)


def test_placement_is_the_seeds():
    """SEED: frontend and backend on ccp, client and management-ui on aws."""
    per = stars_mesh.cluster_workloads(None)
    deployments = {c: sorted(f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in objs
                             if o["kind"] == "Deployment") for c, objs in per.items()}
    assert deployments == {"ccp": ["stars/backend", "stars/frontend"],
                           "aws": ["client/client", "management-ui/management-ui"]}


@pytest.mark.parametrize("name", STAGE_NAMES)
def test_every_stage_gives_the_seeds_result_across_the_mesh(name):
    """Every ordered pair of the four workloads, on every declared port, by pod IP across clusters."""
    results = mesh(name).all_pairs()
    got = {(p.source, p.to) for p, v in results if v.verdict == "allow"}
    assert {(p.source, p.to) for p, _ in results} == set(PAIRS)
    assert got == allowed(name), "\n".join(why for why, _ in ALLOWED[name])


def test_final_stage_ports_and_nothing_else():
    """SEED's final result with its ports: client -> frontend :80, frontend -> backend :6379,
    management-ui -> all three; among the three services nothing else."""
    m = mesh("frontend-policy")
    from cilium_verdicts import Probe
    for (src, dst), port in FINAL_PORTS.items():
        assert m.evaluate(Probe(src, dst, port))[1].verdict == "allow"
        assert m.evaluate(Probe(src, dst, port + 1))[1].verdict == "drop"
    services = {C, F, B}
    got = {(p.source, p.to) for p, v in m.all_pairs() if v.verdict == "allow" and p.to in services}
    assert got == {(C, F), (F, B), (M, C), (M, F), (M, B)}


@pytest.mark.parametrize("name", STAGE_NAMES)
def test_the_apps_own_requests_by_global_service_name(name):
    """The star-probes' requests (service names resolved in the caller's cluster, to the global
    Service's backend in the other) give the same picture."""
    m = mesh(name)
    results = [m.evaluate(lp.traffic) for lp in stars_mesh.probes(None, stage(name))]
    assert all(p.via == "service-name" for p, _ in results)
    got = {(p.source, p.to) for p, v in results if v.verdict == "allow"}
    assert got == {(p.source, p.to) for p, _ in results} & allowed(name)


def test_without_the_cluster_label_a_peer_would_admit_the_other_cluster():
    """MESH: peers select every cluster unless they name it. Dropping the cluster label from
    backend-policy's peer lets a frontend-labelled pod of the *other* cluster in: that is why every
    mesh policy names io.cilium.k8s.policy.cluster."""
    st = stage("frontend-policy")
    objs = stars_mesh.cluster_objects(None, st)
    impostor = next(o for o in objs["ccp"] if o["kind"] == "Deployment" and o["metadata"]["name"] == "frontend")
    objs["aws"].append(impostor)
    from cilium_verdicts import Probe
    assert Mesh.from_objects(objs).evaluate(Probe("stars/frontend@aws", B, 6379))[1].verdict == "drop"
    for o in objs["ccp"]:
        if o["metadata"]["name"] == "backend-policy":
            del o["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["io.cilium.k8s.policy.cluster"]
    assert Mesh.from_objects(objs).evaluate(Probe("stars/frontend@aws", B, 6379))[1].verdict == "allow"


_IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?\b")


def test_no_ip_address_in_any_policy():
    """Every policy of every stage names identities: no ipBlock/CIDR peer and no IPv4 text at all."""
    for st in stars_mesh.stages(None):
        for obj in st.objects:
            text = yaml.safe_dump(obj)
            assert not _IPV4.search(text), (st.name, obj["metadata"]["name"])
            assert not re.search(r"ipBlock|CIDR|cidr", text), (st.name, obj["metadata"]["name"])
    for key in _seed.keys(stars_mesh.NAME):
        body = "\n".join(ln for ln in _seed.path(stars_mesh.NAME, key).read_text().splitlines()
                         if not ln.startswith("#"))
        assert not _IPV4.search(body) and "ipBlock" not in body, key


def test_every_peer_names_its_cluster():
    for st in stars_mesh.stages(None):
        for obj in st.objects:
            for rule in obj["spec"].get("ingress") or []:
                for peer in rule.get("from") or []:
                    assert peer["podSelector"]["matchLabels"]["io.cilium.k8s.policy.cluster"] in stars_mesh.CLUSTERS


def test_policies_are_applied_in_the_seeds_contexts():
    """SEED: default-deny "-n stars --context ccp" and "-n client --context aws"; backend-policy, allow-ui
    (stars) and frontend-policy --context ccp; allow-ui (client) --context aws."""
    per = dict(stage("frontend-policy").clusters)
    names = {c: sorted(f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in objs) for c, objs in per.items()}
    assert names == {"ccp": ["stars/allow-ui", "stars/backend-policy", "stars/default-deny", "stars/frontend-policy"],
                     "aws": ["client/allow-ui", "client/default-deny"]}


def test_objects_are_valid_and_lint_clean():
    require_reference()
    for c, objs in stars_mesh.cluster_workloads(None).items():
        for obj in objs:
            assert validate_core(obj) == [], (c, obj["kind"], obj["metadata"])
    for st in stars_mesh.stages(None):
        for c, objs in st.clusters:
            for obj in objs:
                assert validate_core(obj) == [], (st.name, obj["metadata"])
            assert lint.check(list(objs)) == [], (st.name, c)


SETTINGS = load_settings({"operatorCidr": "198.51.100.7/32"}, resolve_operator_cidr=False)


def test_clustermesh_helm_values_validate_against_the_chart_schema():
    require_reference()
    values = clustermesh.all_helm_values(SETTINGS, stars_mesh)
    for cluster, v in values.items():
        assert validate_helm_values(v) == [], cluster
        assert unknown_helm_keys(v) == [], cluster
    ids = {v["cluster"]["id"] for v in values.values()}
    names = {v["cluster"]["name"] for v in values.values()}
    cidrs = [ipaddress.ip_network(v["ipam"]["operator"]["clusterPoolIPv4PodCIDRList"][0]) for v in values.values()]
    assert names == {"ccp", "aws"} and len(ids) == 2 and all(1 <= i <= 255 for i in ids)
    assert not cidrs[0].overlaps(cidrs[1])
    for cluster, v in values.items():
        assert v["clustermesh"]["useAPIServer"] is True
        assert v["clustermesh"]["policyDefaultLocalCluster"] is stars_mesh.POLICY_DEFAULT_LOCAL_CLUSTER
        assert [p["name"] for p in v["clustermesh"]["config"]["clusters"]] == [c for c in ("ccp", "aws") if c != cluster]
        assert v["clustermesh"]["apiserver"]["tls"]["auto"]["method"] == "helm"
    # one CA for the mesh: both releases carry the same tls.ca
    assert values["ccp"]["tls"]["ca"] == values["aws"]["tls"]["ca"]
    # the agent dials https://<address>:<port> and verifies the peer's server certificate, whose names are
    # "clustermesh-apiserver.cilium.io", "*.mesh.cilium.io", "clustermesh-apiserver.<ns>.svc" + extraDnsNames
    # (chart v1.18.10 templates/clustermesh-config/_helpers.tpl, clustermesh-apiserver/tls-helm/server-secret.yaml)
    for cluster, v in values.items():
        for peer in v["clustermesh"]["config"]["clusters"]:
            names = ["clustermesh-apiserver.cilium.io", "*.mesh.cilium.io", "clustermesh-apiserver.kube-system.svc",
                     *values[peer["name"]]["clustermesh"]["apiserver"]["tls"]["server"]["extraDnsNames"]]
            assert peer["address"] in names or peer["address"].endswith(".mesh.cilium.io"), (cluster, peer)
            assert peer["port"] == values[peer["name"]]["clustermesh"]["apiserver"]["service"]["nodePort"]


def test_clustermesh_values_are_not_vacuous():
    require_reference()
    v = clustermesh.helm_values(SETTINGS, stars_mesh, "ccp")
    v["cluster"]["id"] = "one"
    v["clustermesh"]["useAPIServer"] = "yes"
    assert len(validate_helm_values(v)) >= 2


def test_a_single_cluster_platform_refuses_the_pack():
    assert "two-clusters" in stars_mesh.NEEDS and PACKS["stars-mesh"] is stars_mesh
    # existing is one cluster; aws builds both on the kind host (stacks/aws_mesh.py, tests/unit/test_aws_mesh.py)
    with pytest.raises(SettingsError, match="stars-mesh needs two clusters"):
        load_settings({"operatorCidr": "198.51.100.7/32", "platform": "existing", "kubeconfigPath": "/k",
                       "scenarios": ["stars-mesh"]}, resolve_operator_cidr=False)
    assert load_settings({"operatorCidr": "198.51.100.7/32", "scenarios": ["stars-mesh"]},
                         resolve_operator_cidr=False).scenarios == ("stars-mesh",)


def test_verdicts_cli_evaluates_the_mesh(capsys):
    from model.__main__ import main
    assert main(["verdicts", "--scenario", "stars-mesh", "--format", "json"]) == 0
    import json
    cells = json.loads(capsys.readouterr().out)["cells"]
    got = {(c["from"], c["to"]) for c in cells if c["verdict"] == "allow"}
    assert got == {(C, F), (F, B), (M, C), (M, F), (M, B)}
    assert stars.STAGES == stars_mesh.STAGES
