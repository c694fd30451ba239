"""Probes through Services: DNS first, then the endpoint and its target port.

Sources:
- HOOT = seed 001 (/work/shared/seeds/001_dd665a99f124401a.txt, "Hoot Episode 51 - Kubernetes
  Networking and Cilium - Part 2"), with istio's samples/sleep/sleep.yaml and the
  samples/httpbin/httpbin.yaml of that time (service port 8000 -> targetPort 80), copied below;
  the seed's policies are the hoot51 pack's (scenarios/seed_manifests/hoot51/).
- K8S_SVC = https://kubernetes.io/docs/concepts/services-networking/service/
- CILIUM_L4 = https://docs.cilium.io/en/stable/security/policy/language/#layer-4-examples
Expected values were written from these texts before running the evaluator.
"""
from __future__ import annotations

import pytest

from scenarios import hoot51

from .conftest import (
    ALLOWED,
    DEFAULT_DENY,
    NA,
    check,
    cluster,
    deployment,
    docs_yaml,
    namespace,
    netpol,
    probe,
    service,
)

SLEEP_YAML = """
    apiVersion: v1
    kind: ServiceAccount
    metadata:
      name: sleep
    ---
    apiVersion: v1
    kind: Service
    metadata:
      name: sleep
      labels:
        app: sleep
        service: sleep
    spec:
      ports:
      - port: 80
        name: http
      selector:
        app: sleep
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: sleep
    spec:
      replicas: 1
      selector:
        matchLabels:
          app: sleep
      template:
        metadata:
          labels:
            app: sleep
        spec:
          terminationGracePeriodSeconds: 0
          serviceAccountName: sleep
          containers:
          - name: sleep
            image: curlimages/curl:8.16.0
            command: ["/bin/sleep", "infinity"]
            imagePullPolicy: IfNotPresent
    """
HTTPBIN_YAML = """
    apiVersion: v1
    kind: ServiceAccount
    metadata:
      name: httpbin
    ---
    apiVersion: v1
    kind: Service
    metadata:
      name: httpbin
      labels:
        app: httpbin
    spec:
      ports:
      - name: http
        port: 8000
        targetPort: 80
      selector:
        app: httpbin
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: httpbin
      labels:
        app: httpbin
        version: v1
    spec:
      replicas: 1
      selector:
        matchLabels:
          app: httpbin
          version: v1
      template:
        metadata:
          labels:
            app: httpbin
            version: v1
        spec:
          serviceAccountName: httpbin
          containers:
          - image: docker.io/kennethreitz/httpbin
            imagePullPolicy: IfNotPresent
            name: httpbin
            ports:
            - containerPort: 80
    """
# HOOT "Egress policies": the seed's manifests as the hoot51 pack applies them
# (scenarios/seed_manifests/hoot51/*.yaml, with ``namespace: default``, the current namespace)
DENY_SLEEP_EGRESS = hoot51.policy("deny-sleep-egress")
DENY_SLEEP_TO_HTTPBIN_EGRESS = hoot51.policy("deny-sleep-to-httpbin-egress")
ALLOW_DNS_EGRESS = hoot51.policy("allow-dns-egress")


def hoot(*policies):
    return cluster(docs_yaml(SLEEP_YAML, "default"), docs_yaml(HTTPBIN_YAML, "default"), list(policies))


def curl_httpbin(c, via):
    """``kubectl exec -it deploy/sleep -- curl httpbin:8000/headers``"""
    return probe(c, "default/sleep", "default/httpbin", 8000, via=via, request="GET /headers")


def test_hoot_baseline_connectivity():
    """HOOT: "We can send a request to make sure there's connectivity between the two:
    kubectl exec -it deploy/sleep -- curl httpbin:8000/headers" (no policies yet)."""
    check(curl_httpbin(hoot(), "service-name"), "allow", ALLOWED, ALLOWED)


def test_hoot_deny_sleep_egress():
    """HOOT: after deny-sleep-egress, "If we retry the above request, it will fail." - by service
    IP (no lookup involved) it is the egress default deny that drops it."""
    check(curl_httpbin(hoot(DENY_SLEEP_EGRESS), "service-ip"), "drop", DEFAULT_DENY, NA)


def test_hoot_egress_without_dns_fails_by_name_but_works_by_service_ip():
    """HOOT: with deny-sleep-egress + deny-sleep-to-httpbin-egress: "If you send a request you'll
    notice that it fails - why is that? The reason is DNS -- we're denying all egress traffic from
    the sleep pod, including requests to resolve the httpbin DNS name. We can confirm this by
    sending a request using the service IP instead of the DNS name and it will work." """
    c = hoot(DENY_SLEEP_EGRESS, DENY_SLEEP_TO_HTTPBIN_EGRESS)
    check(curl_httpbin(c, "service-name"), "dns-fail", "dns-fail", NA)
    check(curl_httpbin(c, "service-ip"), "allow", ALLOWED, ALLOWED)


def test_hoot_allow_dns_egress_fixes_the_lookup():
    """HOOT: "To fix this, we can create a policy that allows all egress traffic for all pods in the
    namespace to the core-dns service running in the kube-system namespace: [allow-dns-egress] This
    time, sending a request to the httpbin service will work." """
    c = hoot(DENY_SLEEP_EGRESS, DENY_SLEEP_TO_HTTPBIN_EGRESS, ALLOW_DNS_EGRESS)
    check(curl_httpbin(c, "service-name"), "allow", ALLOWED, ALLOWED)
    # allow-dns-egress also selects httpbin (podSelector: {}), which now may only reach kube-dns
    check(probe(c, "default/httpbin", "default/sleep", 80), "drop", DEFAULT_DENY, NA)


def test_dns_step_only_applies_to_lookups():
    """DESIGN.md §8: `dns-fail` is "the lookup itself is dropped or refused" - a probe by pod IP or
    service IP makes no lookup, so an egress policy without DNS does not turn it into dns-fail."""
    c = hoot(DENY_SLEEP_EGRESS, DENY_SLEEP_TO_HTTPBIN_EGRESS)
    check(probe(c, "default/sleep", "default/httpbin", 80), "allow", ALLOWED, ALLOWED)


# --------------------------------------------------------------------------------------------
# Policies see the endpoint (target) port, never the service port
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("policy_port,expected", [(80, "allow"), (8000, "drop")])
def test_policy_matches_target_port_not_service_port(policy_port, expected):
    """HOOT "L7 policies": "Note port 80 here! We aren't talking about the service port, but the
    "endpoint" port, which is 80." CILIUM_L4: "Layer 4 policies apply to ports after service port
    mapping has been applied." httpbin's Service maps 8000 -> targetPort 80."""
    policy = netpol("httpbin", podSelector={"matchLabels": {"app": "httpbin"}},
                    policyTypes=["Ingress"],
                    ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "sleep"}}}],
                              "ports": [{"port": policy_port}]}])
    c = cluster(docs_yaml(SLEEP_YAML, "default"), docs_yaml(HTTPBIN_YAML, "default"), policy)
    for via in ("service-name", "service-ip"):
        v = curl_httpbin(c, via)
        if expected == "allow":
            check(v, "allow", ALLOWED, ALLOWED)
        else:
            check(v, "drop", ALLOWED, DEFAULT_DENY)


def test_named_target_port_resolves_on_the_backend():
    """K8S_SVC "Port definitions": "Port definitions in Pods have names, and you can reference these
    names in the targetPort attribute of a Service." The EKS workshop's catalog Service (seed 004's
    application, aws-samples/eks-workshop-v2 manifests/base-application/catalog/service.yaml) is
    ``port: 80, targetPort: http`` and the pod names 8080 ``http``; policies see 8080."""
    def c(policy_port):
        return cluster(
            namespace("catalog"), namespace("ui"),
            deployment("catalog", "catalog", labels={"app.kubernetes.io/name": "catalog",
                                                     "app.kubernetes.io/component": "service"},
                       ports=[("http", 8080)]),
            service("catalog", "catalog",
                    selector={"app.kubernetes.io/name": "catalog",
                              "app.kubernetes.io/component": "service"},
                    ports=[{"port": 80, "targetPort": "http", "protocol": "TCP", "name": "http"}]),
            deployment("ui", "ui", labels={"app.kubernetes.io/name": "ui"}),
            netpol("catalog", "catalog", podSelector={"matchLabels": {"app.kubernetes.io/name": "catalog"}},
                   ingress=[{"ports": [{"port": policy_port}]}]))
    for via in ("service-name", "service-ip"):
        check(probe(c(8080), "ui/ui", "catalog/catalog", 80, via=via), "allow", ALLOWED, ALLOWED)
        check(probe(c(80), "ui/ui", "catalog/catalog", 80, via=via), "drop", ALLOWED, DEFAULT_DENY)


def test_target_port_defaults_to_port():
    """K8S_SVC: "By default and for convenience, the targetPort is set to the same value as the port
    field." Cilium's namespace demo (examples/policies/kubernetes/namespace/demo-pods.yaml) exposes
    leia with ``ports: [{port: 80}]`` only."""
    demo = docs_yaml("""
        apiVersion: v1
        kind: Namespace
        metadata:
          name: ns1
        ---
        apiVersion: v1
        kind: Namespace
        metadata:
          name: ns2
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: leia-deployment
          namespace: ns1
        spec:
          selector:
            matchLabels:
              name: leia
          replicas: 1
          template:
            metadata:
              labels:
                name: leia
              namespace: ns1
            spec:
              containers:
              - name: leia-container
                image: docker.io/cilium/json-mock:1.2
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: leia
          namespace: ns1
        spec:
          type: ClusterIP
          ports:
          - port: 80
          selector:
            name: leia
        ---
        apiVersion: v1
        kind: Pod
        metadata:
          name: luke-pod
          namespace: ns2
          labels:
            name: luke
        spec:
          containers:
          - name: luke-container
            image: docker.io/cilium/json-mock:1.2
        """)
    only_80 = netpol("leia", "ns1", podSelector={"matchLabels": {"name": "leia"}},
                     ingress=[{"ports": [{"port": 80}]}])
    c = cluster(demo, only_80)
    for via in ("service-name", "service-ip"):
        check(probe(c, "ns2/luke-pod", "ns1/leia-deployment", 80, via=via), "allow", ALLOWED,
              ALLOWED)


def test_service_name_lookup_needs_only_udp_53_to_kube_dns():
    """Cilium's own kube-dns example allows exactly ``port: '53', protocol: UDP`` to kube-dns for the
    pods of a namespace (examples/policies/kubernetes/namespace/kubedns-policy.yaml, docs
    "Example: Allow egress to kube-dns in kube-system namespace"); with it, lookups succeed."""
    kubedns = docs_yaml("""
        apiVersion: "cilium.io/v2"
        kind: CiliumNetworkPolicy
        metadata:
          name: "allow-to-kubedns"
        spec:
          endpointSelector:
            {}
          egress:
          - toEndpoints:
            - matchLabels:
                k8s:io.kubernetes.pod.namespace: kube-system
                k8s-app: kube-dns
            toPorts:
            - ports:
              - port: '53'
                protocol: UDP
        """, namespace="public")
    c = cluster(namespace("public"), deployment("client", "public"),
                deployment("web", "public", ports=[80]), service("web", "public", ports=[80]),
                kubedns)
    # the lookup passes; the connection itself is not allowed by the egress policy
    check(probe(c, "public/client", "public/web", 80, via="service-name"), "drop", DEFAULT_DENY, NA)
    check(probe(c, "public/client", "kube-system/coredns", 53, protocol="UDP"), "allow", ALLOWED)
    check(probe(c, "public/client", "kube-system/coredns", 53), "drop", DEFAULT_DENY, NA)


def test_builtin_kube_dns_service():
    """Spec built-ins (specs/evaluator.md): Service kube-system/kube-dns (clusterIP 10.96.0.10,
    53/UDP "dns") selecting kube-system/coredns (k8s-app: kube-dns). A probe of it by service IP
    reaches the coredns endpoint."""
    c = cluster(deployment("client"))
    check(probe(c, "default/client", "kube-system/coredns", 53, via="service-ip", protocol="UDP",
                service="kube-dns"), "allow", ALLOWED, ALLOWED)


# --------------------------------------------------------------------------------------------
# The lookup is a flow of its own: both sides of it must allow it, deny rules apply to it
# --------------------------------------------------------------------------------------------
def _web():
    return [deployment("client"), deployment("web", ports=[80]), service("web", ports=[80])]


def test_lookup_dropped_at_kube_dns_ingress_is_a_dns_failure():
    """kubernetes.io Network Policies: "both the egress policy on the source pod and the ingress
    policy on the destination pod need to allow the connection" - for the lookup, the destination
    is kube-dns. A NetworkPolicy in kube-system admitting only kube-system pods to kube-dns makes
    the lookup from default fail (DESIGN.md §8: dns-fail, "the lookup itself is dropped")."""
    kube_dns_only_local = netpol("kube-dns-local", "kube-system",
                                 podSelector={"matchLabels": {"k8s-app": "kube-dns"}},
                                 ingress=[{"from": [{"podSelector": {}}]}])
    c = cluster(_web(), kube_dns_only_local)
    check(probe(c, "default/client", "default/web", 80, via="service-name"), "dns-fail", "dns-fail",
          NA)
    check(probe(c, "default/client", "default/web", 80, via="service-ip"), "allow", ALLOWED, ALLOWED)


def test_egress_deny_to_kube_dns_fails_the_lookup():
    """docs.cilium.io "Deny Policies": "Deny policies take precedence over allow policies" - an
    egressDeny to kube-dns beats an allow-all egress rule; lookups fail, IP probes pass."""
    from .conftest import cnp
    c = cluster(_web(), cnp("no-dns", endpointSelector={"matchLabels": {"app": "client"}},
                            egress=[{"toEntities": ["all"]}],
                            egressDeny=[{"toEndpoints": [{"matchLabels": {
                                "k8s:io.kubernetes.pod.namespace": "kube-system",
                                "k8s:k8s-app": "kube-dns"}}]}]))
    check(probe(c, "default/client", "default/web", 80, via="service-name"), "dns-fail", "dns-fail",
          NA)
    check(probe(c, "default/client", "default/web", 80, via="service-ip"), "allow", ALLOWED, ALLOWED)


@pytest.mark.parametrize("pattern,default_ok,other_ok", [
    ("*.*.svc.cluster.local", True, True),
    ("*.default.svc.cluster.local", True, False),
    ("*.*.svc.cluster.local.", True, True),  # the note writes it with the trailing root dot
])
def test_dns_rule_patterns_for_service_names(pattern, default_ok, other_ok):
    """docs.cilium.io "Layer 7 Policies" note: "When applying DNS policy in kubernetes, queries for
    service.namespace.svc.cluster.local. must be explicitly allowed with matchPattern:
    *.*.svc.cluster.local." The name queried for a Service is <svc>.<ns>.svc.cluster.local
    (kubernetes.io "DNS for Services and Pods"); ``*`` spans one label ("DNS based")."""
    from .conftest import cnp
    dns_rule = {"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system",
                                                 "k8s:k8s-app": "kube-dns"}}],
                "toPorts": [{"ports": [{"port": "53", "protocol": "ANY"}],
                             "rules": {"dns": [{"matchPattern": pattern}]}}]}
    # the web pods are allowed by name only: an L3 rule that also selected kube-dns (say
    # toEntities: cluster) would wildcard the DNS rule (cilium/cilium#8106, see
    # test_l3_allow_to_kube_dns_wildcards_the_dns_rule)
    webs = {"toEndpoints": [{"matchLabels": {"app": "web", "k8s:io.kubernetes.pod.namespace": ns}}
                            for ns in ("default", "other")]}
    c = cluster(namespace("other"), _web(), deployment("web", "other", ports=[80]),
                service("web", "other", ports=[80]),
                cnp("dns", endpointSelector={"matchLabels": {"app": "client"}},
                    egress=[dns_rule, webs]))
    for ns, ok in (("default", default_ok), ("other", other_ok)):
        v = probe(c, "default/client", f"{ns}/web", 80, via="service-name")
        if ok:
            check(v, "allow", ALLOWED, ALLOWED)
        else:
            check(v, "dns-fail", "dns-fail", NA)


def test_udp_service_port():
    """kubernetes.io Service: each port has a protocol; the built-in kube-dns Service maps 53/UDP
    "dns" to coredns' 53/UDP, so a NetworkPolicy allowing only UDP 53 into coredns admits the
    service-IP probe on 53/UDP and not 53/TCP."""
    c = cluster(deployment("client"),
                netpol("kube-dns-udp", "kube-system", podSelector={"matchLabels": {"k8s-app": "kube-dns"}},
                       ingress=[{"ports": [{"protocol": "UDP", "port": 53}]}]))
    check(probe(c, "default/client", "kube-system/coredns", 53, via="service-ip", protocol="UDP",
                service="kube-dns"), "allow", ALLOWED, ALLOWED)
    check(probe(c, "default/client", "kube-system/coredns", 53, via="service-ip", protocol="TCP",
                service="kube-dns"), "drop", ALLOWED, DEFAULT_DENY)


def test_l3_allow_to_kube_dns_wildcards_the_dns_rule():
    """cilium/cilium#8106 ("policy: fix wildcarding at L7 for DNS"): with an L7 DNS rule on port 53
    for kube-system "and another rule which allowed all at L3 for the kube-system namespace, the
    behavior which was expected is to allow *all* DNS traffic at L7 on port 53, since the second
    rule allows all at L3 (which thus allows all at L4, and at L7)". Layer 7 docs: "If a layer 4
    rule is specified in the policy, and a similar layer 4 rule with layer 7 rules is also
    specified, then the layer 7 portions of the latter rule will have no effect." A DNS rule
    allowing only cilium.io plus ``toEntities: [cluster]``: every lookup passes."""
    from .conftest import cnp
    dns_rule = {"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system",
                                                 "k8s:k8s-app": "kube-dns"}}],
                "toPorts": [{"ports": [{"port": "53", "protocol": "ANY"}],
                             "rules": {"dns": [{"matchName": "cilium.io"}]}}]}
    c = cluster(_web(), cnp("dns", endpointSelector={"matchLabels": {"app": "client"}},
                            egress=[dns_rule, {"toEntities": ["cluster"]}]))
    check(probe(c, "default/client", "default/web", 80, via="service-name"), "allow", ALLOWED,
          ALLOWED)
    # the lookup of an outside name passes too; the connection then has no allowing rule
    check(probe(c, "default/client", "world:example.com", 443), "drop", DEFAULT_DENY, NA)


@pytest.mark.parametrize("policy_port,expected", [(80, "allow"), (8000, "drop")])
def test_egress_policy_matches_target_port_too(policy_port, expected):
    """docs.cilium.io "Layer 4 Policies": "Layer 4 policies apply to ports after service port mapping
    has been applied." - on egress as well: sleep may reach httpbin on ``policy_port`` (plus DNS,
    HOOT's allow-dns-egress); curl httpbin:8000 reaches pod port 80."""
    egress = netpol("sleep-to-httpbin", podSelector={"matchLabels": {"app": "sleep"}},
                    policyTypes=["Egress"],
                    egress=[{"to": [{"podSelector": {"matchLabels": {"app": "httpbin"}}}],
                             "ports": [{"port": policy_port}]}])
    c = cluster(docs_yaml(SLEEP_YAML, "default"), docs_yaml(HTTPBIN_YAML, "default"), egress,
                ALLOW_DNS_EGRESS)
    v = curl_httpbin(c, "service-name")
    if expected == "allow":
        check(v, "allow", ALLOWED, ALLOWED)
    else:
        check(v, "drop", DEFAULT_DENY, NA)
