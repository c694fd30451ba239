"""Platforms in the model: the config keys, NEEDS vs OFFERS refused naming both, the same probes and
expected outcomes on every platform, the local lock (rendered from the model, checked against the
vendored CCNP schema and judged by the evaluator), and the preflight checks with an injected
``which``/runner (the fake-tools-on-PATH emulation is tests/unit/test_local_tools.py)."""
from __future__ import annotations

import json

import pytest

import scenarios
from model import local, platforms, probes
from model.platforms import Completed, PreflightError
from model.settings import SettingsError, load_settings
from scenarios import Context
from scenarios.k8s import LAB_LABEL

from ..validation import validate_cr

OP = "198.51.100.7/32"
ADDRESS = "172.18.0.5"


def settings(**raw):
    return load_settings({"operatorCidr": OP, **raw})


# ---------------------------------------------------------------------------------------- settings
def test_platform_defaults_to_aws_and_accepts_the_three():
    assert settings().platform == "aws"
    assert settings(platform="local").platform == "local"
    s = settings(platform="existing", kubeconfigPath="~/.kube/lab", kubeContext="prod@eks",
                 scenarios=["hoot51"])
    assert (s.platform, s.kubeconfig_path, s.kube_context) == ("existing", "~/.kube/lab", "prod@eks")


def test_an_unknown_platform_names_the_key_and_the_accepted_values():
    with pytest.raises(SettingsError) as exc:
        settings(platform="gcp")
    assert "platform: 'gcp' is not accepted; accepted: aws, local or existing" in str(exc.value)


@pytest.mark.parametrize("path", [" /tmp/k", "/tmp/k ", "/tmp/k\t"])
def test_a_kubeconfig_path_with_surrounding_whitespace_is_refused_not_trimmed(path):
    """Typed values never have surrounding whitespace trimmed behind the user's back (issue 20): the
    path the stack would read is the path the user gave, or a named error."""
    with pytest.raises(SettingsError) as exc:
        settings(platform="existing", kubeconfigPath=path, scenarios=["hoot51"])
    assert "kubeconfigPath:" in str(exc.value) and "accepted:" in str(exc.value)


def test_existing_needs_a_kubeconfig_and_the_others_refuse_one():
    with pytest.raises(SettingsError) as exc:
        settings(platform="existing", scenarios=["hoot51"])
    assert "kubeconfigPath: required with platform 'existing'" in str(exc.value)
    with pytest.raises(SettingsError) as exc:
        settings(platform="local", kubeconfigPath="/tmp/k", kubeContext="x")
    assert "kubeconfigPath: '/tmp/k' is only used with platform 'existing'" in str(exc.value)
    assert "kubeContext: 'x' is only used with platform 'existing'" in str(exc.value)


@pytest.mark.parametrize("scenario,piece", [("egress", "proxy"), ("mtls", "mtls-backend")])
def test_a_scenario_needing_a_host_is_refused_on_existing_naming_both(scenario, piece):
    with pytest.raises(SettingsError) as exc:
        settings(platform="existing", kubeconfigPath="/k", scenarios=[scenario, "hoot51"])
    text = str(exc.value)
    assert f"scenarios: {scenario!r} needs {piece} (" in text and "platform 'existing' does not offer" in text
    assert "hoot51" not in text.split("needs")[0]  # hoot51 itself is fine there
    assert "choose scenarios from: hoot51, eks-retail, stars" in text


def test_restrict_egress_is_refused_on_existing():
    with pytest.raises(SettingsError) as exc:
        settings(platform="existing", kubeconfigPath="/k", scenarios=["stars"], restrictEgress=True)
    assert "restrictEgress: true needs egress-lock" in str(exc.value)
    assert "platform 'existing' does not offer" in str(exc.value)


def test_operator_cidr_auto_is_not_looked_up_off_aws():
    calls = []
    s = load_settings({"platform": "local"}, public_ip_lookup=lambda: calls.append(1) or "198.51.100.7")
    assert s.operator_cidr == "auto" and calls == []


def test_every_pack_needs_only_pieces_some_platform_offers():
    ctx = Context(settings(), ADDRESS)
    for name in scenarios.ONE_CLUSTER:  # the two-cluster packs run offline only (multi_cluster_refusals)
        needs = platforms.pack_needs(name, ctx)
        assert needs <= set(platforms.PIECES), name
        assert any(needs <= platforms.OFFERS[p] for p in platforms.PLATFORMS), name
    # derived from the objects: the packs with a CEC/CCEC in a stage need envoyConfig
    assert "envoy-config" in platforms.pack_needs("egress", ctx)
    assert "envoy-config" not in platforms.pack_needs("hoot51", ctx)


def test_switching_platform_is_refused_naming_both():
    assert platforms.check_switch(None, "local") is None
    assert platforms.check_switch("local", "local") is None
    msg = platforms.check_switch("aws", "local")
    assert "deployed with platform 'aws'" in msg and "switching it to 'local'" in msg


# --------------------------------------------------------------------------- identical on every platform
@pytest.mark.parametrize("locked", [False, True])
@pytest.mark.parametrize("name", list(scenarios.ONE_CLUSTER))
def test_same_objects_probes_and_expected_outcomes_on_every_platform(name, locked):
    base = {"scenarios": [name]}
    runs = {"aws": settings(restrictEgress=locked, **base)}
    if not set(scenarios.pack(name).NEEDS) - platforms.OFFERS["local"]:
        runs["local"] = settings(platform="local", restrictEgress=locked, **base)
    if not (platforms.pack_needs(name, Context(runs["aws"], ADDRESS)) - platforms.OFFERS["existing"]) and not locked:
        runs["existing"] = settings(platform="existing", kubeconfigPath="/k", **base)
    for stage in scenarios.STAGE_NAMES[name]:
        got = {}
        for plat, s in runs.items():
            pl = probes.plan(name, Context(s, ADDRESS), stage)
            got[plat] = (pl.workloads, pl.stage.objects, [(p.name, p.probe, p.expected) for p in pl.probes])
        first = next(iter(got.values()))
        assert all(v == first for v in got.values()), (name, stage, locked)


def test_local_lock_is_judged_by_the_evaluator_not_a_security_group():
    """On aws the security group drops test-deny's direct connection (the evaluator allows it); on
    local the lock CCNP does, so the evaluator itself says drop - same outcome, different reason."""
    for plat, verdict in (("aws", "allow"), ("local", "drop")):
        s = settings(platform=plat, restrictEgress=True)
        cell = next(p for p in probes.plan("egress", Context(s, ADDRESS)).probes if p.probe.key == "test-deny-allowed")
        assert (cell.verdict.verdict, cell.expected) == (verdict, "drop"), plat


def test_local_lock_object_is_valid_and_spares_listener_namespaces():
    s = settings(platform="local", restrictEgress=True)
    lock = local.lock_policy(s, ADDRESS)
    assert validate_cr(lock) == []
    assert lock["spec"]["egressDeny"] == [{"toCIDRSet": [{"cidr": "0.0.0.0/0", "except": [f"{ADDRESS}/32"]}]}]
    exempt = lock["spec"]["endpointSelector"]["matchExpressions"][0]["values"]
    assert exempt == ["kube-system", "test-allow"]  # test-allow goes through its listener at proxy-policy
    opened = settings(platform="local", restrictEgress=True, stages={"egress": "open"})
    assert local.lock_policy(opened, ADDRESS)["spec"]["endpointSelector"]["matchExpressions"][0]["values"] == ["kube-system"]
    assert local.lock_policy(s, ADDRESS) in local.platform_objects(Context(s, ADDRESS))
    assert not any(o["metadata"]["name"] == local.LOCK_NAME
                   for o in local.platform_objects(Context(settings(platform="local"), ADDRESS)))
    assert local.platform_objects(Context(settings(platform="existing", kubeconfigPath="/k", scenarios=["stars"]),
                                              ADDRESS)) == ()


def test_local_kind_config_is_the_aws_model_with_kinds_own_api_address():
    from model.userdata import kind_cluster_config
    aws, loc = kind_cluster_config("203.0.113.10"), kind_cluster_config(None, "p.dev")
    for cfg in (aws, loc):
        assert cfg["networking"]["disableDefaultCNI"] is True and cfg["networking"]["kubeProxyMode"] == "none"
        assert cfg["name"] == local.CLUSTER
    assert "apiServerAddress" not in loc["networking"] and "kubeadmConfigPatchesJSON6902" not in loc
    assert loc["nodes"] == [{"role": "control-plane", "labels": {platforms.OWNER_LABEL: "p.dev"}}]
    assert local.owner("cilium-egress-lab", "dev") == "cilium-egress-lab.dev"
    assert len(local.owner("x" * 40, "y" * 40)) == 63


# ------------------------------------------------------------------------------------------- preflight
class FakeTools:
    """``which`` and a runner answering like kind v0.30.0 and kubectl do (see test_local_tools for
    the real executables on PATH)."""

    def __init__(self, on_path=("docker", "kind", "kubectl", "helm"), answers=None):
        self.on_path, self.answers, self.calls = set(on_path), answers or {}, []

    def which(self, name):
        return f"/usr/bin/{name}" if name in self.on_path else None

    def run(self, argv):
        self.calls.append(list(argv))
        for key, answer in self.answers.items():
            if " ".join(argv).endswith(key) or " ".join(argv[:len(key.split())]) == key:
                return answer
        return Completed(1, "", "not found")


def test_local_preflight_names_a_missing_tool_and_what_to_do():
    t = FakeTools(on_path=("docker", "kubectl"))
    with pytest.raises(PreflightError) as exc:
        platforms.local_preflight("egress-lab", "p.dev", t.which, t.run)
    assert "kind is not on PATH: install kind v0.30.0" in str(exc.value)
    assert "helm is not on PATH" in str(exc.value) and "nothing was created" in str(exc.value)
    t = FakeTools(on_path=("kind", "kubectl", "helm"))
    with pytest.raises(PreflightError) as exc:
        platforms.local_preflight("egress-lab", "p.dev", t.which, t.run)
    assert "neither docker nor podman is on PATH" in str(exc.value)
    assert platforms.container_engine(FakeTools(on_path=("podman",)).which) == "podman"


def test_local_preflight_refuses_a_cluster_it_did_not_create():
    t = FakeTools(answers={"kind get clusters": Completed(0, "egress-lab\nother\n")})
    with pytest.raises(PreflightError) as exc:
        platforms.local_preflight("egress-lab", "p.dev", t.which, t.run)
    assert "a kind cluster named 'egress-lab' already exists and this stack did not create it" in str(exc.value)
    assert "kind delete cluster --name egress-lab" in str(exc.value)
    ours = FakeTools(answers={"kind get clusters": Completed(0, "egress-lab\n"),
                              "-o name": Completed(0, "node/egress-lab-control-plane\n")})
    platforms.local_preflight("egress-lab", "p.dev", ours.which, ours.run)
    assert ["kubectl", "--context", "kind-egress-lab", "get", "nodes", "-l",
            f"{platforms.OWNER_LABEL}=p.dev", "-o", "name"] in ours.calls
    none = FakeTools(answers={"kind get clusters": Completed(0, "", "No kind clusters found.\n")})
    platforms.local_preflight("egress-lab", "p.dev", none.which, none.run)


def _existing(answers, needs=frozenset(), namespaces=("stars",)):
    t = FakeTools(on_path=("kubectl",), answers=answers)
    platforms.existing_preflight("/k", "ctx", needs, namespaces, next(iter(LAB_LABEL.items())), t.run, t.which)
    return t


VERSION_OK = Completed(0, json.dumps({"clientVersion": {}, "serverVersion": {"gitVersion": "v1.33.1"}}))


def test_existing_preflight_unreachable_cluster_names_the_kubeconfig_and_context():
    with pytest.raises(PreflightError) as exc:
        _existing({"version -o json": Completed(1, "", "dial tcp 10.0.0.1:6443: connect: connection refused")})
    assert "not reachable with kubeconfigPath '/k', kubeContext 'ctx'" in str(exc.value)
    assert "connection refused" in str(exc.value)


def test_existing_preflight_cilium_missing_old_or_without_envoy_config():
    with pytest.raises(PreflightError) as exc:
        _existing({"version -o json": VERSION_OK})
    assert "Cilium is not installed" in str(exc.value)
    image = "jsonpath={.spec.template.spec.containers[0].image}"
    with pytest.raises(PreflightError) as exc:
        _existing({"version -o json": VERSION_OK, image: Completed(0, "quay.io/cilium/cilium:v1.15.6@sha256:ab")})
    assert "Cilium 1.15.6 runs on the cluster; the lab needs >= 1.16.0" in str(exc.value)
    config = "configmap cilium-config -o json"
    with pytest.raises(PreflightError) as exc:
        _existing({"version -o json": VERSION_OK, image: Completed(0, "quay.io/cilium/cilium:v1.16.1"),
                   config: Completed(0, json.dumps({"data": {"enable-envoy-config": "false"}}))},
                  needs=frozenset({"envoy-config", "kube-proxy-replacement"}))
    assert "envoyConfig is off" in str(exc.value) and "kube-proxy replacement is off" in str(exc.value)
    _existing({"version -o json": VERSION_OK, image: Completed(0, "quay.io/cilium/cilium:v1.18.10"),
               config: Completed(0, json.dumps({"data": {"enable-envoy-config": "true", "kube-proxy-replacement": "true"}}))},
              needs=frozenset({"envoy-config", "kube-proxy-replacement"}))


def test_existing_preflight_refuses_a_namespace_the_lab_did_not_create():
    image = "jsonpath={.spec.template.spec.containers[0].image}"
    base = {"version -o json": VERSION_OK, image: Completed(0, "quay.io/cilium/cilium:v1.18.10")}
    theirs = {"get namespace stars -o json": Completed(0, json.dumps({"metadata": {"name": "stars", "labels": {}}}))}
    with pytest.raises(PreflightError) as exc:
        _existing({**base, **theirs})
    assert "namespace 'stars' already exists on the cluster and the lab did not create it" in str(exc.value)
    ours = {"get namespace stars -o json": Completed(0, json.dumps({"metadata": {"labels": dict(LAB_LABEL)}}))}
    _existing({**base, **ours})
    _existing(base)  # absent: the stack creates it


def test_a_fleet_is_refused_off_aws_and_a_two_cluster_pack_off_local_naming_the_key():
    with pytest.raises(SettingsError) as exc:
        settings(platform="local", edgeClusters=3, scenarios=["hoot51"])
    assert "edgeClusters: 3 builds a fleet of EC2 hosts, only on platform 'aws' (platform is 'local')" in str(exc.value)
    # local (stacks/local_mesh.py) and aws (stacks/aws_mesh.py: both on the kind host) build the two
    # kind clusters; existing is one cluster and refuses it
    assert settings(platform="local", scenarios=["stars-mesh"]).scenarios == ("stars-mesh",)
    assert settings(platform="aws", scenarios=["stars-mesh"]).scenarios == ("stars-mesh",)
    with pytest.raises(SettingsError) as exc:
        settings(platform="existing", scenarios=["stars-mesh"], kubeconfigPath="/k")
    assert "stars-mesh needs two clusters" in str(exc.value) and "platform aws or local" in str(exc.value)


def test_a_two_cluster_pack_runs_alone():
    with pytest.raises(SettingsError) as exc:
        settings(platform="local", scenarios=["stars-mesh", "egress"])
    assert "scenarios: stars-mesh builds its own two clusters and runs alone" in str(exc.value)
