"""The local platform with a ClusterMesh pack (stacks/local_mesh.py): under mocks, the resource graph
(two kind clusters, one mesh CA, a Cilium release per cluster with its own cluster.name/id and the
peer's node address, each cluster's objects through that cluster's provider, probes run in the cluster
of their source); with the fake tools of fake_tools.py (answering as kind v0.30.0, kubectl, helm
v3.19.0), the commands themselves: two ``kind create cluster`` with their configs on one network, Cilium
installed in each with the mesh values, a probe run with the source cluster's context."""
from __future__ import annotations

import json
import shlex

import pytest
import yaml

import scenarios
from model import clustermesh, local, mesh_local, platforms, probes, render
from model.settings import load_settings
from scenarios import Context
from stacks.program import Tools

from . import fake_tools
from .harness import LOCAL_MESH_NODE_IPS
from .test_platform_stacks import local_program, local_tools

PACK = scenarios.pack("stars-mesh")
OWNER = "cilium-egress-lab.dev"


def mesh_program(config=None, tools=None):
    p = local_program({"scenarios": ["stars-mesh"], **(config or {})}, tools=tools)
    assert p.error is None, p.error
    return p


def values_of(p, cluster):
    return p.named(f"cilium-{cluster}-demo-release").inputs["values"]


def test_two_kind_clusters_one_mesh_ca_and_a_release_per_cluster_with_its_own_name_id_and_peer():
    p = mesh_program()
    clusters = {r.name: r.inputs for r in p.resources if r.name.endswith("-demo-cluster")}
    assert sorted(clusters) == ["kind-aws-demo-cluster", "kind-ccp-demo-cluster"]
    for c in PACK.CLUSTERS:
        inputs = clusters[f"kind-{c}-demo-cluster"]
        assert inputs["create"] == mesh_local.create_cluster_command("docker", c)
        assert f"kind create cluster --name {c} --config -" in inputs["create"]
        config = yaml.safe_load(inputs["stdin"])
        assert (config["name"], config["networking"]["podSubnet"]) == (c, PACK.POD_CIDRS[c])
        assert config["networking"]["disableDefaultCNI"] is True and config["networking"]["kubeProxyMode"] == "none"
    assert len(p.of_type("tls:index/selfSignedCert:SelfSignedCert")) == 1   # one CA for the mesh
    ca = p.of_type("tls:index/selfSignedCert:SelfSignedCert")[0]
    assert ca.inputs["isCaCertificate"] is True
    ids, names = set(), set()
    for c in PACK.CLUSTERS:
        values = values_of(p, c)
        peer = next(x for x in PACK.CLUSTERS if x != c)
        ids.add(values["cluster"]["id"]), names.add(values["cluster"]["name"])
        assert values["cluster"] == {"name": c, "id": PACK.CLUSTER_IDS[c]}
        assert values["ipam"]["operator"]["clusterPoolIPv4PodCIDRList"] == [PACK.POD_CIDRS[c]]
        assert values["k8sServiceHost"] == f"{c}-control-plane"
        # the peer by its kind node address on the shared network (the chart maps <peer>.mesh.cilium.io to it)
        assert values["clustermesh"]["config"]["clusters"] == [
            {"name": peer, "ips": [LOCAL_MESH_NODE_IPS[peer]], "port": clustermesh.APISERVER_NODE_PORT}]
        assert values["clustermesh"]["apiserver"]["service"]["type"] == "NodePort"
        assert values["clustermesh"]["useAPIServer"] is True
        # both releases carry the same CA (the one pulumi-tls certificate)
        import base64
        assert base64.b64decode(values["tls"]["ca"]["cert"]).decode().startswith("-----BEGIN CERTIFICATE-----\nmesh-ca-demo-cert")
        assert "values" in p.named(f"cilium-{c}-demo-release").secret_inputs   # it carries the CA key
        # the release goes through this cluster's provider
        assert p.named(f"cilium-{c}-demo-release").provider.split("::")[-2].endswith(f"kind-k8s-{c}-demo")
    assert ids == {1, 2} and names == {"ccp", "aws"}
    assert not [r for r in p.resources if r.type.startswith("aws:")]
    assert not [r for r in p.resources if "proxy" in r.name and r.type.startswith("command:")]


def test_each_cluster_gets_its_own_objects_through_its_own_provider():
    p = mesh_program()
    stage = scenarios.stage("stars-mesh", Context(load_settings({"platform": "local"}, resolve_operator_cidr=False),
                                                  render.PLACEHOLDER_ADDRESS))
    ctx = Context(load_settings({"platform": "local"}, resolve_operator_cidr=False), render.PLACEHOLDER_ADDRESS)
    expected = PACK.cluster_objects(ctx, stage, local.platform_objects(ctx))
    for c in PACK.CLUSTERS:
        mine = [r for r in p.resources if r.type.startswith("kubernetes:") and "helm" not in r.type
                and "providers" not in r.type and (r.name.startswith(f"stars-mesh-{c}-") or r.name.startswith(f"platform-{c}-"))]
        assert all(r.provider.split("::")[-2].endswith(f"kind-k8s-{c}-demo") for r in mine)
        got = sorted((r.type.split(":")[-1], r.inputs["metadata"].get("namespace"), r.inputs["metadata"]["name"]) for r in mine)
        want = sorted((o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in expected[c])
        assert got == want
    # the Deployments run where the seed puts them
    deployments = {r.name for r in p.of_type("kubernetes:apps/v1:Deployment")}
    assert deployments == {"stars-mesh-ccp-demo-deployment-stars-frontend", "stars-mesh-ccp-demo-deployment-stars-backend",
                           "stars-mesh-aws-demo-deployment-client-client",
                           "stars-mesh-aws-demo-deployment-management-ui-management-ui"}


def test_probes_run_in_the_cluster_of_their_source_and_the_final_stage_is_the_seeds_result():
    p = mesh_program()
    commands = {r.name: r.inputs["create"] for r in p.of_type("command:local:Command") if r.name.startswith("probes-")}
    plan = probes.plan("stars-mesh", Context(load_settings({"platform": "local"}, resolve_operator_cidr=False),
                                             render.PLACEHOLDER_ADDRESS))
    assert len(commands) == len(plan.probes)
    for planned in plan.probes:
        source_cluster = planned.probe.traffic.source.rsplit("@", 1)[1]
        name = f"probes-stars-mesh-{source_cluster}-demo-{planned.name}"
        assert f"kubectl --context kind-{source_cluster} -n " in commands[name]
        other = next(c for c in PACK.CLUSTERS if c != source_cluster)
        assert f"--context kind-{other}" not in commands[name]
    v = p.outputs["verification"]
    assert v["ok"], probes.failures(v)
    allowed = {(c["from"], c["to"], c["port"]) for c in v["scenarios"]["stars-mesh"]["cells"] if c["observed"] == "allow"}
    # seed 003, final stage: client -> frontend :80, frontend -> backend :6379, management-ui -> all three
    assert allowed == {("client/client@aws", "stars/frontend@ccp", 80), ("stars/frontend@ccp", "stars/backend@ccp", 6379),
                       ("management-ui/management-ui@aws", "client/client@aws", 9000),
                       ("management-ui/management-ui@aws", "stars/frontend@ccp", 80),
                       ("management-ui/management-ui@aws", "stars/backend@ccp", 6379)}
    assert p.outputs["kubeContexts"] == {"ccp": "kind-ccp", "aws": "kind-aws"}
    assert sorted(p.outputs["kubeconfigs"]) == ["aws", "ccp"] and "kubeconfigs" in p.secret_outputs
    # the acceptance run's judge (stacks.automation.verify) reads the same plan: nothing to complain about
    from stacks.automation import compare_verification
    settings = load_settings({"platform": "local", "scenarios": ["stars-mesh"]}, resolve_operator_cidr=False)
    assert compare_verification(v, False, settings) == []
    wrong = json.loads(json.dumps(v))
    wrong["scenarios"]["stars-mesh"]["cells"][0]["observed"] = "drop"
    assert len(compare_verification(wrong, False, settings)) == 1


def test_restrict_egress_puts_the_lock_in_both_clusters_and_the_mesh_verdicts_still_hold():
    p = mesh_program({"restrictEgress": True})
    locks = {r.name for r in p.of_type("kubernetes:cilium.io/v2:CiliumClusterwideNetworkPolicy")
             if r.inputs["metadata"]["name"] == local.LOCK_NAME}
    assert locks == {f"platform-{c}-demo-ciliumclusterwidenetworkpolicy-{local.LOCK_NAME}" for c in PACK.CLUSTERS}
    assert p.outputs["verification"]["ok"] and p.outputs["verification"]["locked"] is True


def test_a_stage_switch_changes_only_that_stages_policies():
    first = mesh_program({"stages": {"stars-mesh": "default-deny"}})
    last = mesh_program()
    names = lambda p: {r.name for r in p.resources if not r.name.startswith("probes-")}  # noqa: E731
    added = names(last) - names(first)
    assert added == {"stars-mesh-aws-demo-networkpolicy-client-allow-ui", "stars-mesh-ccp-demo-networkpolicy-stars-allow-ui",
                     "stars-mesh-ccp-demo-networkpolicy-stars-backend-policy",
                     "stars-mesh-ccp-demo-networkpolicy-stars-frontend-policy"}
    assert names(first) - names(last) == set()
    assert first.outputs["verification"]["ok"]


def test_a_cluster_of_a_mesh_name_the_stack_did_not_create_is_refused_before_any_resource():
    from model.platforms import Completed
    tools = local_tools()
    tools.answers = {"kind get clusters": Completed(0, "aws\n")}
    p = local_program({"scenarios": ["stars-mesh"]}, tools=tools)
    assert p.error is not None and "a kind cluster named 'aws' already exists" in str(p.error)
    assert not [r for r in p.resources if r.custom]


# ----------------------------------------------------------------------------- with the fake tools
NODE_IPS = {"ccp": "172.18.0.4", "aws": "172.18.0.5"}


@pytest.fixture
def fakes(tmp_path, monkeypatch):
    path = fake_tools.install(tmp_path / "bin", tmp_path / "state", world={
        "node_ips": NODE_IPS, "urls": {"http://frontend.stars:80/status": ["200", "10.1.0.7", 0]}})
    monkeypatch.setenv("PATH", path)
    return path


def test_two_kind_clusters_on_one_network_cilium_in_each_with_the_mesh_values_and_a_probe(fakes, tmp_path):
    state = tmp_path / "state"
    settings = load_settings({"platform": "local", "scenarios": ["stars-mesh"]})
    tools = Tools()
    for c in PACK.CLUSTERS:   # the stack's preflight, per cluster
        platforms.local_preflight(c, OWNER, tools.which, tools.run)
        done = fake_tools.run(mesh_local.create_cluster_command("docker", c), fakes,
                              mesh_local.cluster_config_yaml(PACK, c, OWNER))
        assert done.returncode == 0 and f'Set kubectl context to "kind-{c}"' in done.stderr, done.stderr
    creates = [call for call in fake_tools.calls(state) if call["tool"] == "kind" and call["argv"][:2] == ["create", "cluster"]]
    assert [call["argv"] for call in creates] == [["create", "cluster", "--name", c, "--config", "-"] for c in PACK.CLUSTERS]
    world = fake_tools.state(state)
    assert {c: world["clusters"][c]["config"]["networking"]["podSubnet"] for c in PACK.CLUSTERS} == PACK.POD_CIDRS
    assert {world["containers"][f"{c}-control-plane"]["network"] for c in PACK.CLUSTERS} == {"kind"}
    ips = {c: fake_tools.run(mesh_local.address_command("docker", c), fakes).stdout.strip() for c in PACK.CLUSTERS}
    assert ips == NODE_IPS
    for c in PACK.CLUSTERS:
        assert f"name: kind-{c}" in fake_tools.run(mesh_local.kubeconfig_command("docker", c), fakes).stdout
        values = mesh_local.helm_values(settings, PACK, c, ips)
        (tmp_path / "values.yaml").write_text(yaml.safe_dump(values))
        install = fake_tools.run(f"cd {shlex.quote(str(tmp_path))} && " + mesh_local.helm_command(settings, c), fakes)
        assert install.returncode == 0, install.stderr
        assert yaml.safe_load(fake_tools.state(state)["clusters"][c]["values"]) == values
    installed = {c: yaml.safe_load(fake_tools.state(state)["clusters"][c]["values"]) for c in PACK.CLUSTERS}
    assert installed["ccp"]["clustermesh"]["config"]["clusters"][0]["ips"] == [NODE_IPS["aws"]]
    assert installed["aws"]["clustermesh"]["config"]["clusters"][0]["ips"] == [NODE_IPS["ccp"]]
    # a probe from aws to ccp: kubectl exec in the aws cluster, by the global Service's name
    ctx = Context(settings, render.PLACEHOLDER_ADDRESS)
    plan = probes.plan("stars-mesh", ctx)
    planned = next(x for x in plan.probes if x.probe.traffic.source == "client/client@aws"
                   and x.probe.traffic.to == "stars/frontend@ccp")
    out = fake_tools.run(mesh_local.probe_command(PACK, ctx, planned, 0), fakes)
    line = json.loads(out.stdout.strip().splitlines()[-1])
    assert (line["curl_exit"], line["traffic"]["source"]) == (0, "client/client@aws")
    exec_call = next(call for call in fake_tools.calls(state) if call["tool"] == "kubectl" and "exec" in call["argv"])
    assert exec_call["argv"][:5] == ["--context", "kind-aws", "-n", "client", "exec"]
    # destroy both
    for c in PACK.CLUSTERS:
        assert fake_tools.run(mesh_local.delete_cluster_command("docker", c), fakes).returncode == 0
    assert fake_tools.state(state)["clusters"] == {}


def test_the_local_mesh_values_validate_against_the_chart_schema_and_name_the_peer_by_address():
    """The chart (v1.18.10 values.yaml, tests/reference): ``clustermesh.config.clusters[].ips`` - "IPs of
    the cluster Clustermesh API server" - and ``clustermesh.config.domain`` (mesh.cilium.io) "used in
    the case cluster addresses are not provided and IPs are used": the endpoint is then
    ``https://<name>.<domain>:<port>`` (templates/clustermesh-config/_helpers.tpl), which the
    clustermesh-apiserver's certificate covers (``*.mesh.cilium.io``)."""
    from tests.validation import require_reference, unknown_helm_keys, validate_helm_values
    require_reference()
    settings = load_settings({"platform": "local", "scenarios": ["stars-mesh"]}, resolve_operator_cidr=False)
    for c in PACK.CLUSTERS:
        values = mesh_local.helm_values(settings, PACK, c, NODE_IPS, "CERT", "KEY")
        assert validate_helm_values(values) == [] and unknown_helm_keys(values) == [], c
        peers = values["clustermesh"]["config"]["clusters"]
        assert [set(p) for p in peers] == [{"name", "ips", "port"}]   # no address: the chart uses the ips
        assert peers[0]["ips"] == [NODE_IPS[peers[0]["name"]]]
    broken = mesh_local.helm_values(settings, PACK, "ccp", NODE_IPS)
    broken["clustermesh"]["config"]["clusters"] = {"aws": "172.18.0.5"}   # the schema's list of peers, not a map
    assert validate_helm_values(broken) != []
