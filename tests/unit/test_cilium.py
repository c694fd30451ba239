"""Cilium on the kind host: Helm values, the egress CEC/CNP, workloads, ordering, render CLI."""
from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import yaml

from cilium_verdicts.envoy import LISTENER_TYPE
from model import helm, lint, render
from model.settings import load_settings
from scenarios import cilium, k8s
from scenarios.cilium import CLUSTER_TYPE
from tests import validation

from .harness import PROXY_IP, ROOT_DIR, run_program

SETTINGS = load_settings({"operatorCidr": "198.51.100.7/32",
                          "allowedDomains": '["*.roche.com", "api.example.org", "*.roche.ch"]',
                          "proxyPort": "3130"}, resolve_operator_cidr=False)
CEC = cilium.egress_envoy_config(SETTINGS, "203.0.113.20")
CNP = cilium.egress_network_policy(SETTINGS, CEC)


def _resource(cec, typ):
    return [r for r in cec["spec"]["resources"] if r["@type"] == typ]


# ------------------------------------------------------------------ schemas
def test_cilium_crs_validate_against_the_1_18_10_crds():
    validation.require_reference()
    for obj in (CEC, CNP):
        assert validation.validate_cr(obj) == [], obj["kind"]


def test_crd_validation_is_not_vacuous():
    validation.require_reference()
    bad = copy.deepcopy(CNP)
    bad["spec"]["egress"][0]["toPorts"][0]["ports"][0]["port"] = 443          # must be a string
    bad["spec"]["egress"][0]["toPorts"][0]["listener"]["envoyConfig"]["kind"] = "EnvoyConfig"
    bad["spec"]["egress"][1]["toEntity"] = ["world"]                           # typo
    errors = validation.validate_cr(bad)
    assert len(errors) >= 3, errors
    cec = copy.deepcopy(CEC)
    cec["spec"]["resources"][0]["@type"] = "type.googleapis.com/envoy.config.listener.v3.Listnr"
    assert validation.validate_cr(cec)


def test_helm_values_validate_against_the_chart_schema_and_exist_in_the_chart():
    validation.require_reference()
    values = helm.helm_values(SETTINGS)
    assert validation.validate_helm_values(values) == []
    assert validation.unknown_helm_keys(values) == []
    assert validation.unknown_helm_keys({"envoyConfig": {"enable": True}}) == ["envoyConfig.enable"]


def test_helm_values_carry_what_cec_and_kind_need():
    v = helm.helm_values(SETTINGS)
    assert v["envoyConfig"] == {"enabled": True, "secretsNamespace": {"create": True, "name": "cilium-secrets"}}
    assert v["kubeProxyReplacement"] is True  # set explicitly (needed for CEC redirects)
    assert v["k8sServiceHost"] == "egress-lab-control-plane" and v["k8sServicePort"] == 6443
    assert v["operator"]["replicas"] == 1 and v["ipam"]["mode"] == "kubernetes"
    assert v["hubble"]["relay"]["enabled"] is True


@pytest.mark.parametrize("target", ["kind", "existing"])
def test_helm_values_of_every_target_validate_against_the_chart_schema(target):
    validation.require_reference()
    values = helm.helm_values(SETTINGS, target=target)
    assert validation.validate_helm_values(values) == []
    assert validation.unknown_helm_keys(values) == []


def test_existing_cluster_values_carry_what_the_lab_needs_and_nothing_kind_specific():
    kind, existing = helm.helm_values(SETTINGS, target="kind"), helm.helm_values(SETTINGS, target="existing")
    assert helm.helm_values(SETTINGS) == kind  # the stack's release: the kind target
    assert existing["envoyConfig"] == kind["envoyConfig"] == {
        "enabled": True, "secretsNamespace": {"create": True, "name": "cilium-secrets"}}
    assert existing.get("kubeProxyReplacement") is True or existing["nodePort"]["enabled"] is True  # DESIGN 5a
    assert existing.get("l7Proxy", True) is True  # DNS rules and listener redirects need the L7 proxy
    for key in ("k8sServiceHost", "k8sServicePort", "ipam", "operator"):
        assert key not in existing, key
    with pytest.raises(ValueError, match="kind, existing"):
        helm.helm_values(SETTINGS, target="eks")


def test_core_objects_validate_with_kubernetes_validate():
    for obj in k8s.test_workloads():
        assert validation.validate_core(obj) == [], obj["metadata"]
    bad = k8s.curl_pod("x")
    bad["spec"]["containers"][0]["resources"]["limits"]["cpu"] = ["1"]
    assert validation.validate_core(bad)


def test_curl_pods_are_pinned_and_bounded():
    for pod in (o for o in k8s.test_workloads() if o["kind"] == "Pod"):
        c = pod["spec"]["containers"][0]
        assert ":" in c["image"] and not c["image"].endswith(":latest")
        assert c["resources"]["requests"] and c["resources"]["limits"]
    assert {o["metadata"]["name"] for o in k8s.test_workloads() if o["kind"] == "Namespace"} == {
        "test-allow", "test-deny"}


# ------------------------------------------------------------------ semantics
def test_listener_reference_is_derived_from_the_cec_and_resolves():
    ref = CNP["spec"]["egress"][0]["toPorts"][0]["listener"]
    assert ref == {"envoyConfig": {"kind": "CiliumEnvoyConfig", "name": CEC["metadata"]["name"]},
                   "name": _resource(CEC, LISTENER_TYPE)[0]["name"]}
    assert lint.check([CEC, CNP]) == []


def test_listener_tunnels_tls_by_its_sni_name_and_plain_http_by_the_original_destination():
    listener = _resource(CEC, LISTENER_TYPE)[0]
    assert "address" not in listener  # Cilium allocates the port
    assert [f["name"] for f in listener["listener_filters"]] == ["envoy.filters.listener.tls_inspector"]
    tls, plain = listener["filter_chains"]
    # TLS: only the allowed names get a chain; the CONNECT names the SNI, so the proxy checks the name
    assert tls["filter_chain_match"] == {"transport_protocol": "tls", "server_names": list(SETTINGS.allowed_domains)}
    assert plain["filter_chain_match"] == {"transport_protocol": "raw_buffer"}
    hostnames = [c["filters"][0]["typed_config"]["tunneling_config"]["hostname"] for c in (tls, plain)]
    assert hostnames == ["%REQUESTED_SERVER_NAME%:%DOWNSTREAM_LOCAL_PORT%", "%DOWNSTREAM_LOCAL_ADDRESS%"]
    cluster = _resource(CEC, CLUSTER_TYPE)[0]
    for chain in (tls, plain):
        tcp = chain["filters"][0]
        assert tcp["name"] == "envoy.filters.network.tcp_proxy"
        assert tcp["typed_config"]["cluster"] == cluster["name"] and cluster["type"] == "STATIC"
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"] == {"address": "203.0.113.20", "port_value": 3130}


def test_policy_rules_are_separate_and_dns_answers_only_allowed_names_and_the_cluster():
    fqdn, cluster, dns = CNP["spec"]["egress"]
    assert fqdn["toFQDNs"] == [{"matchPattern": "*.roche.com"}, {"matchName": "api.example.org"},
                               {"matchPattern": "*.roche.ch"}]
    assert set(fqdn) == {"toFQDNs", "toPorts"} and "rules" not in fqdn["toPorts"][0]
    assert sorted(p["port"] for p in fqdn["toPorts"][0]["ports"]) == ["443", "80"]
    # in-cluster workloads but not kube-system: an L3 allow of kube-dns would wildcard the DNS rule
    assert cluster == {"toEndpoints": [{"matchExpressions": [
        {"key": "k8s:io.kubernetes.pod.namespace", "operator": "NotIn", "values": ["kube-system"]}]}]}
    assert "listener" not in dns["toPorts"][0]
    assert dns["toPorts"][0]["rules"]["dns"] == [
        {"matchPattern": "*.roche.com"}, {"matchName": "api.example.org"}, {"matchPattern": "*.roche.ch"},
        {"matchPattern": "*.*.svc.cluster.local"}, {"matchPattern": "*.*.*.svc.cluster.local"}]
    assert dns["toPorts"][0]["ports"] == [{"port": "53", "protocol": "ANY"}]
    assert dns["toEndpoints"][0]["matchLabels"]["k8s:k8s-app"] == "kube-dns"
    assert helm.helm_values(SETTINGS)["dnsProxy"] == {"dnsRejectResponseCode": "nameError"}


def test_the_evaluator_agrees_the_dns_rule_stops_other_names():
    """Cross-check with the offline evaluator: test-allow's DNS answers only the allowed names (an
    L3 allow of kube-dns, the seed's toEntities: cluster, would have let every name resolve)."""
    from cilium_verdicts import Cluster, Probe, evaluate
    cluster = Cluster.from_objects([*k8s.test_workloads(), CEC, CNP])
    allowed = evaluate(cluster, Probe("test-allow/curl", "world:www.roche.com", 443, via="fqdn"))
    other = evaluate(cluster, Probe("test-allow/curl", "world:www.example.com", 443, via="fqdn"))
    assert (allowed.verdict, allowed.listener) == ("allow", "CiliumEnvoyConfig/test-allow/proxy-envoy#proxy-listener")
    assert other.verdict == "dns-fail"


@pytest.mark.parametrize("breakage", [
    "listener-name", "cec-name", "l7-with-listener", "merged-selectors", "no-dns", "address"])
def test_semantic_checks_catch_what_the_agent_would_reject(breakage):
    cec, cnp = copy.deepcopy(CEC), copy.deepcopy(CNP)
    rule = cnp["spec"]["egress"][0]
    if breakage == "listener-name":
        rule["toPorts"][0]["listener"]["name"] = "nope"
    elif breakage == "cec-name":
        rule["toPorts"][0]["listener"]["envoyConfig"]["name"] = "other"
    elif breakage == "l7-with-listener":
        rule["toPorts"][0]["rules"] = {"dns": [{"matchPattern": "*"}]}
    elif breakage == "merged-selectors":
        rule["toEntities"] = ["cluster"]
    elif breakage == "no-dns":
        del cnp["spec"]["egress"][2]
    elif breakage == "address":
        cec["spec"]["resources"][0]["address"] = {"socket_address": {"address": "0.0.0.0", "port_value": 1}}
    assert lint.check([cec, cnp]), breakage


# ------------------------------------------------------------------ the program under mocks
@pytest.fixture(scope="module")
def program():
    p = run_program({"allowedDomains": ["*.roche.com", "api.example.org"]})
    assert p.error is None, p.error
    return p


def _k8s(program):
    return [r for r in program.resources if r.type.startswith("kubernetes:")]


def test_helm_release_is_pinned_and_uses_the_kind_provider(program):
    release = program.named("cilium-demo-release")
    provider = program.named("kind-k8s-demo")
    assert release.inputs["chart"] == "cilium" and release.inputs["version"] == "1.18.10"
    assert release.inputs["repositoryOpts"]["repo"] == "https://helm.cilium.io/"
    assert release.inputs["namespace"] == "kube-system" and release.inputs["timeout"] >= 600
    assert release.inputs["values"] == helm.helm_values(SETTINGS)
    assert "kubeconfig" in provider.secret_inputs
    for r in _k8s(program):
        assert r.provider.startswith(provider.urn), r.name


def test_kubernetes_ordering(program):
    urn = {r.name: r.urn for r in program.resources}
    cec = program.named("egress-demo-ciliumenvoyconfig-test-allow-proxy-envoy")
    cnp = program.named("egress-demo-ciliumnetworkpolicy-test-allow-proxy-policy")
    crds = program.named("cilium-demo-crds")
    assert cec.urn in cnp.deps, "the CNP must come after the CEC it names"
    assert crds.urn in cec.deps and crds.urn in cnp.deps, "CRs must wait for Cilium's CRDs"
    assert urn["cilium-demo-release"] in crds.deps
    assert "kubectl" in crds.inputs["create"] and "condition=established" in crds.inputs["create"]
    for pod in ("egress-demo-pod-test-allow-curl", "egress-demo-pod-test-deny-curl"):
        p = program.named(pod)
        assert urn["cilium-demo-release"] in p.deps  # the CNI first
        assert any(urn[n] in p.deps for n in urn if n.startswith("egress-demo-namespace"))
        assert p.urn in cec.deps  # the stage's objects come after the scenario's workloads
    for rule in (r for r in program.resources if r.name.startswith("kind-demo-sg-lock-egress-")):
        assert urn["cilium-demo-release"] in rule.deps
        assert urn["egress-demo-pod-test-allow-curl"] in rule.deps
        assert urn["egress-demo-pod-test-deny-curl"] in rule.deps


def _declared_objects(program):
    out = []
    for r in _k8s(program):
        if r.type in ("kubernetes:helm.sh/v3:Release",):
            continue
        obj = {k: v for k, v in r.inputs.items() if k in ("apiVersion", "kind", "metadata", "spec", "data", "type")}
        out.append(obj)
    return out


def _ints(v):
    """Protobuf Structs carry every number as a float; the model's integers come back as 3128.0."""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, dict):
        return {k: _ints(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_ints(x) for x in v]
    return v


def _canon(objs):
    return sorted(yaml.safe_dump(_ints(o), sort_keys=True) for o in objs)


def test_render_cli_round_trips_to_what_the_program_declares(program):
    run = subprocess.run([sys.executable, "-m", "model", "render",
                          "--set", "allowedDomains=*.roche.com,api.example.org",
                          "--set", f"proxyAddress={PROXY_IP}"],
                         cwd=ROOT_DIR, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    rendered = [d for d in yaml.safe_load_all(run.stdout) if d is not None]
    assert len(rendered) == len(list(yaml.safe_load_all(run.stdout)))  # no empty documents
    assert _canon(rendered) == _canon(_declared_objects(program))
    assert "#   kubeProxyReplacement: true" in run.stdout  # Helm values as a comment


def test_render_cli_defaults_to_a_documented_placeholder_and_reads_the_stack_file():
    run = subprocess.run([sys.executable, "-m", "model", "render", "--stack", "dev"], cwd=ROOT_DIR,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    objs = list(yaml.safe_load_all(run.stdout))
    assert objs == render.lab_objects(load_settings({"envName": "demo"}, resolve_operator_cidr=False),
                                      render.PLACEHOLDER_ADDRESS)
    assert render.PLACEHOLDER_ADDRESS.startswith("192.0.2.")


@pytest.mark.parametrize("args,key", [
    (["--set", "proxyPort=0"], "proxyPort"),
    (["--set", "allowedDomains=*"], "allowedDomains"),
    (["--set", "proxyAddress=not-an-ip"], "proxyAddress"),
    (["--set", "noSuchKey=1"], "noSuchKey"),
    (["--stack", "nope"], "--stack"),
])
def test_render_cli_bad_input_exits_2_with_the_key_and_prints_nothing(args, key):
    run = subprocess.run([sys.executable, "-m", "model", "render", *args], cwd=ROOT_DIR,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stdout == ""
    assert key in run.stderr
