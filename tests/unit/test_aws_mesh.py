"""The aws platform with a ClusterMesh pack (stacks/aws_mesh.py, model/mesh_aws.py): under mocks, the
resource graph (one kind host booting both kind clusters, each one's kubeconfig read over SSH as a
secret, a Cilium release per cluster with its own cluster.name/id and the peer's node address, the
second API port admitted from the operator CIDR only, each cluster's objects through its own provider,
probes over SSH in the source's cluster), the guardrails pack on it, the cost estimate (one kind host);
and the kind host's boot, emulated (tests/sandbox.py): both clusters created with their configs and
the API certificate SANs kind would generate at each accepted tag (tests/kind_patch.py)."""
from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

import scenarios
from guardrails import rules
from model import clustermesh, mesh_aws, network, probes, render
from model.kind_releases import KIND_VERSIONS
from model.settings import SettingsError, load_settings
from scenarios import Context

from .harness import LOCAL_MESH_NODE_IPS, OPERATOR_IP, run_program
from .test_boot import FAKE_CURL, FAKE_PINNED, KIND, PROXY, _boot
from .test_policy_pack import only, run_all, with_inputs

PACK = scenarios.pack("stars-mesh")
ROOT = Path(__file__).resolve().parents[2]


def mesh_program(config=None):
    p = run_program({"scenarios": ["stars-mesh"], **(config or {})})
    assert p.error is None, p.error
    return p


@pytest.fixture(scope="module")
def unlocked():
    return mesh_program()


@pytest.fixture(scope="module")
def locked():
    return mesh_program({"restrictEgress": True})


def test_one_kind_host_boots_both_clusters_and_each_kubeconfig_is_read_over_ssh_as_a_secret(unlocked):
    p = unlocked
    assert sum(r.type == "aws:ec2/instance:Instance" for r in p.resources) == 2   # the kind host, the proxy
    kind_ip = p.outputs["kindPublicIp"]
    user_data = p.named("kind-demo-instance").inputs["userData"]
    assert mesh_aws.cluster_boot(PACK, kind_ip) in user_data
    # the lab's one-cluster kubeconfig is not read (that cluster does not exist on this host)
    assert not [r for r in p.resources if r.name == "kind-demo-kubeconfig"]
    for c in PACK.CLUSTERS:
        kubeconfig = p.named(f"kind-{c}-demo-kubeconfig")
        assert kubeconfig.type == "command:remote:Command"
        assert kubeconfig.inputs["create"] == mesh_aws.kubeconfig_command(PACK, c, kind_ip)
        assert f"kind get kubeconfig --name {c} " in kubeconfig.inputs["create"]
        assert f"server: https://{kind_ip}:{mesh_aws.api_ports(PACK)[c]}#" in kubeconfig.inputs["create"]
        node = p.named(f"kind-{c}-demo-node-address")
        assert node.type == "command:remote:Command" and node.inputs["create"] == mesh_aws.address_command(c)
    assert sorted(p.outputs["kubeconfigs"]) == ["aws", "ccp"] and "kubeconfigs" in p.secret_outputs
    assert p.outputs["kubeApiPorts"] == {"ccp": 6443, "aws": 6444}
    assert p.outputs["kubeContexts"] == {"ccp": "kind-ccp", "aws": "kind-aws"}


def test_a_release_per_cluster_with_its_own_name_id_pod_cidr_the_peer_by_node_address_and_one_ca(unlocked):
    p = unlocked
    ids, names, cas = set(), set(), set()
    for c in PACK.CLUSTERS:
        release = p.named(f"cilium-{c}-demo-release")
        values = release.inputs["values"]
        peer = next(x for x in PACK.CLUSTERS if x != c)
        ids.add(values["cluster"]["id"]), names.add(values["cluster"]["name"]), cas.add(values["tls"]["ca"]["cert"])
        assert values["cluster"] == {"name": c, "id": PACK.CLUSTER_IDS[c]}
        assert values["ipam"]["operator"]["clusterPoolIPv4PodCIDRList"] == [PACK.POD_CIDRS[c]]
        assert values["k8sServiceHost"] == f"{c}-control-plane"
        assert values["clustermesh"]["config"]["clusters"] == [
            {"name": peer, "ips": [LOCAL_MESH_NODE_IPS[peer]], "port": clustermesh.APISERVER_NODE_PORT}]
        assert "values" in release.secret_inputs    # the mesh CA's key
        assert release.provider.split("::")[-2].endswith(f"kind-k8s-{c}-demo")
        # the CRD wait runs on the kind host over SSH, in this cluster's context
        crds = p.named(f"cilium-{c}-demo-crds")
        assert crds.type == "command:remote:Command" and f"--context kind-{c} " in crds.inputs["create"]
    assert ids == {1, 2} and names == {"ccp", "aws"} and len(cas) == 1
    assert base64.b64decode(cas.pop()).decode().startswith("-----BEGIN CERTIFICATE-----\nmesh-ca-demo-cert")


def test_the_second_api_port_is_admitted_from_the_operator_cidr_only(unlocked):
    rules_ = {r.name: r.inputs for r in unlocked.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
              if r.name.startswith("kind-demo-sg-")}
    assert {n: (i["fromPort"], i["toPort"], i["cidrIpv4"]) for n, i in rules_.items()} == {
        "kind-demo-sg-ingress-ssh": (22, 22, f"{OPERATOR_IP}/32"),
        "kind-demo-sg-ingress-kube-api": (6443, 6443, f"{OPERATOR_IP}/32"),
        "kind-demo-sg-ingress-kube-api-aws": (6444, 6444, f"{OPERATOR_IP}/32")}
    # the lab's one cluster publishes no second port
    plain = run_program({})
    assert not [r for r in plain.resources if r.name == "kind-demo-sg-ingress-kube-api-aws"]


def test_each_cluster_gets_its_own_objects_through_its_own_provider(unlocked):
    settings = load_settings({"scenarios": ["stars-mesh"]}, resolve_operator_cidr=False)
    ctx = Context(settings, render.PLACEHOLDER_ADDRESS)
    stage = scenarios.stage("stars-mesh", ctx)
    for c in PACK.CLUSTERS:
        mine = [r for r in unlocked.resources if r.type.startswith("kubernetes:") and "helm" not in r.type
                and "providers" not in r.type and r.name.startswith(f"stars-mesh-{c}-")]
        assert mine and all(r.provider.split("::")[-2].endswith(f"kind-k8s-{c}-demo") for r in mine)
        got = sorted((r.type.split(":")[-1], r.inputs["metadata"].get("namespace"), r.inputs["metadata"]["name"])
                     for r in mine)
        want = sorted((o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])
                      for o in [*PACK.cluster_workloads(ctx)[c], *dict(stage.clusters).get(c, ())])
        assert got == want
        guard = [r for r in unlocked.resources if r.name.startswith(f"platform-{c}-") and r.type.startswith("kubernetes:")]
        assert guard and all(r.provider.split("::")[-2].endswith(f"kind-k8s-{c}-demo") for r in guard)


def test_probes_run_over_ssh_in_the_source_cluster_and_the_final_stage_is_the_seeds_result(unlocked):
    p = unlocked
    commands = {r.name: r for r in p.resources if r.name.startswith("probes-") and r.type.startswith("command:")}
    plan = probes.plan("stars-mesh", Context(load_settings({"scenarios": ["stars-mesh"]}, resolve_operator_cidr=False),
                                             render.PLACEHOLDER_ADDRESS))
    assert len(commands) == len(plan.probes)
    for planned in plan.probes:
        source = planned.probe.traffic.source.rsplit("@", 1)[1]
        probe = commands[f"probes-stars-mesh-{source}-demo-{planned.name}"]
        assert probe.type == "command:remote:Command"
        assert f"sudo kubectl --kubeconfig /root/.kube/config --context kind-{source} -n " in probe.inputs["create"]
        other = next(c for c in PACK.CLUSTERS if c != source)
        assert f"--context kind-{other}" not in probe.inputs["create"]
    v = p.outputs["verification"]
    assert v["ok"], probes.failures(v)
    allowed = {(c["from"], c["to"], c["port"]) for c in v["scenarios"]["stars-mesh"]["cells"] if c["observed"] == "allow"}
    # seed 003, final stage: client -> frontend :80, frontend -> backend :6379, management-ui -> all three
    assert allowed == {("client/client@aws", "stars/frontend@ccp", 80), ("stars/frontend@ccp", "stars/backend@ccp", 6379),
                       ("management-ui/management-ui@aws", "client/client@aws", 9000),
                       ("management-ui/management-ui@aws", "stars/frontend@ccp", 80),
                       ("management-ui/management-ui@aws", "stars/backend@ccp", 6379)}


def test_the_lock_is_the_lab_lock_and_the_mesh_verdicts_still_hold(unlocked, locked):
    def egress(p):
        return {r.name: (r.inputs.get("ipProtocol"), r.inputs.get("cidrIpv4"))
                for r in p.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")}
    assert egress(unlocked)["kind-demo-sg-lock-egress-internet"][1] == network.ANYWHERE
    assert egress(locked)["kind-demo-sg-lock-egress-internet"] == ("tcp", f"{locked.outputs['proxyPublicIp']}/32")
    assert locked.outputs["verification"]["ok"] and locked.outputs["verification"]["locked"] is True


@pytest.mark.parametrize("which", ["unlocked", "locked"])
def test_the_guardrails_pack_passes_on_this_stack(which, request):
    p = request.getfixturevalue(which)
    assert run_all(p) == {r.name: [] for r in rules.RULES}


def test_the_second_api_port_opened_wider_is_an_admin_port_violation(unlocked):
    rule = unlocked.named("kind-demo-sg-ingress-kube-api-aws")
    (msg,) = only(unlocked, rule.name, "admin-ports-operator-only", with_inputs(rule, cidrIpv4="198.51.100.0/24"),
                  config={"operatorCidr": f"{OPERATOR_IP}/32"})
    assert msg.startswith("kind-demo-sg-ingress-kube-api-aws: port 6444 (SSH/Kubernetes API) open to 198.51.100.0/24")


def test_the_cost_estimate_is_the_labs_one_kind_host(unlocked):
    assert unlocked.outputs["costEstimate"] == run_program({}).outputs["costEstimate"]


def test_a_fleet_with_a_two_cluster_pack_is_refused():
    with pytest.raises(SettingsError) as exc:
        load_settings({"operatorCidr": "198.51.100.7/32", "scenarios": ["stars-mesh"], "edgeClusters": "3"})
    assert "edgeClusters: 3 with scenario stars-mesh: its two clusters run on one kind host" in str(exc.value)


# --------------------------------------------------------------------------- the boot, emulated
# kind as the accepted releases behave for several clusters on one Docker: ``create cluster --config``
# makes the cluster the config names (its API server certificate: tests/kind_patch.py at the tag),
# ``get clusters`` lists them, ``get kubeconfig --name N`` prints N's kubeconfig - cluster, user and
# context ``kind-N`` (kind pkg/cluster/internal/kubeconfig/internal/kubeconfig: KINDClusterKey
# "kind-" + name), server https://<apiServerAddress>:<apiServerPort> of N's config.
FAKE_KIND_CLUSTERS = r"""
echo "kind $*" >> "$EVENTS"
case "$1 $2" in
  "get clusters") cat "$FAKE/clusters" 2>/dev/null; exit 0 ;;
  "create cluster")
    while [ "$1" != --config ]; do shift; done
    name=$(sed -nE 's/^name: (.*)$/\1/p' "$2")
    cp "$2" "$FAKE/kind-config-$name.yaml"; echo "$name" >> "$FAKE/clusters"
    SANS_PY -m tests.kind_patch "$(cat "$FAKE/kind-tag")" "$2" > "$FAKE/api-sans-$name"; exit 0 ;;
  "delete cluster") exit 0 ;;
  "get kubeconfig")
    name=$4; port=$(sed -nE 's/^ *apiServerPort: (.*)$/\1/p' "$FAKE/kind-config-$name.yaml")
    printf 'apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: https://0.0.0.0:%s\n  name: kind-%s\ncontexts:\n- context:\n    cluster: kind-%s\n    user: kind-%s\n  name: kind-%s\ncurrent-context: kind-%s\nusers:\n- name: kind-%s\n  user: {}\n' \
      "$port" "$name" "$name" "$name" "$name" "$name" "$name" ;;
esac
"""
# kubectl: ``config view --flatten`` merges the files of $KUBECONFIG (first file wins per name, the
# first current-context); ``get --raw /readyz`` verifies the server certificate of the kubeconfig's
# cluster for the server name as tests/test_boot.py's FAKE_KUBECTL does.
_MERGE = ("import os,yaml;docs=[yaml.safe_load(open(f)) for f in os.environ['KUBECONFIG'].split(':')];"
          "out={'apiVersion':'v1','kind':'Config','current-context':docs[0]['current-context']};"
          "[out.setdefault(k,[]).extend(x for d in docs for x in d[k]) for k in ('clusters','contexts','users')];"
          "print(yaml.safe_dump(out))")
FAKE_KUBECTL_CLUSTERS = r'''
echo "kubectl $*" >> "$EVENTS"
if [ "$1 $2" = "config view" ]; then exec PY -c "MERGE"; fi
kubeconfig=""; name=""; prev=""
for a in "$@"; do
  case "$prev" in --kubeconfig) kubeconfig="$a" ;; --tls-server-name) name="$a" ;; esac
  [ "$a" = --insecure-skip-tls-verify ] && { echo "insecure" >> "$EVENTS"; }
  prev="$a"
done
[ -n "$name" ] || name=$(sed -nE 's#^ *server: https://([^:/]+).*#\1#p' "$kubeconfig" | head -n 1)
cluster=$(sed -nE 's#^  name: kind-(.*)$#\1#p' "$kubeconfig" | head -n 1)
if grep -qx -- "$name" "$FAKE/api-sans-$cluster"; then echo ok; exit 0; fi
echo "Unable to connect to the server: x509: certificate is valid for $(paste -sd, "$FAKE/api-sans-$cluster"), not $name" >&2
exit 1
'''.replace("PY", sys.executable).replace("MERGE", _MERGE)


def _shims():
    return {"kind": FAKE_KIND_CLUSTERS.replace("SANS_PY", f"PYTHONPATH={ROOT} {sys.executable}"),
            "kubectl": FAKE_KUBECTL_CLUSTERS, "curl": FAKE_CURL}


@pytest.mark.parametrize("tag", KIND_VERSIONS)
def test_the_kind_host_boots_both_clusters_with_their_configs_and_api_certificates(tmp_path, tag):
    from tests import kind_patch
    settings = load_settings({"operatorCidr": "198.51.100.7/32", "proxyPort": "3130", "kindVersion": tag,
                              "scenarios": ["stars-mesh"]})
    run = _boot(mesh_aws.kind_host_user_data(settings, PACK, KIND, PROXY, pinned=FAKE_PINNED), tmp_path,
                _shims(), kind_tag=tag)
    assert run.returncode == 0, run.output[-3000:]
    creates = [e for e in run.events if e.startswith("kind create cluster")]
    assert creates == [f"kind create cluster --config /var/lib/cilium-egress-lab/kind-{c}.yaml" for c in PACK.CLUSTERS]
    merged = yaml.safe_load(run.file("/root/.kube/config"))
    servers = {x["name"]: x["cluster"]["server"] for x in merged["clusters"]}
    assert {x["name"] for x in merged["contexts"]} == {"kind-ccp", "kind-aws"}
    for c, port in {"ccp": 6443, "aws": 6444}.items():
        config = yaml.safe_load((tmp_path / "fake" / f"kind-config-{c}.yaml").read_text())
        assert config["name"] == c and config["networking"]["apiServerPort"] == port
        assert config["networking"]["podSubnet"] == PACK.POD_CIDRS[c]
        assert config["networking"]["disableDefaultCNI"] is True and config["networking"]["kubeProxyMode"] == "none"
        sans = set(kind_patch.api_cert_sans(tag, config))
        assert {KIND, "127.0.0.1"} <= sans, sans     # the operator's and the host's kubeconfig servers
        assert servers[f"kind-{c}"] == f"https://127.0.0.1:{port}"
        # the TLS-verified /readyz for loopback and the EIP, per cluster
        assert f"kubectl --kubeconfig /root/.kube/{c}.yaml get --raw /readyz" in run.events
        assert f"kubectl --kubeconfig /root/.kube/{c}.yaml --tls-server-name {KIND} get --raw /readyz" in run.events
        # the operator's kubeconfig, read over SSH (sudo a pass-through): the EIP and this cluster's port
        bin_dir = tmp_path / "opbin"
        bin_dir.mkdir(exist_ok=True)
        for name, body in {"kind": _shims()["kind"], "sudo": 'exec "$@"'}.items():
            (bin_dir / name).write_text("#!/bin/bash\n" + body)
            (bin_dir / name).chmod(0o755)
        op = subprocess.run(["bash", "-c", mesh_aws.kubeconfig_command(PACK, c, KIND)], capture_output=True,
                            text=True, env={"PATH": f"{bin_dir}:/usr/bin:/bin", "EVENTS": "/dev/null",
                                            "FAKE": str(tmp_path / "fake")})
        assert op.returncode == 0, op.stderr
        server = yaml.safe_load(op.stdout)["clusters"][0]["cluster"]["server"]
        assert (urlsplit(server).hostname, urlsplit(server).port) == (KIND, port) and KIND in sans
    assert "insecure" not in run.events
    assert run.output.index(f"API certificate verified for {KIND}") < run.output.index("kind host ready")
    # the mesh's nodes and pod CIDRs are reached directly, never through the proxy
    no_proxy = run.file("/etc/systemd/system/docker.service.d/http-proxy.conf")
    assert all(x in no_proxy for x in ("ccp-control-plane", "aws-control-plane", *PACK.POD_CIDRS.values()))
