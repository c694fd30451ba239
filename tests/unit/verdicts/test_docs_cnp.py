"""CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy semantics (L3, L4, namespaces, entities,
CIDR, deny, enableDefaultDeny), from Cilium's documentation and its example manifests.

Sources (docs.cilium.io/en/stable/..., whose text lives in cilium/cilium Documentation/):
- L3   = security/policy/language/#layer-3-examples   (Documentation/security/policy/layer3.rst)
- L4   = security/policy/language/#layer-4-examples   (Documentation/security/policy/layer4.rst)
- K8S  = security/policy/kubernetes/                   (Documentation/security/policy/kubernetes.rst)
- DENY = security/policy/language/#deny-policies       (Documentation/security/policy/deny.rst)
- MODES = security/policy/intro/#policy-enforcement-modes (Documentation/security/policy/intro.rst)
Manifests are copied from cilium/cilium examples/policies/... (path given per test); the
workloads around them are small synthetic ones labelled as the examples require. Expected values
were written from these texts before running the evaluator.
"""
from __future__ import annotations

import pytest

from .conftest import (
    ALLOWED,
    DEFAULT_DENY,
    NA,
    POLICY_DENY,
    api,
    check,
    cluster,
    cnp,
    deployment,
    docs_yaml,
    namespace,
    netpol,
    pod,
    probe,
    service,
)


def world(c, source, port=443, address="198.51.100.10", **kw):
    """A connection to a world IP literal: no DNS lookup is involved (specs/evaluator.md step 1)."""
    return probe(c, source, f"world:{address}", port, **kw)


def roles(ns="default", *names, ports=(80,)):
    return [deployment(n, ns, labels={"role": n}, ports=ports) for n in names]


# --------------------------------------------------------------------------------------------
# Endpoints based (L3 "Endpoints based")
# --------------------------------------------------------------------------------------------
L3_YAML = """
    apiVersion: "cilium.io/v2"
    kind: CiliumNetworkPolicy
    metadata:
      name: "l3-rule"
    spec:
      endpointSelector:
        matchLabels:
          role: backend
      ingress:
      - fromEndpoints:
        - matchLabels:
            role: frontend
    """


def test_simple_ingress_allow():
    """examples/policies/l3/simple/l3.yaml. L3 "Simple Ingress Allow": "allow communication from
    endpoints with the label role=frontend to endpoints with the label role=backend"; MODES: "If
    any rule selects an endpoint and the rule has an ingress section, the endpoint goes into
    default deny-mode for ingress." Egress of backend is untouched (per-direction)."""
    c = cluster(roles("default", "frontend", "backend", "other"), docs_yaml(L3_YAML, "default"))
    check(probe(c, "default/frontend", "default/backend", 80), "allow", ALLOWED, ALLOWED)
    check(probe(c, "default/frontend", "default/backend", 9999, protocol="UDP"), "allow")
    check(probe(c, "default/other", "default/backend", 80), "drop", ALLOWED, DEFAULT_DENY)
    check(probe(c, "default/backend", "default/other", 80), "allow", ALLOWED, ALLOWED)


def test_simple_egress_allow():
    """examples/policies/l3/simple/l3_egress.yaml. L3 "Simple Egress Allow": "allow communication
    to endpoints with the label role=backend from endpoints with the label role=frontend"."""
    c = cluster(roles("default", "frontend", "backend", "other"), docs_yaml("""
        apiVersion: "cilium.io/v2"
        kind: CiliumNetworkPolicy
        metadata:
          name: "l3-egress-rule"
        spec:
          endpointSelector:
            matchLabels:
              role: frontend
          egress:
          - toEndpoints:
            - matchLabels:
                role: backend
        """, "default"))
    check(probe(c, "default/frontend", "default/backend", 80), "allow", ALLOWED, ALLOWED)
    check(probe(c, "default/frontend", "default/other", 80), "drop", DEFAULT_DENY, NA)
    check(world(c, "default/frontend"), "drop", DEFAULT_DENY, NA)
    check(probe(c, "default/other", "default/frontend", 80), "allow", ALLOWED, ALLOWED)


def test_egress_allow_all_endpoints_is_namespace_scoped():
    """examples/policies/l3/egress-allow-all/egress-allow-all.yaml. L3 "Egress Allow All Endpoints":
    "An empty EndpointSelector will select all egress endpoints from an endpoint based on the
    CiliumNetworkPolicy namespace (default by default). The following rule allows all egress
    traffic from endpoints with the label role=frontend to all other endpoints in the same
    namespace"."""
    c = cluster(namespace("elsewhere"), roles("default", "frontend", "backend"),
                roles("elsewhere", "backend"), docs_yaml("""
        apiVersion: "cilium.io/v2"
        kind: CiliumNetworkPolicy
        metadata:
          name: "allow-all-from-frontend"
        spec:
          endpointSelector:
            matchLabels:
              role: frontend
          egress:
          - toEndpoints:
            - {}
        """, "default"))
    check(probe(c, "default/frontend", "default/backend", 80), "allow", ALLOWED, ALLOWED)
    check(probe(c, "default/frontend", "elsewhere/backend", 80), "drop", DEFAULT_DENY, NA)
    check(probe(c, "default/frontend", "kube-system/coredns", 53, protocol="UDP"), "drop",
          DEFAULT_DENY, NA)
    check(world(c, "default/frontend"), "drop", DEFAULT_DENY, NA)


def test_empty_ingress_rule_is_default_deny_unlike_networkpolicy():
    """examples/minikube/sw_deny_policy.yaml, ``ingress: [{}]`` with description "Default-deny
    ingress policy for the empire": an empty CNP rule allows nothing (MODES: "Upon being selected by
    a policy, the endpoint permits only allowed traffic"). The same shape in a NetworkPolicy
    allows everything (kubernetes.io "Allow all ingress traffic": ``ingress: [{}]``)."""
    sw = docs_yaml("""
        apiVersion: "cilium.io/v2"
        kind: CiliumNetworkPolicy
        metadata:
          name: "empire-default-deny"
        spec:
          description: "Default-deny ingress policy for the empire"
          endpointSelector:
            matchLabels:
              org: empire
          ingress:
          - {}
        """, "default")
    ships = [deployment("deathstar", labels={"org": "empire", "class": "deathstar"}, ports=[80]),
             pod("tiefighter", labels={"org": "empire", "class": "tiefighter"}),
             pod("xwing", labels={"org": "alliance", "class": "xwing"})]
    c = cluster(ships, sw)
    check(probe(c, "default/tiefighter", "default/deathstar", 80), "drop", ALLOWED, DEFAULT_DENY)
    check(probe(c, "default/xwing", "default/deathstar", 80), "drop", ALLOWED, DEFAULT_DENY)
    knp = netpol("allow-all", podSelector={"matchLabels": {"org": "empire"}},
                 policyTypes=["Ingress"], ingress=[{}])
    check(probe(cluster(ships, knp), "default/xwing", "default/deathstar", 80), "allow",
          ALLOWED, ALLOWED)


# --------------------------------------------------------------------------------------------
# Layer 4 (L4 "Limit ingress/egress ports")
# --------------------------------------------------------------------------------------------
def test_l4_only_egress_rule_applies_to_any_l3_destination():
    """examples/policies/l4/l4.yaml. L4 "Example (L4)": "limits all endpoints with the label
    app=myService to only be able to emit packets using TCP on port 80, to any layer 3
    destination"."""
    c = cluster(deployment("myService", labels={"app": "myService"}),
                deployment("web", ports=[80]), docs_yaml("""
        apiVersion: "cilium.io/v2"
        kind: CiliumNetworkPolicy
        metadata:
          name: "l4-rule"
        spec:
          endpointSelector:
            matchLabels:
              app: myService
          egress:
            - toPorts:
              - ports:
                - port: "80"
                  protocol: TCP
        """, "default"))
    check(probe(c, "default/myService", "default/web", 80), "allow", ALLOWED, ALLOWED)
    check(world(c, "default/myService", port=80), "allow", ALLOWED, NA)
    check(world(c, "default/myService", port=443), "drop", DEFAULT_DENY, NA)
    check(probe(c, "default/myService", "default/web", 80, protocol="UDP"), "drop", DEFAULT_DENY, NA)


@pytest.mark.parametrize("port,ok", [(79, False), (80, True), (443, True), (444, True), (445, False)])
def test_l4_port_range(port, ok):
    """examples/policies/l4/l4_port_range.yaml. L4 "Example Port Ranges": "only be able to emit
    packets using TCP on ports 80-444, to any layer 3 destination"."""
    c = cluster(deployment("myService", labels={"app": "myService"}), docs_yaml("""
        apiVersion: "cilium.io/v2"
        kind: CiliumNetworkPolicy
        metadata:
          name: "l4-port-range-rule"
        spec:
          endpointSelector:
            matchLabels:
              app: myService
          egress:
            - toPorts:
              - ports:
                - port: "80"
                  endPort: 444
                  protocol: TCP
        """, "default"))
    v = world(c, "default/myService", port=port)
    check(v, *(("allow", ALLOWED, NA) if ok else ("drop", DEFAULT_DENY, NA)))


def test_labels_dependent_l4_rule():
    """examples/policies/l4/l3_l4_combined.yaml. L4 "Labels-dependent Layer 4 rule": "Endpoints
    with other labels will not be able to communicate with the endpoints with the label
    role=backend, and endpoints with the label role=frontend will not be able to communicate with
    role=backend on ports other than 80." """
    c = cluster(roles("default", "frontend", "backend", "other", ports=(80, 443)), docs_yaml("""
        apiVersion: "cilium.io/v2"
        kind: CiliumNetworkPolicy
        metadata:
          name: "l4-rule"
        spec:
          endpointSelector:
            matchLabels:
              role: backend
          ingress:
          - fromEndpoints:
            - matchLabels:
                role: frontend
            toPorts:
            - ports:
              - port: "80"
                protocol: TCP
        """, "default"))
    check(probe(c, "default/frontend", "default/backend", 80), "allow", ALLOWED, ALLOWED)
    check(probe(c, "default/frontend", "default/backend", 443), "drop", ALLOWED, DEFAULT_DENY)
    check(probe(c, "default/frontend", "default/backend", 80, protocol="UDP"), "drop", ALLOWED,
          DEFAULT_DENY)
    check(probe(c, "default/other", "default/backend", 80), "drop", ALLOWED, DEFAULT_DENY)


def test_to_ports_protocol_defaults_to_any():
    """L4 ``PortProtocol.Protocol``: "Protocol is the L4 protocol. If omitted or empty, any
    protocol matches. Accepted values: "TCP", "UDP", ""/"ANY"" """
    c = cluster(roles("default", "frontend", "backend", ports=(53,)),
                cnp("dns-any", endpointSelector={"matchLabels": {"role": "backend"}},
                    ingress=[{"fromEndpoints": [{"matchLabels": {"role": "frontend"}}],
                              "toPorts": [{"ports": [{"port": "53"}]}]}]))
    for protocol in ("TCP", "UDP"):
        check(probe(c, "default/frontend", "default/backend", 53, protocol=protocol), "allow",
              ALLOWED, ALLOWED)
    check(probe(c, "default/frontend", "default/backend", 54), "drop", ALLOWED, DEFAULT_DENY)


def test_named_port_in_to_ports_resolves_per_destination_pod():
    """L4 ``PortProtocol.Port``: "Port can be an L4 port number, or a name in the form of "http" or
    "http-8080"." The name is the destination pod's container port name (two pods name "http"
    differently)."""
    c = cluster(deployment("client", labels={"role": "frontend"}),
                deployment("web-a", labels={"app": "web", "v": "a"}, ports=[("http", 8080), 9090]),
                deployment("web-b", labels={"app": "web", "v": "b"}, ports=[("http", 9090), 8080]),
                cnp("web", endpointSelector={"matchLabels": {"app": "web"}},
                    ingress=[{"fromEndpoints": [{"matchLabels": {"role": "frontend"}}],
                              "toPorts": [{"ports": [{"port": "http", "protocol": "TCP"}]}]}]))
    check(probe(c, "default/client", "default/web-a", 8080), "allow", ALLOWED, ALLOWED)
    check(probe(c, "default/client", "default/web-a", 9090), "drop", ALLOWED, DEFAULT_DENY)
    check(probe(c, "default/client", "default/web-b", 9090), "allow", ALLOWED, ALLOWED)
    check(probe(c, "default/client", "default/web-b", 8080), "drop", ALLOWED, DEFAULT_DENY)


# --------------------------------------------------------------------------------------------
# Namespaces (K8S "Namespaces")
# --------------------------------------------------------------------------------------------
def _star_wars_namespaces(*policies):
    """Cilium's examples/policies/kubernetes/namespace/demo-pods.yaml (leia in ns1, luke and vader
    in ns2) plus a luke in ns1 and a workload in a third namespace."""
    return cluster(namespace("ns1"), namespace("ns2"), namespace("ns3"),
                   deployment("leia-deployment", "ns1", labels={"name": "leia"}, ports=[80]),
                   pod("luke-pod", "ns2", labels={"name": "luke"}),
                   pod("vader-pod", "ns2", labels={"name": "vader"}),
                   pod("luke-pod", "ns1", labels={"name": "luke"}),
                   deployment("web", "ns3", ports=[80]), *policies)


def test_expose_pods_across_namespaces():
    """examples/policies/kubernetes/namespace/namespace-policy.yaml. K8S "Example: Expose pods across
    namespaces": "exposes all pods with the label name=leia in the namespace ns1 to all pods with
    the label name=luke in the namespace ns2." """
    c = _star_wars_namespaces(docs_yaml("""
        apiVersion: "cilium.io/v2"
        kind: CiliumNetworkPolicy
        metadata:
          name: "k8s-expose-across-namespace"
          namespace: ns1
        spec:
          endpointSelector:
            matchLabels:
              name: leia
          ingress:
          - fromEndpoints:
            - matchLabels:
                k8s:io.kubernetes.pod.namespace: ns2
                name: luke
        """))
    check(probe(c, "ns2/luke-pod", "ns1/leia-deployment", 80), "allow", ALLOWED, ALLOWED)
    check(probe(c, "ns2/vader-pod", "ns1/leia-deployment", 80), "drop", ALLOWED, DEFAULT_DENY)
    check(probe(c, "ns1/luke-pod", "ns1/leia-deployment", 80), "drop", ALLOWED, DEFAULT_DENY)


def test_from_endpoints_without_namespace_label_is_the_policy_namespace():
    """K8S: "Network policies created and imported as CiliumNetworkPolicy CRD and NetworkPolicy apply
    within the namespace. In other words, the policy only applies to pods within that namespace."
    and (Multi-Cluster) "If the namespace label of policy rules is omitted it defaults to the same
    namespace where the policy itself is applied in". The evaluator must say why ns2/luke, whose
    labels match, is not selected (specs/evaluator.md: explanation for namespace-scoped
    selectors)."""
    c = _star_wars_namespaces(cnp("leia-from-luke", "ns1",
                                  endpointSelector={"matchLabels": {"name": "leia"}},
                                  ingress=[{"fromEndpoints": [{"matchLabels": {"name": "luke"}}]}]))
    check(probe(c, "ns1/luke-pod", "ns1/leia-deployment", 80), "allow", ALLOWED, ALLOWED)
    v = probe(c, "ns2/luke-pod", "ns1/leia-deployment", 80)
    check(v, "drop", ALLOWED, DEFAULT_DENY)
    assert any("ns1" in line and "namespace" in line for line in v.why), v.why


def test_namespace_label_without_k8s_prefix_also_crosses_namespaces():
    """MODES "Endpoint default policy" example (intercept-all-dns CCNP) writes the namespace label
    without source prefix: ``io.kubernetes.pod.namespace: kube-system``; a label key without a
    source matches any source (``k8s:`` labels included), so in a CNP it selects kube-system pods
    (specs/evaluator.md: "also accept it without the k8s: prefix")."""
    c = cluster(deployment("client"),
                cnp("to-dns", endpointSelector={"matchLabels": {"app": "client"}},
                    egress=[{"toEndpoints": [{"matchLabels": {
                        "io.kubernetes.pod.namespace": "kube-system", "k8s-app": "kube-dns"}}]}]))
    check(probe(c, "default/client", "kube-system/coredns", 53, protocol="UDP"), "allow", ALLOWED)
    check(world(c, "default/client"), "drop", DEFAULT_DENY, NA)


def test_enforce_namespace_boundaries():
    """examples/policies/kubernetes/namespace/isolate-namespaces.yaml. K8S "Example: Enforce
    namespace boundaries": default-deny on all pods of ns1 and ns2, "allowing communication from
    all pods within the same namespace"; note: "the pods can still communicate egress to anywhere
    unless the destination is in either ns1 or ns2 in which case both source and destination have
    to be in the same namespace." """
    c = _star_wars_namespaces(docs_yaml("""
        apiVersion: "cilium.io/v2"
        kind: CiliumNetworkPolicy
        metadata:
          name: "isolate-ns1"
          namespace: ns1
        spec:
          endpointSelector:
            matchLabels:
              {}
          ingress:
          - fromEndpoints:
            - matchLabels:
                {}
        ---
        apiVersion: "cilium.io/v2"
        kind: CiliumNetworkPolicy
        metadata:
          name: "isolate-ns1"
          namespace: ns2
        spec:
          endpointSelector:
            matchLabels:
              {}
          ingress:
          - fromEndpoints:
            - matchLabels:
                {}
        """))
    check(probe(c, "ns1/luke-pod", "ns1/leia-deployment", 80), "allow", ALLOWED, ALLOWED)
    check(probe(c, "ns2/luke-pod", "ns1/leia-deployment", 80), "drop", ALLOWED, DEFAULT_DENY)
    check(probe(c, "ns3/web", "ns1/leia-deployment", 80), "drop", ALLOWED, DEFAULT_DENY)
    check(probe(c, "ns1/leia-deployment", "ns3/web", 80), "allow", ALLOWED, ALLOWED)


def test_endpoint_selector_only_selects_the_policy_namespace():
    """K8S: "The endpointSelector always applies to pods in the namespace associated with the
    CiliumNetworkPolicy resource itself." A deny-everything CNP in ns1 leaves ns2 untouched."""
    c = _star_wars_namespaces(cnp("lockdown", "ns1", endpointSelector={},
                                  ingress=[{}], egress=[{}]))
    check(probe(c, "ns2/luke-pod", "ns1/leia-deployment", 80), "drop", ALLOWED, DEFAULT_DENY)
    check(probe(c, "ns1/luke-pod", "ns3/web", 80), "drop", DEFAULT_DENY, NA)
    check(probe(c, "ns2/luke-pod", "ns3/web", 80), "allow", ALLOWED, ALLOWED)


def test_match_expressions_on_the_namespace_label():
    """examples/policies/l3/match-expressions/and-statement.yaml: ``fromEndpoints`` with
    matchExpressions ``k8s:io.kubernetes.pod.namespace in [production]`` AND
    ``k8s:cilium.example.com/policy in [strict]`` - both must hold (the operator is written "In",
    the Kubernetes LabelSelector spelling). Naming the namespace key lifts the namespace scoping
    (K8S: specifying the namespace "by way of the label k8s:io.kubernetes.pod.namespace in the
    fromEndpoints and toEndpoints fields is supported")."""
    policy = cnp("and-statement-policy", endpointSelector={}, ingress=[{"fromEndpoints": [{
        "matchExpressions": [
            {"key": "k8s:io.kubernetes.pod.namespace", "operator": "In", "values": ["production"]},
            {"key": "k8s:cilium.example.com/policy", "operator": "In", "values": ["strict"]}]}]}])
    c = cluster(namespace("production"), deployment("server", ports=[80]),
                deployment("strict", "production", labels={"cilium.example.com/policy": "strict"}),
                deployment("lax", "production", labels={"cilium.example.com/policy": "lax"}),
                deployment("strict", labels={"cilium.example.com/policy": "strict"}), policy)
    check(probe(c, "production/strict", "default/server", 80), "allow", ALLOWED, ALLOWED)
    check(probe(c, "production/lax", "default/server", 80), "drop", ALLOWED, DEFAULT_DENY)
    check(probe(c, "default/strict", "default/server", 80), "drop", ALLOWED, DEFAULT_DENY)


# --------------------------------------------------------------------------------------------
# Clusterwide policies (K8S "Clusterwide Policies")
# --------------------------------------------------------------------------------------------
def test_clusterwide_policy_spans_namespaces():
    """examples/policies/kubernetes/clusterwide/clusterscope-policy.yaml. K8S: "this policy will
    allow ingress traffic from pods matching the label name=luke from any namespace to pods
    matching the labels name=leia in any namespace." """
    c = _star_wars_namespaces(deployment("leia", "ns2", labels={"name": "leia"}, ports=[80]),
                              docs_yaml("""
        apiVersion: "cilium.io/v2"
        kind: CiliumClusterwideNetworkPolicy
        metadata:
          name: "clusterwide-policy-example"
        spec:
          description: "Policy for selective ingress allow to a pod from only a pod with given label"
          endpointSelector:
            matchLabels:
              name: leia
          ingress:
          - fromEndpoints:
            - matchLabels:
                name: luke
        """))
    for leia in ("ns1/leia-deployment", "ns2/leia"):
        for luke in ("ns1/luke-pod", "ns2/luke-pod"):
            check(probe(c, luke, leia, 80), "allow", ALLOWED, ALLOWED)
        check(probe(c, "ns2/vader-pod", leia, 80), "drop", ALLOWED, DEFAULT_DENY)


def test_clusterwide_wildcard_from_endpoints_to_kube_dns():
    """examples/policies/kubernetes/clusterwide/wildcard-from-endpoints.yaml. K8S "Example: Allow all
    ingress to kube-dns": "allows all Cilium managed endpoints in the cluster to communicate with
    kube-dns on port 53/UDP in the kube-system namespace." (``fromEndpoints: [{}]`` in a CCNP =
    every endpoint; kube-dns becomes ingress default-deny for everything else.)

    The example carries a top-level ``description:`` the CRD does not have: kubectl's strict field
    validation (the default since 1.27) refuses it as ``unknown field "description"``, so the
    evaluator does too; without it the policy applies as documented."""
    ccnp_doc = docs_yaml("""
        apiVersion: "cilium.io/v2"
        kind: CiliumClusterwideNetworkPolicy
        description: "Policy for ingress allow to kube-dns from all Cilium managed endpoints in the cluster"
        metadata:
          name: "wildcard-from-endpoints"
        spec:
          endpointSelector:
            matchLabels:
              k8s:io.kubernetes.pod.namespace: kube-system
              k8s-app: kube-dns
          ingress:
          - fromEndpoints:
            - {}
            toPorts:
            - ports:
              - port: "53"
                protocol: UDP
        """)
    with pytest.raises(api().PolicyInputError, match='unknown field "description"'):
        cluster(ccnp_doc)
    del ccnp_doc[0]["description"]
    c = cluster(namespace("ns1"), deployment("client", "ns1"), deployment("client"), ccnp_doc)
    for source in ("ns1/client", "default/client"):
        check(probe(c, source, "kube-system/coredns", 53, protocol="UDP"), "allow", ALLOWED, ALLOWED)
        check(probe(c, source, "kube-system/coredns", 53), "drop", ALLOWED, DEFAULT_DENY)
        check(probe(c, source, "kube-system/coredns", 9153), "drop", ALLOWED, DEFAULT_DENY)


def test_clusterwide_namespace_labels_selector():
    """K8S: "Using namespace-specific information like io.cilium.k8s.namespace.labels within a
    fromEndpoints or toEndpoints is supported only for a CiliumClusterwideNetworkPolicy". Selector
    from examples/policies/kubernetes/namespace/namespace-labels-policy.yaml
    (``io.cilium.k8s.namespace.labels.faction: alliance``), in a CCNP."""
    c = cluster(namespace("rebels", faction="alliance"), namespace("empire", faction="empire"),
                deployment("rebel-base", labels={"name": "rebel-base"}, ports=[80]),
                deployment("xwing", "rebels"), deployment("tiefighter", "empire"),
                {"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy",
                 "metadata": {"name": "alliance-only"},
                 "spec": {"endpointSelector": {"matchLabels": {"name": "rebel-base"}},
                          "ingress": [{"fromEndpoints": [{"matchLabels": {
                              "io.cilium.k8s.namespace.labels.faction": "alliance"}}]}]}})
    check(probe(c, "rebels/xwing", "default/rebel-base", 80), "allow", ALLOWED, ALLOWED)
    check(probe(c, "empire/tiefighter", "default/rebel-base", 80), "drop", ALLOWED, DEFAULT_DENY)


# --------------------------------------------------------------------------------------------
# Entities (L3 "Entities based")
# --------------------------------------------------------------------------------------------
def _entity_cluster(direction, *entities):
    key = "toEntities" if direction == "egress" else "fromEntities"
    rule = {key: list(entities)}
    return cluster(namespace("other"), deployment("app", labels={"env": "dev"}, ports=[80]),
                   deployment("peer", ports=[80]), deployment("peer", "other", ports=[80]),
                   cnp("entities", endpointSelector={"matchLabels": {"env": "dev"}},
                       **{direction: [rule]}))


def test_to_entities_world():
    """L3 "world": "The world entity corresponds to all endpoints outside of the cluster. Allowing
    to world is identical to allowing to CIDR 0.0.0.0/0." - not to pods."""
    c = _entity_cluster("egress", "world")
    check(world(c, "default/app"), "allow", ALLOWED, NA)
    check(probe(c, "default/app", "default/peer", 80), "drop", DEFAULT_DENY, NA)


def test_to_entities_cluster():
    """L3 "cluster": "Cluster is the logical group of all network endpoints inside of the local
    cluster. This includes all Cilium-managed endpoints of the local cluster" - every pod, any
    namespace (kube-system too), but not the world."""
    c = _entity_cluster("egress", "cluster")
    check(probe(c, "default/app", "default/peer", 80), "allow", ALLOWED, ALLOWED)
    check(probe(c, "default/app", "other/peer", 80), "allow", ALLOWED, ALLOWED)
    check(probe(c, "default/app", "kube-system/coredns", 53, protocol="UDP"), "allow", ALLOWED)
    check(world(c, "default/app"), "drop", DEFAULT_DENY, NA)


def test_to_entities_all():
    """L3 "all": "The all entity represents the combination of all known clusters as well world and
    whitelists all communication." """
    c = _entity_cluster("egress", "all")
    check(probe(c, "default/app", "other/peer", 80), "allow", ALLOWED, ALLOWED)
    check(world(c, "default/app"), "allow", ALLOWED, NA)


@pytest.mark.parametrize("entity", ["host", "kube-apiserver", "remote-node", "health", "init",
                                    "unmanaged", "ingress"])
def test_to_entities_that_are_neither_pods_nor_world(entity):
    """L3: "host" = "the local host", "kube-apiserver" = "the kube-apiserver in a Kubernetes cluster"
    (examples/policies/l3/entities/host.yaml, apiserver.yaml use ``env: dev``), "remote-node" =
    "Any node in any of the connected clusters other than the local host", "health" = "the health
    endpoints", "init" = endpoints "for which the security identity has not been resolved yet",
    "unmanaged" = "endpoints not managed by Cilium", "ingress" = "the Cilium Envoy instance that
    handles ingress L7 traffic". None is a workload pod or a world address, and the rule selects
    the endpoint for egress (default deny)."""
    c = _entity_cluster("egress", entity)
    check(probe(c, "default/app", "default/peer", 80), "drop", DEFAULT_DENY, NA)
    check(world(c, "default/app"), "drop", DEFAULT_DENY, NA)


def test_from_entities_world_does_not_admit_pods():
    """examples/policies/l3/entities/world.yaml: "enable access from outside of the cluster to all
    endpoints that have the label role=public" - pods are not world."""
    c = cluster(deployment("public", labels={"role": "public"}, ports=[80]), deployment("client"),
                docs_yaml("""
        apiVersion: "cilium.io/v2"
        kind: CiliumNetworkPolicy
        metadata:
          name: "from-world-to-role-public"
        spec:
          endpointSelector:
            matchLabels:
              role: public
          ingress:
            - fromEntities:
              - world
        """, "default"))
    check(probe(c, "default/client", "default/public", 80), "drop", ALLOWED, DEFAULT_DENY)


@pytest.mark.parametrize("entity", ["cluster", "all"])
def test_from_entities_cluster_and_all_admit_every_pod(entity):
    """L3 "cluster" / "all" as above, on ingress."""
    c = _entity_cluster("ingress", entity)
    check(probe(c, "other/peer", "default/app", 80), "allow", ALLOWED, ALLOWED)
    check(probe(c, "default/peer", "default/app", 80), "allow", ALLOWED, ALLOWED)


# --------------------------------------------------------------------------------------------
# CIDR (L3 "IP/CIDR based")
# --------------------------------------------------------------------------------------------
CIDR_YAML = """
    apiVersion: "cilium.io/v2"
    kind: CiliumNetworkPolicy
    metadata:
      name: "cidr-rule"
    spec:
      endpointSelector:
        matchLabels:
          app: myService
      egress:
      - toCIDR:
        - 20.1.1.1/32
      - toCIDRSet:
        - cidr: 10.0.0.0/8
          except:
          - 10.96.0.0/12
    """


def test_to_cidr_docs_example():
    """examples/policies/l3/cidr/cidr.yaml. L3 "Allow to external CIDR block": "allow all endpoints
    with the label app=myService to talk to the external IP 20.1.1.1, as well as the CIDR prefix
    10.0.0.0/8, but not CIDR prefix 10.96.0.0/12". The pod network (10.244.0.0/16 here) lies in
    10.0.0.0/8 but "CIDR rules do not apply to traffic where both sides of the connection are ...
    managed by Cilium" and "By default, CIDR-based selectors do not match in-cluster entities
    (pods or nodes)."""
    c = cluster(deployment("myService", labels={"app": "myService"}), deployment("web", ports=[80]),
                docs_yaml(CIDR_YAML, "default"))
    check(world(c, "default/myService", address="20.1.1.1"), "allow", ALLOWED, NA)
    check(world(c, "default/myService", address="20.1.1.2"), "drop", DEFAULT_DENY, NA)
    check(world(c, "default/myService", address="10.1.2.3"), "allow", ALLOWED, NA)
    check(probe(c, "default/myService", "default/web", 80), "drop", DEFAULT_DENY, NA)


@pytest.mark.parametrize("address,ok", [("192.0.2.10", True), ("192.0.2.127", True),
                                        ("192.0.2.128", False), ("192.0.2.200", False),
                                        ("192.0.3.1", False)])
def test_to_cidr_set_except(address, ok):
    """L3 ``toCIDRSet``: "List of destination prefixes/CIDRs that endpoints selected by
    endpointSelector are allowed to talk to, along with an optional list of prefixes/CIDRs per
    source prefix/CIDR that are subnets of the destination prefix/CIDR to which communication is
    not allowed." """
    c = cluster(deployment("client"),
                cnp("cidrset", endpointSelector={"matchLabels": {"app": "client"}},
                    egress=[{"toCIDRSet": [{"cidr": "192.0.2.0/24", "except": ["192.0.2.128/25"]}]}]))
    v = world(c, "default/client", address=address)
    check(v, *(("allow", ALLOWED, NA) if ok else ("drop", DEFAULT_DENY, NA)))


def test_cidr_dependent_l4_rule():
    """examples/policies/l4/cidr_l4_combined.yaml. L4 "CIDR-dependent Layer 4 Rule": role=crawler
    may "communicate with all remote destinations inside the CIDR 192.0.2.0/24, but they must
    communicate using TCP on port 80"."""
    c = cluster(deployment("crawler", labels={"role": "crawler"}), docs_yaml("""
        apiVersion: "cilium.io/v2"
        kind: CiliumNetworkPolicy
        metadata:
          name: "cidr-l4-rule"
        spec:
          endpointSelector:
            matchLabels:
              role: crawler
          egress:
          - toCIDR:
            - 192.0.2.0/24
            toPorts:
            - ports:
              - port: "80"
                protocol: TCP
        """, "default"))
    check(world(c, "default/crawler", port=80, address="192.0.2.10"), "allow", ALLOWED, NA)
    check(world(c, "default/crawler", port=443, address="192.0.2.10"), "drop", DEFAULT_DENY, NA)
    check(world(c, "default/crawler", port=80, address="198.51.100.1"), "drop", DEFAULT_DENY, NA)


def test_from_cidr_never_matches_pods():
    """L3 "IP/CIDR based": "CIDR rules do not apply to traffic where both sides of the connection
    are either managed by Cilium or use an IP belonging to a node in the cluster"."""
    c = cluster(deployment("client"), deployment("server", ports=[80]),
                cnp("from-cidr", endpointSelector={"matchLabels": {"app": "server"}},
                    ingress=[{"fromCIDR": ["0.0.0.0/0"]},
                             {"fromCIDRSet": [{"cidr": "10.0.0.0/8"}]}]))
    check(probe(c, "default/client", "default/server", 80), "drop", ALLOWED, DEFAULT_DENY)


# --------------------------------------------------------------------------------------------
# Deny policies (DENY; L3 "Simple Egress Deny")
# --------------------------------------------------------------------------------------------
def test_egress_deny_docs_example():
    """examples/policies/l3/egress-deny/egress-deny.yaml. L3 "Simple Egress Deny": "If an egressDeny
    rule matches, egress traffic is denied even if the policy contains egress rules that would
    otherwise allow it." (the policy allows toEntities all)"""
    c = cluster(roles("default", "frontend", "backend", "other"), docs_yaml("""
        apiVersion: "cilium.io/v2"
        kind: CiliumNetworkPolicy
        metadata:
          name: "deny-egress-example"
        spec:
          endpointSelector:
            matchLabels:
              role: frontend
          egress:
          - toEntities:
            - all
          egressDeny:
          - toEndpoints:
            - matchLabels:
                role: backend
        """, "default"))
    check(probe(c, "default/frontend", "default/backend", 80), "drop", POLICY_DENY, NA)
    check(probe(c, "default/frontend", "default/other", 80), "allow", ALLOWED, ALLOWED)
    check(world(c, "default/frontend"), "allow", ALLOWED, NA)


CLIENT = [{"matchLabels": {"role": "client"}}]
ALLOW_L3 = cnp("allow-l3", endpointSelector={"matchLabels": {"role": "server"}},
               ingress=[{"fromEndpoints": CLIENT}])
ALLOW_L4 = cnp("allow-l4", endpointSelector={"matchLabels": {"role": "server"}},
               ingress=[{"fromEndpoints": CLIENT, "toPorts": [{"ports": [
                   {"port": "80", "protocol": "TCP"}, {"port": "81", "protocol": "TCP"}]}]}])
DENY_L4 = cnp("deny-l4", endpointSelector={"matchLabels": {"role": "server"}},
              ingressDeny=[{"fromEndpoints": CLIENT,
                            "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}]}]}])
DENY_L3 = cnp("deny-l3", endpointSelector={"matchLabels": {"role": "server"}},
              ingressDeny=[{"fromEndpoints": CLIENT}])
D, DD = ("drop", ALLOWED, POLICY_DENY), ("drop", ALLOWED, DEFAULT_DENY)
A = ("allow", ALLOWED, ALLOWED)


@pytest.mark.parametrize("policies,port81,port80", [
    ([ALLOW_L3, ALLOW_L4], A, A),
    ([ALLOW_L3, ALLOW_L4, DENY_L4], A, D),
    ([ALLOW_L3, ALLOW_L4, DENY_L3], D, D),
    ([ALLOW_L3, ALLOW_L4, DENY_L4, DENY_L3], D, D),
    ([DENY_L4], DD, D),
], ids=["col1-allow-only", "col2-deny-80", "col3-deny-client", "col4-both-denies",
        "col5-deny-only"])
def test_deny_policy_table(policies, port81, port80):
    """DENY's table "Set of Ingress Policies Deployed to Server Pod" (L7 row left out): result rows
    "curl server:81: Allowed Allowed Denied Denied Denied" and "curl server:80: Allowed Denied Denied
    Denied Denied". "Deny policies take precedence over allow policies". Column 5 (deny only): "Pods
    will enter default-deny mode as soon as a single policy selects it" (cilium/cilium#16129, aanm:
    "If a policy deny is in place then no traffic is allowed, i.e., the endpoint enters a default
    deny mode") - so :81 is a default-deny drop, :80 a deny-rule drop."""
    c = cluster(deployment("server", labels={"role": "server"}, ports=[80, 81]),
                deployment("client", labels={"role": "client"}), policies)
    check(probe(c, "default/client", "default/server", 81), *port81)
    check(probe(c, "default/client", "default/server", 80), *port80)


def test_deny_wins_over_a_kubernetes_networkpolicy_allow():
    """DENY: "Deny policies take precedence over allow policies, regardless of whether they are a
    Cilium Network Policy, a Clusterwide Cilium Network Policy or even a Kubernetes Network
    Policy." """
    c = cluster(deployment("server", labels={"role": "server"}, ports=[80]),
                deployment("client", labels={"role": "client"}), deployment("other"),
                netpol("allow-all", podSelector={}, policyTypes=["Ingress"], ingress=[{}]),
                DENY_L3)
    check(probe(c, "default/client", "default/server", 80), "drop", ALLOWED, POLICY_DENY)
    check(probe(c, "default/other", "default/server", 80), "allow", ALLOWED, ALLOWED)


def test_clusterwide_world_deny_keeps_in_cluster_traffic():
    """examples/policies/l3/entities/from_world_deny.yaml. DENY: "deny ingress from "world" on all
    namespaces on all Pods managed by Cilium. Existing inter-cluster policies will still be allowed
    as this policy is allowing traffic from everywhere except from "world"." """
    c = cluster(namespace("other"), deployment("server", ports=[80]), deployment("client", "other"),
                docs_yaml("""
        apiVersion: "cilium.io/v2"
        kind: CiliumClusterwideNetworkPolicy
        metadata:
          name: "external-lockdown"
        spec:
          endpointSelector: {}
          ingressDeny:
          - fromEntities:
            - "world"
          ingress:
          - fromEntities:
            - "all"
        """))
    check(probe(c, "other/client", "default/server", 80), "allow", ALLOWED, ALLOWED)


# --------------------------------------------------------------------------------------------
# enableDefaultDeny (MODES "Endpoint default policy")
# --------------------------------------------------------------------------------------------
INTERCEPT_ALL_DNS = """
    apiVersion: cilium.io/v2
    kind: CiliumClusterwideNetworkPolicy
    metadata:
      name: intercept-all-dns
    spec:
      endpointSelector:
        matchExpressions:
          - key: "io.kubernetes.pod.namespace"
            operator: "NotIn"
            values:
            - "kube-system"
          - key: "k8s-app"
            operator: "NotIn"
            values:
            - kube-dns
      enableDefaultDeny:
        egress: false
        ingress: false
      egress:
        - toEndpoints:
            - matchLabels:
                io.kubernetes.pod.namespace: kube-system
                k8s-app: kube-dns
          toPorts:
            - ports:
              - port: "53"
                protocol: TCP
              - port: "53"
                protocol: UDP
              rules:
                dns:
                  - matchPattern: "*"
    """


def test_intercept_all_dns_does_not_block_anything():
    """MODES: "It is possible to create policies that do not enable the default-deny mode for
    selected endpoints. ... Rules with EnableDefaultDeny disabled are ignored when determining the
    default mode. For example, this policy causes all DNS traffic to be intercepted, but does not
    block any traffic, even if it is the first policy to apply to an endpoint." (policy copied)"""
    c = cluster(namespace("other"), deployment("client"), deployment("web", "other", ports=[80]),
                service("web", "other", ports=[80]), deployment("web", ports=[80]),
                docs_yaml(INTERCEPT_ALL_DNS))
    check(probe(c, "default/client", "other/web", 80), "allow", ALLOWED, ALLOWED)
    check(probe(c, "default/client", "other/web", 80, via="service-name"), "allow", ALLOWED, ALLOWED)
    check(probe(c, "default/client", "world:example.com", 443, via="fqdn"), "allow", ALLOWED, NA)
    check(probe(c, "other/web", "default/web", 80), "allow", ALLOWED, ALLOWED)


def test_enable_default_deny_does_not_disable_l7_dns_rules():
    """MODES warning: "EnableDefaultDeny does not apply to layer-7 policy. Adding a layer-7 rule that
    does not include a layer-7 allow-all will cause drops, even when default-deny is explicitly
    disabled." The intercept-all-dns policy with ``matchName: cilium.io`` instead of ``*``: other
    lookups are refused by the DNS proxy (docs "Layer 7 Policies": "a DNS REFUSED response"); L3/L4
    traffic stays open."""
    text = INTERCEPT_ALL_DNS.replace('- matchPattern: "*"', '- matchName: "cilium.io"')
    c = cluster(deployment("client"), deployment("web", ports=[80]), service("web", ports=[80]),
                docs_yaml(text))
    check(probe(c, "default/client", "default/web", 80, via="service-name"), "dns-fail", "dns-fail",
          NA)
    check(probe(c, "default/client", "world:cilium.io", 443, via="fqdn"), "allow", ALLOWED, NA)
    check(probe(c, "default/client", "default/web", 80), "allow", ALLOWED, ALLOWED)


def test_enable_default_deny_ingress_false_makes_a_policy_non_isolating():
    """MODES: "The field EnableDefaultDeny configures this. Rules with EnableDefaultDeny disabled are
    ignored when determining the default mode." - a CNP allowing frontend with
    ``enableDefaultDeny: {ingress: false}`` leaves the backend open to everyone, until another
    (isolating) policy selects it."""
    relaxed = cnp("relaxed", endpointSelector={"matchLabels": {"role": "backend"}},
                  enableDefaultDeny={"ingress": False},
                  ingress=[{"fromEndpoints": [{"matchLabels": {"role": "frontend"}}]}])
    c = cluster(roles("default", "frontend", "backend", "other"), relaxed)
    check(probe(c, "default/other", "default/backend", 80), "allow", ALLOWED, ALLOWED)
    check(probe(c, "default/frontend", "default/backend", 80), "allow", ALLOWED, ALLOWED)
    strict = cnp("strict", endpointSelector={"matchLabels": {"role": "backend"}},
                 ingress=[{"fromEndpoints": [{"matchLabels": {"role": "nobody"}}]}])
    c = cluster(roles("default", "frontend", "backend", "other"), relaxed, strict)
    check(probe(c, "default/other", "default/backend", 80), "drop", ALLOWED, DEFAULT_DENY)
    check(probe(c, "default/frontend", "default/backend", 80), "allow", ALLOWED, ALLOWED)


# --------------------------------------------------------------------------------------------
# ``specs: [...]`` (two rule sets in one CNP)
# --------------------------------------------------------------------------------------------
def test_specs_list_each_rule_set_selects_its_own_endpoints():
    """examples/policies/getting-started/dns-port.yaml (Cilium's ``specs:`` form, two rule sets):
    the second rule set (``endpointSelector: {matchLabels: {}}``) puts every pod of the namespace in
    egress default-deny with only DNS to kube-dns allowed; the first adds FQDN egress for mediabot
    only (docs "Locking Down External Access with DNS-Based Policies": "with this policy the
    mediabot doesn't have access to any internal cluster service other than kube-dns")."""
    policy = docs_yaml("""
        apiVersion: "cilium.io/v2"
        kind: CiliumNetworkPolicy
        metadata:
          name: "fqdn"
        specs:
          - endpointSelector:
              matchLabels:
                org: empire
                class: mediabot
            egress:
            - toFQDNs:
                - matchPattern: "*.twitter.com"
              toPorts:
              - ports:
                - port: "443"
                  protocol: TCP
          - endpointSelector:
              matchLabels: {}
            egress:
              - toEndpoints:
                - matchLabels:
                    "k8s:io.kubernetes.pod.namespace": kube-system
                    "k8s:k8s-app": kube-dns
                toPorts:
                - ports:
                  - port: "53"
                    protocol: ANY
                  rules:
                    dns:
                    - matchPattern: "*"
        """, "default")
    c = cluster(pod("mediabot", labels={"org": "empire", "class": "mediabot"}),
                pod("spaceship", labels={"org": "empire", "class": "spaceship"}),
                deployment("web", ports=[80]), policy)
    check(probe(c, "default/mediabot", "world:help.twitter.com", 443, via="fqdn"), "allow",
          ALLOWED, NA)
    check(probe(c, "default/spaceship", "world:help.twitter.com", 443, via="fqdn"), "drop",
          DEFAULT_DENY, NA)
    check(probe(c, "default/mediabot", "default/web", 80), "drop", DEFAULT_DENY, NA)
    check(probe(c, "default/spaceship", "kube-system/coredns", 53, protocol="UDP"), "allow", ALLOWED)


def test_egress_deny_only_policy_puts_egress_in_default_deny():
    """cilium/cilium#16129 (aanm): "If a policy deny is in place then no traffic is allowed, i.e., the
    endpoint enters a default deny mode and you have to explicitly allow pods. See the last column
    of the table ... (I know the example is for ingress but the same logic applies for egress)"."""
    c = cluster(roles("default", "frontend", "backend", "other"),
                cnp("deny-only", endpointSelector={"matchLabels": {"role": "frontend"}},
                    egressDeny=[{"toEndpoints": [{"matchLabels": {"role": "backend"}}]}]))
    check(probe(c, "default/frontend", "default/backend", 80), "drop", POLICY_DENY, NA)
    check(probe(c, "default/frontend", "default/other", 80), "drop", DEFAULT_DENY, NA)
    check(world(c, "default/frontend"), "drop", DEFAULT_DENY, NA)
