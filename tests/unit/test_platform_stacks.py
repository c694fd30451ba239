"""The three compositions under mocks: the resource graph each platform's row of the README table
promises (no AWS resource on local/existing, no cluster creation on existing), the same scenario
objects and probe commands' substance on all three, and every refusal before any resource, naming
the key, tool or cluster."""
from __future__ import annotations

import json
import shlex

import pytest

from model import local, platforms
from model.platforms import Completed
from stacks.program import Tools

from .harness import LOCAL_NODE_IP, LOCAL_PROXY_IP, OPERATOR_IP, run_program

OP = {"operatorCidr": f"{OPERATOR_IP}/32"}
KUBECONFIG = "/home/u/.kube/lab"
CILIUM_IMAGE = "quay.io/cilium/cilium:v1.18.10@sha256:0123"
VERSION_JSON = json.dumps({"clientVersion": {"gitVersion": "v1.34.1"}, "serverVersion": {"gitVersion": "v1.33.4"}})


class FakeTools(Tools):
    """which + run answering as kind v0.30.0 / kubectl do; records every call."""

    def __init__(self, on_path=("docker", "kind", "kubectl", "helm"), answers=None):
        super().__init__(which=lambda t: f"/usr/bin/{t}" if t in self.on_path else None, run=self._run)
        self.on_path, self.answers, self.calls = set(on_path), dict(answers or {}), []

    def _run(self, argv):
        self.calls.append(list(argv))
        line = " ".join(argv)
        for key, answer in self.answers.items():
            if key in line:
                return answer
        return Completed(1, "", "Error from server (NotFound)")


def local_tools(**kw):
    return FakeTools(answers={"kind get clusters": Completed(0, "", "No kind clusters found.\n")}, **kw)


def existing_tools(**answers):
    return FakeTools(on_path=("kubectl",), answers={
        "version -o json": Completed(0, VERSION_JSON),
        "get daemonset cilium": Completed(0, CILIUM_IMAGE), **answers})


def local_program(config=None, tools=None):
    return run_program({**OP, "platform": "local", **(config or {})}, tools=tools or local_tools())


def existing_program(config=None, tools=None):
    return run_program({**OP, "platform": "existing", "kubeconfigPath": KUBECONFIG, "scenarios": ["hoot51"],
                        **(config or {})}, tools=tools or existing_tools())


def k8s_objects(program):
    """(type, name, metadata, spec) of every Kubernetes object the scenarios declared."""
    return sorted((r.type, r.name, json.dumps(r.inputs.get("metadata"), sort_keys=True))
                  for r in program.resources if r.type.startswith("kubernetes:") and "Release" not in r.type
                  and r.type != "kubernetes:cilium.io/v2:CiliumClusterwideNetworkPolicy")


def probe_commands(program, kubectl_prefix):
    """Each probe's command with the platform's kubectl prefix and addresses normalised away."""
    out = {}
    for r in program.resources:
        if r.type.startswith("command:") and r.name.startswith("probes-") and not r.name.endswith("-proxy-log"):
            cmd = r.inputs["create"]
            out[r.name] = cmd.replace(kubectl_prefix, "KUBECTL") if kubectl_prefix else cmd
    return out


def test_local_graph_has_no_aws_resource_and_a_kind_cluster_from_local_commands():
    p = local_program()
    assert p.error is None, p.error
    assert not [r for r in p.resources if r.type.startswith(("aws:", "tls:")) or r.type == "command:remote:Command"]
    cluster = p.named("kind-demo-cluster")
    assert cluster.type == "command:local:Command"
    assert cluster.inputs["create"] == local.create_cluster_command("docker")
    assert cluster.inputs["delete"] == "kind delete cluster --name egress-lab"
    assert cluster.inputs["stdin"] == local.cluster_config_yaml("cilium-egress-lab.dev")
    assert p.named("cilium-demo-release").inputs["values"] == __import__("model.helm", fromlist=["x"]).helm_values(
        __import__("model.settings", fromlist=["x"]).load_settings({**OP, "platform": "local"}))
    assert p.named("cilium-demo-crds").type == "command:local:Command"
    assert "kubectl --context kind-egress-lab" in p.named("cilium-demo-crds").inputs["create"]
    proxy = p.named("proxy-demo-container")
    assert "docker run -d --name egress-lab-proxy --network kind" in proxy.inputs["create"]
    assert f"acl kind_host src {LOCAL_NODE_IP}/32" in proxy.inputs["stdin"] or LOCAL_NODE_IP in proxy.inputs["stdin"]
    assert p.outputs["platform"] == "local" and p.outputs["proxyAddress"] == LOCAL_PROXY_IP
    assert p.outputs["verification"]["ok"], p.outputs["verification"]
    assert "kubeconfig" in p.secret_outputs


def test_local_lock_is_a_ccnp_with_the_proxy_container_address_and_probes_pass_locked():
    p = local_program({"restrictEgress": True})
    assert p.error is None, p.error
    lock = p.named(f"platform-demo-ciliumclusterwidenetworkpolicy-{local.LOCK_NAME}")
    assert lock.inputs["spec"]["egressDeny"][0]["toCIDRSet"][0]["except"] == [f"{LOCAL_PROXY_IP}/32"]
    cells = {c["probe"]: c["observed"] for c in p.outputs["verification"]["scenarios"]["egress"]["cells"]}
    assert cells["egress-test-deny-allowed"] == "drop" and cells["egress-test-allow-allowed"] == "allow"
    assert p.outputs["verification"]["ok"]
    proxy_log = next(r for r in p.resources if r.name.endswith("-proxy-log"))
    script = shlex.split(proxy_log.inputs["create"])[2]
    assert "['docker', 'exec', 'egress-lab-proxy', 'tail','-n',n,log]" in script and "'sudo'" not in script


def test_existing_graph_creates_no_cluster_no_cilium_no_platform_policy():
    p = existing_program()
    assert p.error is None, p.error
    types = {r.type for r in p.resources}
    assert not [t for t in types if t.startswith(("aws:", "tls:", "kubernetes:helm")) or t == "command:remote:Command"]
    assert "kubernetes:cilium.io/v2:CiliumClusterwideNetworkPolicy" not in types
    assert not [r for r in p.resources if r.type == "command:local:Command" and r.inputs.get("delete")]
    provider = p.of_type("pulumi:providers:kubernetes")[0]
    assert provider.inputs["kubeconfig"] == KUBECONFIG
    assert p.outputs["platform"] == "existing" and p.outputs["verification"]["ok"]
    cmd = next(iter(probe_commands(p, "").values()))
    assert shlex.join(["kubectl", "--kubeconfig", KUBECONFIG]) in cmd


def test_same_scenario_objects_and_probes_on_all_three_platforms():
    config = {"scenarios": ["hoot51", "stars"]}
    aws = run_program({**OP, **config})
    loc = local_program(config)
    ext = existing_program(config)
    for p in (aws, loc, ext):
        assert p.error is None, p.error
    assert k8s_objects(aws) == k8s_objects(loc) == k8s_objects(ext)
    kubectl = {"aws": "sudo kubectl --kubeconfig /root/.kube/config", "local": local.KUBECTL,
               "existing": shlex.join(["kubectl", "--kubeconfig", KUBECONFIG])}
    commands = [probe_commands(aws, kubectl["aws"]), probe_commands(loc, kubectl["local"]),
                probe_commands(ext, kubectl["existing"])]
    assert commands[0] and commands[0] == commands[1] == commands[2]
    reports = [{n: [(c["probe"], c["expected"]) for c in s["cells"]] for n, s in p.outputs["verification"]["scenarios"].items()}
               for p in (aws, loc, ext)]
    assert reports[0] == reports[1] == reports[2]


# ---------------------------------------------------------------------------------- refusals, nothing declared
def refused(program, *words):
    assert program.error is not None
    assert program.resources == [], [r.name for r in program.resources]
    for w in words:
        assert w in str(program.error), (w, str(program.error))


def test_local_missing_tool_is_refused_before_any_resource():
    refused(local_program(tools=local_tools(on_path=("docker", "kubectl", "helm"))),
            "kind is not on PATH", "install kind v0.30.0", "nothing was created")
    refused(local_program(tools=local_tools(on_path=("kind", "kubectl", "helm"))), "neither docker nor podman")


def test_local_name_clash_is_refused_before_any_resource():
    tools = FakeTools(answers={"kind get clusters": Completed(0, "egress-lab\n")})
    refused(local_program(tools=tools), "a kind cluster named 'egress-lab' already exists",
            "kind delete cluster --name egress-lab")


def test_local_podman_runs_kind_with_its_provider():
    p = local_program(tools=local_tools(on_path=("podman", "kind", "kubectl", "helm")))
    assert p.error is None, p.error
    assert p.named("kind-demo-cluster").inputs["create"].startswith("KIND_EXPERIMENTAL_PROVIDER=podman kind")
    assert p.named("proxy-demo-container").inputs["create"].startswith("podman rm -f egress-lab-proxy")


def test_existing_refusals_before_any_resource():
    refused(existing_program(tools=existing_tools(**{"version -o json": Completed(1, "", "Unable to connect")})),
            f"not reachable with kubeconfigPath '{KUBECONFIG}'")
    refused(existing_program(tools=existing_tools(**{"get daemonset cilium": Completed(0, "quay.io/cilium/cilium:v1.15.0")})),
            "Cilium 1.15.0 runs on the cluster; the lab needs >= 1.16.0")
    theirs = Completed(0, json.dumps({"metadata": {"name": "sleep", "labels": {"team": "x"}}}))
    refused(existing_program(tools=existing_tools(**{"get namespace sleep -o json": theirs})),
            "namespace 'sleep' already exists on the cluster and the lab did not create it")


@pytest.mark.parametrize("config,words", [
    ({"platform": "existing", "kubeconfigPath": KUBECONFIG}, ["scenarios: 'egress' needs proxy", "'existing'"]),
    ({"platform": "existing", "scenarios": ["hoot51"]}, ["kubeconfigPath: required with platform 'existing'"]),
    ({"platform": "existing", "kubeconfigPath": KUBECONFIG, "scenarios": ["mtls"]},
     ["scenarios: 'mtls' needs mtls-backend", "'existing'"]),
    ({"platform": "local", "kubeContext": "x"}, ["kubeContext: 'x' is only used with platform 'existing'"]),
])
def test_impossible_pairs_are_refused_before_any_resource_naming_both(config, words):
    refused(run_program({**OP, **config}, tools=local_tools()), *words)


def test_local_and_existing_declare_nothing_billable():
    from model import cost
    from model.settings import load_settings
    for program, raw in ((local_program(), {"platform": "local"}),
                         (existing_program(), {"platform": "existing", "kubeconfigPath": KUBECONFIG,
                                               "scenarios": ["hoot51"]})):
        assert program.error is None
        billed, _ = cost.billables_from_resources(
            [{"type": r.type, "name": r.name, "props": r.inputs} for r in program.resources])
        assert billed == [] == cost.billables(load_settings({**OP, **raw}))


def test_platform_is_recorded_as_an_output_on_aws_too():
    p = run_program(OP)
    assert p.error is None and p.outputs[platforms.PLATFORM_OUTPUT] == "aws"


def test_local_mtls_backend_shares_the_proxy_containers_address_and_verifies():
    p = local_program({"scenarios": ["egress", "mtls"], "restrictEgress": True})
    assert p.error is None, p.error
    backend = p.named("mtls-backend-demo-install")
    assert backend.type == "command:local:Command"
    assert "--network container:egress-lab-proxy" in backend.inputs["create"]
    assert "stdin" in backend.secret_inputs and "BEGIN PRIVATE KEY" in backend.inputs["stdin"]
    server = next(r for r in p.resources if r.name == "mtls-pki-demo-server-csr")
    assert server.inputs["ipAddresses"][0] == LOCAL_PROXY_IP  # the SAN: the address the pods reach
    assert not [r for r in p.resources if r.type.startswith("aws:")]
    cells = {c["probe"]: c["observed"] for c in p.outputs["verification"]["scenarios"]["mtls"]["cells"]}
    assert cells == {"mtls-inject-plain": "allow", "mtls-direct-tls": "refused"}
    assert p.outputs["verification"]["ok"], p.outputs["verification"]
    assert "mtlsSecretMaterial" in p.secret_outputs
