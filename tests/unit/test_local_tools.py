"""Emulation of the local platform's commands: fake docker/podman, kind, kubectl and helm on PATH
(tests/unit/fake_tools.py: they record every call and answer as kind v0.30.0, kubectl and helm at
the model's pinned versions do). The commands run are the model's own (model.local, model.remote,
model.probes), through /bin/sh -c as pulumi-command's local.Command runs them; the preflight runs
through the program's real ``Tools`` (shutil.which + subprocess)."""
from __future__ import annotations

import json
import shlex

import pytest
import yaml

from model import helm, local, platforms, probes, remote, render
from model.platforms import PreflightError
from scenarios import Context
from model.settings import load_settings
from stacks.program import Tools

from . import fake_tools
from .harness import OPERATOR_IP, run_program

OWNER = local.owner("cilium-egress-lab", "dev")
NODE_IP, PROXY_IP = "172.18.0.2", "172.18.0.3"
WORLD = {"node_ip": NODE_IP, "proxy_ip": PROXY_IP,
         "urls": {"https://www.roche.com": ["200", "93.184.215.14", 0]},
         "squid_log": "{now} 120 " + f"{NODE_IP} TCP_TUNNEL/200 5000 CONNECT www.roche.com:443 - "
                      "HIER_DIRECT/93.184.215.14 -\n"}


@pytest.fixture
def fakes(tmp_path, monkeypatch):
    def make(tools=("docker", "kind", "kubectl", "helm")):
        path = fake_tools.install(tmp_path / "bin", tmp_path / "state", tools, WORLD)
        monkeypatch.setenv("PATH", path)
        return path
    return make


def sh(command, path, stdin=""):
    done = fake_tools.run(command, path, stdin)
    return done


def preflight():
    tools = Tools()
    platforms.local_preflight(local.CLUSTER, OWNER, tools.which, tools.run)


def test_create_install_cilium_probe_and_destroy(fakes, tmp_path):
    path = fakes()
    state = tmp_path / "state"
    settings = load_settings({"platform": "local"})
    preflight()  # no cluster yet: kind says "No kind clusters found." on stderr, exit 0
    assert [c["argv"] for c in fake_tools.calls(state)] == [["get", "clusters"]]

    # create, from the kind config model on stdin
    done = sh(local.create_cluster_command("docker"), path, local.cluster_config_yaml(OWNER))
    assert done.returncode == 0, done.stderr
    assert 'Creating cluster "egress-lab" ...' in done.stderr and 'Set kubectl context to "kind-egress-lab"' in done.stderr
    created = fake_tools.state(state)["clusters"]["egress-lab"]
    assert created["config"]["networking"]["disableDefaultCNI"] is True
    assert created["config"]["networking"]["kubeProxyMode"] == "none"
    assert created["labels"] == {platforms.OWNER_LABEL: OWNER}
    # a second `up`: the cluster exists and is ours - no second create
    preflight()
    again = sh(local.create_cluster_command("docker"), path, local.cluster_config_yaml(OWNER))
    assert again.returncode == 0 and "Creating cluster" not in again.stderr
    assert "server: https://127.0.0.1:" in sh(local.kubeconfig_command("docker"), path).stdout
    assert sh(local.address_command("docker", local.NODE_CONTAINER), path).stdout.strip() == NODE_IP

    # Cilium: the same values as aws, then the CRD wait the stack runs with the user's kubectl
    assert sh(remote.wait_for_crds(timeout_s=5, kubectl=local.KUBECTL).replace("sleep 5", "true"), path).returncode != 0
    (tmp_path / "values.yaml").write_text(yaml.safe_dump(helm.helm_values(settings)))
    install = sh(f"cd {shlex.quote(str(tmp_path))} && " + render.helm_command(settings, "kind"), path)
    assert install.returncode == 0 and 'Release "cilium" does not exist. Installing it now.' in install.stdout
    assert yaml.safe_load(fake_tools.state(state)["clusters"]["egress-lab"]["values"]) == helm.helm_values(settings)
    wait = sh(remote.wait_for_crds(kubectl=local.KUBECTL), path)
    assert wait.returncode == 0 and wait.stdout.count("condition met") == len(remote.CILIUM_CRDS)

    # the proxy container on kind's network, with the squid config for the node's address
    proxy = sh(local.proxy_create_command("docker", OWNER), path, local.proxy_install_script(settings, NODE_IP))
    assert proxy.returncode == 0, proxy.stderr
    container = fake_tools.state(state)["containers"][local.PROXY_CONTAINER]
    assert (container["network"], container["image"]) == ("kind", local.PROXY_IMAGE)
    assert f"{NODE_IP}/32" in container["script"] and "squid -k parse" in container["script"]
    assert sh(local.address_command("docker", local.PROXY_CONTAINER), path).stdout.strip() == PROXY_IP

    # a probe, with the same command and convergence loop as aws, kubectl run here
    plan = probes.plan("egress", Context(settings, PROXY_IP))
    allowed = next(p for p in plan.probes if p.probe.key == "test-allow-allowed")
    out = sh(probes.command(allowed, plan.workloads, 0, kubectl=local.KUBECTL), path)
    obs = probes.parse(out.stdout)
    assert (obs.outcome, obs.remote_ip, obs.attempts) == ("allow", "93.184.215.14", 1)
    exec_call = next(c for c in fake_tools.calls(state) if c["tool"] == "kubectl" and "exec" in c["argv"])
    assert exec_call["argv"][:5] == ["--context", "kind-egress-lab", "-n", "test-allow", "exec"]
    evidence = sh(probes.evidence_command(allowed, out.stdout, NODE_IP, reader=local.proxy_log_reader("docker"),
                                          log=local.SQUID_LOG, window_s=0), path)
    assert probes.judge_proxy(allowed, evidence.stdout)["ok"], evidence.stdout
    control = next(p for p in plan.probes if p.probe.key == "test-deny-control")
    assert probes.parse(sh(probes.command(control, plan.workloads, 0, kubectl=local.KUBECTL), path).stdout).outcome == "drop"

    # destroy: the proxy container, then the cluster (kind deletes, idempotently)
    assert sh(local.proxy_delete_command("docker"), path).returncode == 0
    gone = sh(local.delete_cluster_command("docker"), path)
    assert gone.returncode == 0 and 'Deleting cluster "egress-lab" ...' in gone.stderr
    assert fake_tools.state(state)["clusters"] == {} and fake_tools.state(state)["containers"] == {}
    assert sh(local.delete_cluster_command("docker"), path).returncode == 0
    listed = sh("kind get clusters", path)
    assert (listed.stdout, listed.stderr) == ("", "No kind clusters found.\n")


def test_a_cluster_of_the_same_name_the_stack_did_not_create_is_refused(fakes, tmp_path):
    path = fakes()
    # the user's own cluster, made by hand: no owner label
    assert sh("kind create cluster --name egress-lab", path).returncode == 0
    with pytest.raises(PreflightError) as exc:
        preflight()
    assert "a kind cluster named 'egress-lab' already exists and this stack did not create it" in str(exc.value)
    # and kind itself would refuse a second cluster of that name
    clash = sh(local.create_cluster_command("docker").split("|| ")[-1], path, local.cluster_config_yaml(OWNER))
    assert clash.returncode == 1
    assert 'ERROR: failed to create cluster: node(s) already exist for a cluster with the name "egress-lab"' in clash.stderr
    # the whole program: refused before any resource, naming the cluster
    program = run_program({"platform": "local", "operatorCidr": f"{OPERATOR_IP}/32"}, tools=Tools())
    assert program.resources == [] and "kind delete cluster --name egress-lab" in str(program.error)
    creates = [c for c in fake_tools.calls(tmp_path / "state") if c["argv"][:2] == ["create", "cluster"]]
    assert len(creates) == 2  # the user's, and the one this test ran by hand: never the stack's


@pytest.mark.parametrize("missing", ["kind", "kubectl", "helm", "docker"])
def test_a_missing_tool_is_refused_naming_it(fakes, tmp_path, missing):
    fakes(tuple(t for t in ("docker", "kind", "kubectl", "helm") if t != missing))
    program = run_program({"platform": "local", "operatorCidr": f"{OPERATOR_IP}/32"}, tools=Tools())
    assert program.resources == []
    word = "neither docker nor podman is on PATH" if missing == "docker" else f"{missing} is not on PATH"
    assert word in str(program.error)
    assert fake_tools.calls(tmp_path / "state") == []  # nothing ran


def test_the_program_runs_its_preflight_with_the_real_tools_and_podman(fakes, tmp_path):
    path = fakes(("podman", "kind", "kubectl", "helm"))
    program = run_program({"platform": "local", "operatorCidr": f"{OPERATOR_IP}/32"}, tools=Tools())
    assert program.error is None, program.error
    # kind is told to use podman (kind v0.30.0 pkg/internal/runtime/runtime.go: KIND_EXPERIMENTAL_PROVIDER)
    assert [(c["argv"], c["env"]) for c in fake_tools.calls(tmp_path / "state")] == [
        (["get", "clusters"], {"KIND_EXPERIMENTAL_PROVIDER": "podman"})]
    create = program.named("kind-demo-cluster").inputs
    done = sh(create["create"], path, create["stdin"])
    assert done.returncode == 0 and "using podman due to KIND_EXPERIMENTAL_PROVIDER" in done.stderr
    call = [c for c in fake_tools.calls(tmp_path / "state") if c["argv"][:2] == ["create", "cluster"]][0]
    assert call["env"] == {"KIND_EXPERIMENTAL_PROVIDER": "podman"}
    assert json.loads(json.dumps(yaml.safe_load(call["stdin"]))) == yaml.safe_load(local.cluster_config_yaml(OWNER))


def test_mtls_backend_container_shares_the_proxy_network_and_its_scripts_are_shellcheck_clean(fakes, tmp_path):
    import subprocess

    from model.mtls import BACKEND_DIR, BACKEND_PORT

    from .. import validation
    path = fakes()
    settings = load_settings({"platform": "local", "scenarios": ["egress", "mtls"]})
    files = {"ca.crt": "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n",
             "server.pem": "-----BEGIN CERTIFICATE-----\ns\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nk\n"}
    script = local.mtls_backend_script(files)
    assert sh(local.proxy_create_command("docker", OWNER), path, local.proxy_install_script(settings, NODE_IP)).returncode == 0
    done = sh(local.mtls_create_command("docker", OWNER), path, script)
    assert done.returncode == 0, done.stderr
    container = fake_tools.state(tmp_path / "state")["containers"][local.MTLS_CONTAINER]
    assert container["network"] == f"container:{local.PROXY_CONTAINER}" and container["script"] == script
    assert f"bind *:{BACKEND_PORT} ssl crt {BACKEND_DIR}/server.pem ca-file {BACKEND_DIR}/ca.crt verify required" in script
    assert sh(local.mtls_delete_command("docker"), path).returncode == 0
    for name, text in (("proxy.sh", local.proxy_install_script(settings, NODE_IP)), ("mtls.sh", script)):
        f = tmp_path / name
        f.write_text(text)
        check = subprocess.run([validation.shellcheck(), "-s", "bash", "-S", "style", str(f)],
                               capture_output=True, text=True, check=False)
        assert check.returncode == 0, check.stdout
