"""Implementation details the documentation tests do not pin: FQDN patterns, the DNS proxy, Envoy
listeners, explanation sentences, L7 voided by an L4 rule, deterministic addresses, API shapes."""
from __future__ import annotations

import copy

import pytest

from cilium_verdicts import Cluster, Probe, Verdict, evaluate, fqdn

LISTENER_TYPE = "type.googleapis.com/envoy.config.listener.v3.Listener"


def pod(name: str, ns: str = "default", labels: dict | None = None, ports=()) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {"app": name}},
            "spec": {"containers": [{"name": "c", "image": "x",
                                     "ports": [{"containerPort": p, "name": f"p{p}"} for p in ports]}]}}


def namespace(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def cnp(name: str, spec: dict, ns: str = "default") -> dict:
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": name, "namespace": ns},
            "spec": spec}


DNS_RULE = {"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system", "k8s-app": "kube-dns"}}],
            "toPorts": [{"ports": [{"port": "53", "protocol": "ANY"}], "rules": {"dns": [{"matchPattern": "*.example.com"}]}}]}


@pytest.mark.parametrize("pattern, host, expected", [
    ("*", "a.b.example.com", True),            # "*" alone matches all names
    ("*.example.com", "www.example.com", True),
    ("*.example.com", "example.com", False),
    ("*.example.com", "a.b.example.com", False),  # one label only
    ("**.example.com", "a.b.example.com", False),  # Cilium 1.18: "**" is no multi-label wildcard yet
    ("**.example.com", "www.example.com", True),
    ("part*ial.com", "part-extra-ial.com", True),
    ("Example.COM.", "example.com", True),
])
def test_fqdn_patterns_follow_cilium_1_18(pattern, host, expected):
    assert fqdn.matches(pattern, host) is expected


def test_dns_proxy_refuses_names_outside_its_patterns_and_toFQDNs_needs_it():
    objects = [pod("client"), pod("web", ports=[80]),
               {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}},
               cnp("fqdn", {"endpointSelector": {"matchLabels": {"app": "client"}},
                            "egress": [copy.deepcopy(DNS_RULE), {"toFQDNs": [{"matchPattern": "*.example.com"}]}]})]
    cluster = Cluster.from_objects(objects)
    v = evaluate(cluster, Probe("default/client", "default/web", 80, via="service-name"))
    assert (v.verdict, v.egress, v.ingress) == ("dns-fail", "dns-fail", "n/a")
    assert v.why[-1] == ("DNS: proxy refuses web.default.svc.cluster.local: no rules.dns pattern matches "
                         "(*.example.com): dns-fail")
    assert evaluate(cluster, Probe("default/client", "world:www.example.com", 443, via="fqdn")).verdict == "allow"
    v = evaluate(cluster, Probe("default/client", "world:203.0.113.7", 443, via="fqdn"))
    assert v.verdict == "drop"
    assert "CiliumNetworkPolicy default/fqdn egress[1].toFQDNs: 203.0.113.7 is dialled as an IP literal; toFQDNs " \
           "only matches looked-up names" in v.why
    # without rules.dns the lookup succeeds but Cilium never learns the IPs
    del objects[-1]["spec"]["egress"][0]["toPorts"][0]["rules"]
    v = evaluate(Cluster.from_objects(objects), Probe("default/client", "world:www.example.com", 443, via="fqdn"))
    assert (v.verdict, v.egress) == ("drop", "drop:default-deny")
    assert any("never learned its IPs" in line for line in v.why)


def test_listener_redirect_sets_the_listener_and_a_missing_one_drops():
    policy = cnp("proxy", {"endpointSelector": {}, "egress": [
        copy.deepcopy(DNS_RULE), {"toFQDNs": [{"matchName": "www.example.com"}], "toPorts": [{
            "ports": [{"port": "443", "protocol": "TCP"}],
            "listener": {"envoyConfig": {"kind": "CiliumClusterwideEnvoyConfig", "name": "envoy"}, "name": "out"}}]}]})
    config = {"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideEnvoyConfig", "metadata": {"name": "envoy"},
              "spec": {"resources": [{"@type": LISTENER_TYPE, "name": "out"}]}}
    probe = Probe("default/client", "world:www.example.com", 443, via="fqdn")
    v = evaluate(Cluster.from_objects([pod("client"), policy, config]), probe)
    assert (v.verdict, v.egress, v.ingress, v.listener) == (
        "allow", "allow", "n/a", "CiliumClusterwideEnvoyConfig//envoy#out")
    v = evaluate(Cluster.from_objects([pod("client"), policy]), probe)
    assert (v.verdict, v.egress, v.listener) == ("drop", "drop:policy-deny", None)
    assert "listener CiliumClusterwideEnvoyConfig//envoy#out does not exist: nothing to redirect to, dropped" in v.why


def test_cnp_endpoints_scope_sentence_and_ccnp_reach():
    objects = [namespace("orders"), namespace("ui"), pod("orders", "orders", ports=[8080]),
               pod("ui", "ui", {"app.kubernetes.io/component": "service"}),
               cnp("orders-in", {"endpointSelector": {}, "ingress": [
                   {"fromEndpoints": [{"matchLabels": {"app.kubernetes.io/component": "service"}}]}]}, "orders")]
    v = evaluate(Cluster.from_objects(objects), Probe("ui/ui", "orders/orders", 8080))
    assert v.verdict == "drop"
    assert ("CiliumNetworkPolicy orders/orders-in ingress[0].fromEndpoints[0]: app.kubernetes.io/component=service "
            "matches ui/ui's labels but, without io.kubernetes.pod.namespace in the selector, only selects pods in "
            "namespace orders") in v.why
    objects[-1] = {**objects[-1], "kind": "CiliumClusterwideNetworkPolicy", "metadata": {"name": "orders-in"},
                   "spec": {**objects[-1]["spec"], "endpointSelector": {
                       "matchLabels": {"k8s:io.kubernetes.pod.namespace": "orders"}}}}
    assert evaluate(Cluster.from_objects(objects), Probe("ui/ui", "orders/orders", 8080)).verdict == "allow"


def test_ipblock_never_matches_a_pod_ip_and_says_so():
    np = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "cidr"},
          "spec": {"podSelector": {"matchLabels": {"app": "db"}},
                   "ingress": [{"from": [{"ipBlock": {"cidr": "10.244.0.0/16"}}]}]}}
    cluster = Cluster.from_objects([pod("app"), pod("db", ports=[5432]), np])
    v = evaluate(cluster, Probe("default/app", "default/db", 5432))
    assert (v.verdict, v.ingress) == ("drop", "drop:default-deny")
    assert ("NetworkPolicy default/cidr ingress[0].from[0]: 10.244.0.0/16 contains default/app's IP 10.244.1.1, "
            "but Cilium never matches pod IPs with CIDR rules (cilium#9209)") in v.why


def test_an_l4_allow_voids_http_rules_and_a_bare_connection_passes_l4():
    l7 = cnp("l7", {"endpointSelector": {"matchLabels": {"app": "api"}}, "ingress": [{"toPorts": [{
        "ports": [{"port": "80", "protocol": "TCP"}], "rules": {"http": [{"method": "GET", "path": "/v1/.*"}]}}]}]})
    l4 = cnp("l4", {"endpointSelector": {"matchLabels": {"app": "api"}}, "ingress": [{"fromEndpoints": [{}]}]})
    base = [pod("client"), pod("api", ports=[80]), l7]
    cluster = Cluster.from_objects(base)
    assert evaluate(cluster, Probe("default/client", "default/api", 80, request="GET /v1/items")).verdict == "allow"
    assert evaluate(cluster, Probe("default/client", "default/api", 80, request="GET /v1")).verdict == "l7-deny"
    v = evaluate(cluster, Probe("default/client", "default/api", 80))
    assert v.verdict == "allow" and v.why[-1] == ("ingress: rules.http (GET /v1/.*) applies to HTTP requests; a bare "
                                                  "connection is allowed at L4")
    assert evaluate(Cluster.from_objects(base + [l4]),
                    Probe("default/client", "default/api", 80, request="DELETE /")).verdict == "allow"


def test_l7_applies_even_without_default_deny():
    """docs "Policy Enforcement Modes": EnableDefaultDeny does not apply to layer-7 policy."""
    spec = {"endpointSelector": {"matchLabels": {"app": "api"}}, "enableDefaultDeny": {"ingress": False},
            "ingress": [{"fromEndpoints": [{"matchLabels": {"app": "client"}}], "toPorts": [{
                "ports": [{"port": "80", "protocol": "TCP"}], "rules": {"http": [{"method": "GET"}]}}]}]}
    cluster = Cluster.from_objects([pod("client"), pod("other"), pod("api", ports=[80]), cnp("soft", spec)])
    assert evaluate(cluster, Probe("default/client", "default/api", 80, request="POST /")).verdict == "l7-deny"
    assert evaluate(cluster, Probe("default/other", "default/api", 80, request="POST /")).verdict == "allow"
    assert evaluate(cluster, Probe("default/other", "default/api", 22)).verdict == "allow"


def test_addresses_are_deterministic_and_clusterip_is_kept():
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"selector": {"app": "b"},
                                                                                      "ports": [{"port": 80}]}}
    fixed = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "f"},
             "spec": {"clusterIP": "10.96.7.7", "selector": {"app": "b"}, "ports": [{"port": 81}]}}
    cluster = Cluster.from_objects([pod("b"), pod("a"), svc, fixed])
    assert [cluster.workloads[k].ip for k in ("default/b", "default/a", "kube-system/coredns")] == [
        "10.244.1.1", "10.244.1.2", "10.244.0.2"]
    assert [cluster.services[k].cluster_ip for k in ("default/s", "default/f", "kube-system/kube-dns")] == [
        "10.96.1.1", "10.96.7.7", "10.96.0.10"]


def test_user_objects_replace_the_builtins():
    objects = [pod("coredns", "kube-system", {"k8s-app": "kube-dns"}, ports=[53]), pod("a")]
    cluster = Cluster.from_objects(objects)
    assert not cluster.workloads["kube-system/coredns"].builtin
    assert cluster.workloads["kube-system/coredns"].ports == (("p53", 53, "TCP"),)


def test_probe_id_and_verdict_dict():
    probe = Probe("default/sleep", "default/httpbin", 8000, via="service-name", request="GET /headers")
    assert probe.id == "default/sleep->default/httpbin:8000/TCP via service-name GET /headers"
    assert Verdict("allow", "allow", "allow", ("x",)).as_dict() == {
        "verdict": "allow", "egress": "allow", "ingress": "allow", "why": ["x"], "listener": None}
