"""Unsupported kinds and fields are reported by name; all_pairs covers every ordered pair of
distinct workloads.

The features named here are real Cilium / Kubernetes features the evaluator does not model
(specs/evaluator.md: "Unsupported fields or kinds are reported by name, never silently ignored"):
- ``toServices``: docs.cilium.io "Services based" (examples/policies/l3/service/service.yaml)
- ``fromRequires`` / ``toRequires``: "Additional Label Requirements" ("deprecated as of Cilium
  1.17.x ... removed as of Cilium 1.19")
- ``icmps``: "Limit ICMP/ICMPv6 types"; ``serverNames``: "Limit TLS Server Name Indication (SNI)"
- ``rules.kafka``: "Kafka (beta)" (Layer 7)
- kinds without effect on connectivity (ConfigMap, ServiceAccount as in istio's sleep.yaml).
"""
from __future__ import annotations

import pytest

from cilium_verdicts import PolicyInputError

from .conftest import (
    ALLOWED,
    DEFAULT_DENY,
    check,
    cluster,
    cnp,
    deployment,
    docs_yaml,
    netpol,
    probe,
)

SERVICE_RULE = """
    apiVersion: "cilium.io/v2"
    kind: CiliumNetworkPolicy
    metadata:
      name: "service-rule"
    spec:
      endpointSelector:
        matchLabels:
          id: app2
      egress:
      - toServices:
        - k8sService:
            serviceName: myservice
            namespace: default
    """


def _warned(c, *needles):
    hits = [w for w in c.warnings if all(n in w for n in needles)]
    assert hits, f"no warning mentions {needles}: {c.warnings}"
    return hits


def test_to_services_is_reported_by_name():
    """examples/policies/l3/service/service.yaml (``toServices``), not evaluated: the warning names
    the policy and the field."""
    c = cluster(deployment("app2", labels={"id": "app2"}), docs_yaml(SERVICE_RULE, "default"))
    _warned(c, "CiliumNetworkPolicy", "default/service-rule", "toServices")


@pytest.mark.parametrize("field,rule", [
    ("fromRequires", {"ingress": [{"fromRequires": [{"matchLabels": {"env": "prod"}}]}]}),
    ("toRequires", {"egress": [{"toRequires": [{"matchLabels": {"env": "prod"}}]}]}),
    ("icmps", {"egress": [{"icmps": [{"fields": [{"type": 8, "family": "IPv4"}]}]}]}),
    ("serverNames", {"egress": [{"toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}],
                                              "serverNames": ["one.one.one.one"]}]}]}),
    ("kafka", {"ingress": [{"toPorts": [{"ports": [{"port": "9092", "protocol": "TCP"}],
                                         "rules": {"kafka": [{"role": "produce",
                                                              "topic": "empire-announce"}]}}]}]}),
])
def test_unsupported_cnp_fields_are_reported_by_name(field, rule):
    c = cluster(deployment("app", labels={"env": "prod"}),
                cnp("odd", endpointSelector={"matchLabels": {"env": "prod"}}, **rule))
    _warned(c, "CiliumNetworkPolicy", "default/odd", field)


def test_kinds_without_effect_are_reported_each_by_name():
    """istio's sleep.yaml ships a ServiceAccount; a ConfigMap is plain data. Neither changes a
    verdict, both are named."""
    c = cluster(deployment("sleep"),
                {"apiVersion": "v1", "kind": "ServiceAccount",
                 "metadata": {"name": "sleep", "namespace": "default"}},
                {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "settings", "namespace": "default"}, "data": {"a": "b"}})
    _warned(c, "ServiceAccount", "default/sleep")
    _warned(c, "ConfigMap", "default/settings")


def test_supported_objects_raise_no_warning():
    """The Kubernetes docs' own default-deny example and a Deployment are fully understood."""
    c = cluster(deployment("web", ports=[80]),
                netpol("default-deny-ingress", podSelector={}, policyTypes=["Ingress"]))
    assert c.warnings == []


# --------------------------------------------------------------------------------------------
# all_pairs
# --------------------------------------------------------------------------------------------
def _pairs_cluster(*policies):
    return cluster(deployment("a", ports=[80]),
                   deployment("b", ports=[("dns", 53, "UDP"), ("http", 8080)]),
                   deployment("c"), *policies)


def test_all_pairs_covers_distinct_workloads_and_declared_ports():
    """kubernetes.io Network Policies: "exception: a pod cannot block access to itself" - a workload
    to itself is no cell. The rest is the spec's contract for all_pairs: every ordered pair of
    distinct user workloads (built-in kube-system/coredns excluded), every declared container port
    of the destination with its protocol, by pod IP, no request; no port => no cell; ordered by
    source, destination, port."""
    from .conftest import api
    pairs = api().all_pairs(_pairs_cluster())
    got = [(p.source, p.to, p.port, p.protocol, p.via, p.request) for p, _ in pairs]
    assert got == [
        ("default/a", "default/b", 53, "UDP", "pod-ip", None),
        ("default/a", "default/b", 8080, "TCP", "pod-ip", None),
        ("default/b", "default/a", 80, "TCP", "pod-ip", None),
        ("default/c", "default/a", 80, "TCP", "pod-ip", None),
        ("default/c", "default/b", 53, "UDP", "pod-ip", None),
        ("default/c", "default/b", 8080, "TCP", "pod-ip", None),
    ]
    assert all(v.verdict == "allow" for _, v in pairs)  # no policy: nothing isolated


def test_all_pairs_verdicts_follow_the_policies():
    """kubernetes.io "Default deny all ingress traffic" in default: every cell drops at ingress;
    all_pairs gives the same verdict as evaluate() for each probe."""
    from .conftest import api
    c = _pairs_cluster(netpol("default-deny-ingress", podSelector={}, policyTypes=["Ingress"]))
    pairs = api().all_pairs(c)
    assert len(pairs) == 6
    for p, v in pairs:
        check(v, "drop", ALLOWED, DEFAULT_DENY)
        assert api().evaluate(c, p) == v


def test_deny_rules_with_l7_or_fqdns_are_refused_naming_the_field():
    """docs.cilium.io "Deny Policies": "Deny policies do not support: policy enforcement at L7, i.e.,
    specifically denying an URL and toFQDNs, i.e., specifically denying traffic to a specific domain
    name." The 1.18.10 CRD schema has no such fields in egressDeny (no toFQDNs in its rules, only
    ``ports`` in its toPorts), so the API server refuses the policy: an error naming the field."""
    with pytest.raises(PolicyInputError, match=r'^CiliumNetworkPolicy default/deny: unknown field '
                                                    r'"spec\.egressDeny\[0\]\.toFQDNs"$'):
        cluster(deployment("client"), cnp("deny", endpointSelector={}, egressDeny=[
            {"toFQDNs": [{"matchName": "example.com"}]}]))
    with pytest.raises(PolicyInputError, match=r'unknown field "spec\.egressDeny\[0\]\.toPorts\[0\]\.rules"'):
        cluster(deployment("client"), cnp("deny", endpointSelector={}, egressDeny=[
            {"toCIDR": ["192.0.2.0/24"], "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}],
                                                       "rules": {"http": [{"method": "GET"}]}}]}]))
    c = cluster(deployment("client"),
                cnp("deny", endpointSelector={"matchLabels": {"app": "client"}},
                    egress=[{"toEntities": ["all"]}],
                    egressDeny=[{"toCIDR": ["0.0.0.0/0"], "toPorts": [{"ports": [{"port": "25", "protocol": "TCP"}]}]}]))
    check(probe(c, "default/client", "world:198.51.100.1", 25), "drop", "drop:policy-deny", "n/a")
    check(probe(c, "default/client", "world:198.51.100.1", 443), "allow", ALLOWED, "n/a")
