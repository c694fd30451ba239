"""DNS rules, toFQDNs, HTTP rules and listener redirects, from Cilium's documentation.

Sources:
- L3_DNS = docs.cilium.io/en/stable/security/policy/language/#dns-based
           (Documentation/security/policy/layer3.rst "DNS based")
- L7     = docs.cilium.io/en/stable/security/policy/language/#layer-7-examples
           (Documentation/security/policy/layer7.rst: "HTTP", "DNS Policy and IP Discovery")
- GS_DNS = docs.cilium.io/en/stable/security/dns/ ("Locking Down External Access with DNS-Based
           Policies", Documentation/security/dns.rst) with examples/kubernetes-dns/*.yaml
- GS_SW  = docs.cilium.io/en/stable/gettingstarted/demo/ (Star Wars demo: "Apply and Test
           HTTP-aware L7 Policy") with examples/minikube/http-sw-app.yaml, sw_l3_l4_l7_policy.yaml
- ENVOY  = envoyproxy.io api-v3 config.route.v3.HeaderMatcher ``safe_regex_match``: "If specified,
           this regex string is a regular expression rule which implies the entire request header
           value must match the regex. The rule will not match if only a subsequence of the request
           header value matches the regex." Cilium turns ``rules.http[].path`` / ``method`` into
           such matchers on ``:path`` / ``:method`` (cilium/cilium pkg/envoy/xds_server.go
           getHTTPRule: ``HeaderMatcher{Name: ":path", HeaderMatchSpecifier:
           &HeaderMatcher_SafeRegexMatch{...Regex: h.Path}}``), hence anchored regexes.
- L4_LISTENER = docs.cilium.io/en/stable/security/policy/language/#envoy-listener-redirect
           (Documentation/security/policy/layer4.rst "Redirect traffic to an Envoy listener")
- HOOT = seed 001; EGRESS_SEED = seed 000 (/work/shared/seeds/).
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
    cnp,
    deployment,
    docs_yaml,
    namespace,
    pod,
    probe,
    service,
)
from .test_docs_services import HTTPBIN_YAML, SLEEP_YAML

KUBE_DNS_ANY = {"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system",
                                                 "k8s:k8s-app": "kube-dns"}}],
                "toPorts": [{"ports": [{"port": "53", "protocol": "ANY"}],
                             "rules": {"dns": [{"matchPattern": "*"}]}}]}


def fqdn(c, source, host, port=443, **kw):
    return probe(c, source, f"world:{host}", port, via="fqdn", **kw)


# --------------------------------------------------------------------------------------------
# toFQDNs and the DNS proxy (L3_DNS, L7 "DNS Policy and IP Discovery")
# --------------------------------------------------------------------------------------------
FQDN_YAML = """
    apiVersion: "cilium.io/v2"
    kind: CiliumNetworkPolicy
    metadata:
      name: "to-fqdn"
    spec:
      endpointSelector:
        matchLabels:
          app: test-app
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
        - toFQDNs:
            - matchName: "my-remote-service.com"
    """


def test_to_fqdns_docs_example():
    """examples/policies/l3/fqdn/fqdn.yaml. L3_DNS: "The example below allows all DNS traffic on port
    53 to the DNS service and intercepts it via the DNS Proxy. ... When the application makes a
    request for my-remote-service.com, Cilium learns the IP address and will allow traffic due to
    the match on the name under the toFQDNs.matchName rule." Other names resolve (``*``) but are
    not allowed."""
    c = cluster(deployment("test-app"), docs_yaml(FQDN_YAML, "default"))
    check(fqdn(c, "default/test-app", "my-remote-service.com"), "allow", ALLOWED, NA)
    check(fqdn(c, "default/test-app", "my-remote-service.com", 80), "allow", ALLOWED, NA)
    check(fqdn(c, "default/test-app", "other-service.com"), "drop", DEFAULT_DENY, NA)


def test_to_fqdns_without_a_dns_rule_learns_nothing():
    """L3_DNS note: "In order to associate domain names with IP addresses, Cilium intercepts DNS
    responses per-Endpoint using a DNS Proxy. This requires Cilium to be configured with
    --enable-l7-proxy=true and an L7 policy allowing DNS requests." L7: "Only IPs in intercepted
    DNS responses to an application will be allowed in the Cilium policy rules." - the same policy
    with a plain L3 rule to kube-dns (no ``rules.dns``): the lookup is allowed, but not intercepted,
    so the connection to my-remote-service.com is dropped."""
    no_proxy = FQDN_YAML.replace("""
          toPorts:
            - ports:
               - port: "53"
                 protocol: ANY
              rules:
                dns:
                  - matchPattern: "*"
""", "\n")
    assert "rules" not in no_proxy
    c = cluster(deployment("test-app"), docs_yaml(no_proxy, "default"))
    check(fqdn(c, "default/test-app", "my-remote-service.com"), "drop", DEFAULT_DENY, NA)


def test_to_fqdns_never_matches_an_ip_literal():
    """L3_DNS: "The IP information is selected for insertion by matchName or matchPattern rules, and
    is collected from all DNS responses seen by Cilium on the node." - dialling an IP literal makes
    no DNS query, so no toFQDNs rule can allow it (GS_DNS policy, api.github.com)."""
    c = cluster(pod("mediabot", labels={"org": "empire", "class": "mediabot"}),
                docs_yaml(DNS_MATCHNAME, "default"))
    check(probe(c, "default/mediabot", "world:140.82.112.6", 443), "drop", DEFAULT_DENY, NA)


DNS_MATCHNAME = """
    apiVersion: "cilium.io/v2"
    kind: CiliumNetworkPolicy
    metadata:
      name: "fqdn"
    spec:
      endpointSelector:
        matchLabels:
          org: empire
          class: mediabot
      egress:
      - toFQDNs:
        - matchName: "api.github.com"
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
    """
DNS_PATTERN = DNS_MATCHNAME.replace('matchName: "api.github.com"', 'matchPattern: "*.github.com"')
# examples/kubernetes-dns/dns-port.yaml with the guide's *.github.com (the stored file still says
# *.twitter.com, the guide's text and outputs use GitHub).
DNS_PORT = DNS_PATTERN.replace('''        - matchPattern: "*.github.com"
''', '''        - matchPattern: "*.github.com"
        toPorts:
        - ports:
          - port: "443"
            protocol: TCP
''')


@pytest.mark.parametrize("policy,host,port,expected", [
    # "mediabot has access to api.github.com but doesn't have access to any other external service,
    # e.g., support.github.com" (curl: (28) Connection timed out)
    (DNS_MATCHNAME, "api.github.com", 443, "allow"),
    (DNS_MATCHNAME, "support.github.com", 443, "drop"),
    # "Test that mediabot has access to multiple GitHub services for which the DNS matches the
    # pattern *.github.com. It is important to note and test that this doesn't allow access to
    # github.com because the *. in the pattern requires one subdomain to be present"
    (DNS_PATTERN, "support.github.com", 443, "allow"),
    (DNS_PATTERN, "gist.github.com", 443, "allow"),
    (DNS_PATTERN, "github.com", 443, "drop"),
    # "the access to https://support.github.com on port 443 will succeed but the access to
    # http://support.github.com on port 80 will be denied."
    (DNS_PORT, "support.github.com", 443, "allow"),
    (DNS_PORT, "support.github.com", 80, "drop"),
], ids=["matchname-api", "matchname-support", "pattern-support", "pattern-gist",
        "pattern-apex", "port-443", "port-80"])
def test_dns_getting_started_guide(policy, host, port, expected):
    """GS_DNS, each step with its documented curl result."""
    c = cluster(pod("mediabot", labels={"org": "empire", "class": "mediabot"}),
                docs_yaml(policy, "default"))
    v = fqdn(c, "default/mediabot", host, port)
    check(v, *(("allow", ALLOWED, NA) if expected == "allow" else ("drop", DEFAULT_DENY, NA)))


DNS_L7_YAML = """
    apiVersion: cilium.io/v2
    kind: CiliumNetworkPolicy
    metadata:
      name: "tofqdn-dns-visibility"
    spec:
      endpointSelector:
        matchLabels:
          any:org: alliance
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
                - matchName: "cilium.io"
                - matchPattern: "*.cilium.io"
                - matchPattern: "*.api.cilium.io"

      - toFQDNs:
          - matchName: "cilium.io"
          - matchName: "sub.cilium.io"
          - matchName: "service1.api.cilium.io"
          - matchPattern: "special*service.api.cilium.io"
        toPorts:
          - ports:
             - port: "80"
               protocol: TCP
    """


@pytest.mark.parametrize("host,port,expected", [
    ("cilium.io", 80, "allow"),
    ("sub.cilium.io", 80, "allow"),
    ("service1.api.cilium.io", 80, "allow"),
    ("special-region1-service.api.cilium.io", 80, "allow"),
    ("region1-service.api.cilium.io", 80, "drop"),
    ("anothersub.cilium.io", 80, "drop"),
    ("sub.cilium.io", 443, "drop"),
    ("google.com", 80, "dns-fail"),
    ("sub.sub.cilium.io", 80, "dns-fail"),
])
def test_dns_policy_restricts_the_names_looked_up(host, port, expected):
    """examples/policies/l7/dns/dns.yaml. L7 "DNS Policy and IP Discovery": "L7 DNS policy allows
    queries for cilium.io, any subdomains of cilium.io, and any subdomains of api.cilium.io. No
    other DNS queries will be allowed. The separate L3 toFQDNs egress rule allows connections to
    any IPs returned in DNS queries for cilium.io, sub.cilium.io, service1.api.cilium.io and any
    matches of special*service.api.cilium.io, such as special-region1-service.api.cilium.io but not
    region1-service.api.cilium.io. DNS queries to anothersub.cilium.io are allowed but connections
    to the returned IPs are not ... restricting connections to TCP port 80 in this case." A refused
    query is a DNS REFUSED answer (L7 note), i.e. ``dns-fail``; ``*.cilium.io`` does not match
    ``sub.sub.cilium.io`` (L3_DNS: "``*.cilium.io`` will match ``sub.cilium.io`` but not
    ``cilium.io`` or ``sub.sub.cilium.io``"). ``any:org`` selects the k8s label org."""
    c = cluster(deployment("client", labels={"org": "alliance"}), docs_yaml(DNS_L7_YAML, "default"))
    v = fqdn(c, "default/client", host, port)
    if expected == "allow":
        check(v, "allow", ALLOWED, NA)
    elif expected == "drop":
        check(v, "drop", DEFAULT_DENY, NA)
    else:
        check(v, "dns-fail", "dns-fail", NA)


def test_dns_policy_must_allow_cluster_local_names():
    """L7 note: "When applying DNS policy in kubernetes, queries for
    service.namespace.svc.cluster.local. must be explicitly allowed with matchPattern:
    *.*.svc.cluster.local." - under dns.yaml a probe by service name fails at the lookup."""
    c = cluster(deployment("client", labels={"org": "alliance"}), deployment("web", ports=[80]),
                service("web", ports=[80]), docs_yaml(DNS_L7_YAML, "default"))
    check(probe(c, "default/client", "default/web", 80, via="service-name"), "dns-fail", "dns-fail",
          NA)


def test_cascaded_dns_patterns_allow_service_lookups():
    """examples/policies/l3/fqdn/fqdn-cascade.yaml: the DNS rule lists ``*.cluster.local``,
    ``*.*.cluster.local``, ``*.*.*.cluster.local`` ... (one ``*`` per label, L3_DNS). The lookup of
    ``web.default.svc.cluster.local`` passes; the connection is then judged by L3/L4 rules, and
    toFQDNs does not select in-cluster endpoints (L3_DNS: "DNS based rules are intended for
    external connections"), so it is dropped. A name outside ``cluster.local`` is refused."""
    cascade = docs_yaml("""
        apiVersion: "cilium.io/v2"
        kind: CiliumNetworkPolicy
        metadata:
          name: "to-fqdn-cascade"
        spec:
          endpointSelector:
            matchLabels:
              app: test-app
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
                      - matchPattern: '*.cluster.local'
                      - matchPattern: '*.*.cluster.local'
                      - matchPattern: '*.*.*.cluster.local'
                      - matchPattern: '*.*.*.*.cluster.local'
                      - matchPattern: '*.*.*.*.*.cluster.local'
                      - matchPattern: '*.*.*.*.*.*.cluster.local'
                      - matchPattern: '*.*.*.*.*.*.*.cluster.local'
                      - matchPattern: '*.*.*.*.*.*.*.*.cluster.local'
            - toFQDNs:
                - matchPattern: '*.cilium.io'
                - matchPattern: '*.*.cilium.io'
                - matchPattern: '*.*.*.cilium.io'
                - matchPattern: '*.*.*.*.cilium.io'
                - matchPattern: '*.*.*.*.*.cilium.io'
                - matchPattern: '*.*.*.*.*.*.cilium.io'
                - matchPattern: '*.*.*.*.*.*.*.cilium.io'
                - matchPattern: '*.*.*.*.*.*.*.*.cilium.io'
        """, "default")
    c = cluster(deployment("test-app"), deployment("web", ports=[80]), service("web", ports=[80]),
                cascade)
    check(probe(c, "default/test-app", "default/web", 80, via="service-name"), "drop", DEFAULT_DENY,
          NA)
    check(fqdn(c, "default/test-app", "docs.cilium.io"), "dns-fail", "dns-fail", NA)


@pytest.mark.parametrize("host,ok", [("app.cilium.io", True), ("cilium.io", False)])
def test_double_star_prefix(host, ok):
    """L3_DNS (current docs): "``**.`` is a special prefix supported in DNS match pattern to wildcard
    all cascaded subdomains in the prefix. For example: ``**.cilium.io`` pattern will match both
    ``app.cilium.io`` and ``test.app.cilium.io`` but not ``cilium.io``." The multi-level part arrived
    in Cilium 1.19 (cilium/cilium#43420: "DNS Policies match pattern now support a wildcard
    prefix(``**.``)"; before, "``**`` was allowed as a wildcard but treated the same as ``*``",
    cilium/cilium#43913). This project pins Cilium 1.18.10, so only what holds in both versions is
    asserted here: ``app.cilium.io`` resolves, ``cilium.io`` is refused."""
    c = cluster(deployment("client"),
                cnp("dns", endpointSelector={"matchLabels": {"app": "client"}},
                    egress=[{**KUBE_DNS_ANY, "toPorts": [{
                        "ports": [{"port": "53", "protocol": "ANY"}],
                        "rules": {"dns": [{"matchPattern": "**.cilium.io"}]}}]},
                            {"toFQDNs": [{"matchPattern": "**.cilium.io"}]}]))
    v = fqdn(c, "default/client", host)
    check(v, *(("allow", ALLOWED, NA) if ok else ("dns-fail", "dns-fail", NA)))


# --------------------------------------------------------------------------------------------
# HTTP rules (L7 "HTTP"; anchored regexes per ENVOY)
# --------------------------------------------------------------------------------------------
# HOOT "L7 policies": the seed's CNP as the hoot51 pack applies it
# (scenarios/seed_manifests/hoot51/allow-get-headers.yaml, with ``namespace: default``)
ALLOW_GET_HEADERS = hoot51.policy("allow-get-headers")


def _hoot_l7(*extra):
    return cluster(docs_yaml(SLEEP_YAML, "default"), docs_yaml(HTTPBIN_YAML, "default"),
                   deployment("other"), ALLOW_GET_HEADERS, *extra)


@pytest.mark.parametrize("request_line,expected", [
    ("GET /headers", "allow"),
    ("POST /post", "l7-deny"),
    ("GET /ip", "l7-deny"),
    ("POST /headers", "l7-deny"),
    ("GET /headers/x", "l7-deny"),
    ("GET /x/headers", "l7-deny"),
])
def test_hoot_allow_get_headers(request_line, expected):
    """HOOT "L7 policies": "let's deploy a policy that only allows GET requests to /headers ... If we
    try sending a POST request, it will fail with HTTP 403, but GET requests to /headers will work."
    Path and method are matched as whole values (ENVOY), so ``/headers/x`` and ``/x/headers`` are
    refused as well. L7: "violation of layer 7 rules does not result in packet drops. Instead ...
    an HTTP 403 access denied is sent back"."""
    v = probe(_hoot_l7(), "default/sleep", "default/httpbin", 8000, via="service-name",
              request=request_line)
    if expected == "allow":
        check(v, "allow", ALLOWED, ALLOWED)
    else:
        check(v, "l7-deny", ALLOWED, "l7-deny")


def test_hoot_l7_policy_keeps_other_sources_out_at_l3():
    """The same policy only names app=sleep in fromEndpoints: another pod is dropped before any
    HTTP is seen (L7: "the presence of a Layer 7 rule (with its Layer 3 and 4 components) will
    block other traffic"; MODES default deny)."""
    v = probe(_hoot_l7(), "default/other", "default/httpbin", 8000, via="service-name",
              request="GET /headers")
    check(v, "drop", ALLOWED, DEFAULT_DENY)


def test_l4_rule_without_l7_shadows_l7_rules():
    """L7: "If a layer 4 rule is specified in the policy, and a similar layer 4 rule with layer 7
    rules is also specified, then the layer 7 portions of the latter rule will have no effect." """
    l4_only = cnp("l4-only", endpointSelector={"matchLabels": {"app": "httpbin"}},
                  ingress=[{"fromEndpoints": [{"matchLabels": {"app": "sleep"}}],
                            "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}]}]}])
    v = probe(_hoot_l7(l4_only), "default/sleep", "default/httpbin", 8000, via="service-name",
              request="POST /post")
    check(v, "allow", ALLOWED, ALLOWED)


STAR_WARS = """
    ---
    apiVersion: v1
    kind: Service
    metadata:
      name: deathstar
      labels:
        app.kubernetes.io/name: deathstar
    spec:
      type: ClusterIP
      ports:
      - port: 80
      selector:
        org: empire
        class: deathstar
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: deathstar
      labels:
        app.kubernetes.io/name: deathstar
    spec:
      replicas: 2
      selector:
        matchLabels:
          org: empire
          class: deathstar
      template:
        metadata:
          labels:
            org: empire
            class: deathstar
            app.kubernetes.io/name: deathstar
        spec:
          containers:
          - name: deathstar
            image: quay.io/cilium/starwars:v2.1
    ---
    apiVersion: v1
    kind: Pod
    metadata:
      name: tiefighter
      labels:
        org: empire
        class: tiefighter
        app.kubernetes.io/name: tiefighter
    spec:
      containers:
      - name: spaceship
        image: quay.io/cilium/json-mock:v1.3.8
    ---
    apiVersion: v1
    kind: Pod
    metadata:
      name: xwing
      labels:
        app.kubernetes.io/name: xwing
        org: alliance
        class: xwing
    spec:
      containers:
      - name: spaceship
        image: quay.io/cilium/json-mock:v1.3.8
    ---
    apiVersion: "cilium.io/v2"
    kind: CiliumNetworkPolicy
    metadata:
      name: "rule1"
    spec:
      description: "L7 policy to restrict access to specific HTTP call"
      endpointSelector:
        matchLabels:
          org: empire
          class: deathstar
      ingress:
      - fromEndpoints:
        - matchLabels:
            org: empire
        toPorts:
        - ports:
          - port: "80"
            protocol: TCP
          rules:
            http:
            - method: "POST"
              path: "/v1/request-landing"
    """


@pytest.mark.parametrize("source,request_line,expected", [
    # "kubectl exec tiefighter -- curl -s -XPOST deathstar.default.svc.cluster.local/v1/request-landing"
    # -> "Ship landed"
    ("default/tiefighter", "POST /v1/request-landing", ("allow", ALLOWED, ALLOWED)),
    # "kubectl exec tiefighter -- curl -s -XPUT deathstar.default.svc.cluster.local/v1/exhaust-port"
    # -> "Access denied"
    ("default/tiefighter", "PUT /v1/exhaust-port", ("l7-deny", ALLOWED, "l7-deny")),
    # xwing (org=alliance) is not allowed by the L3/L4 part: the request hangs (dropped)
    ("default/xwing", "POST /v1/request-landing", ("drop", ALLOWED, DEFAULT_DENY)),
])
def test_star_wars_demo(source, request_line, expected):
    """GS_SW: http-sw-app.yaml + sw_l3_l4_l7_policy.yaml (copied), curl by service name."""
    c = cluster(docs_yaml(STAR_WARS, "default"))
    v = probe(c, source, "default/deathstar", 80, via="service-name", request=request_line)
    check(v, *expected)


def test_path_regex_is_anchored_at_both_ends():
    """L7 "Path is an extended POSIX regex matched against the path of a request"; matched as the
    whole ``:path`` (ENVOY): ``/v1/.*`` allows ``/v1/anything``, not ``/v2/v1/x``; method ``GET``
    does not allow ``GETX``-like methods such as ``GETS`` (hypothetical extension method)."""
    c = cluster(deployment("client"), deployment("api", ports=[8080]),
                cnp("api", endpointSelector={"matchLabels": {"app": "api"}},
                    ingress=[{"fromEndpoints": [{"matchLabels": {"app": "client"}}],
                              "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}],
                                           "rules": {"http": [{"method": "GET",
                                                               "path": "/v1/.*"}]}}]}]))
    ok = probe(c, "default/client", "default/api", 8080, request="GET /v1/anything/at/all")
    check(ok, "allow", ALLOWED, ALLOWED)
    for request_line in ("GET /v2/v1/x", "GETS /v1/x"):
        check(probe(c, "default/client", "default/api", 8080, request=request_line), "l7-deny",
              ALLOWED, "l7-deny")


def test_egress_http_rule_to_the_world():
    """L7: "Layer 7 policy rules are embedded into Layer 4 rules and can be specified for ingress
    and egress." An egress HTTP rule refuses other requests with a 403 at the source's proxy:
    egress side ``l7-deny``, no ingress side for a world destination."""
    c = cluster(deployment("client"),
                cnp("public-only", endpointSelector={"matchLabels": {"app": "client"}},
                    egress=[{"toCIDR": ["192.0.2.0/24"],
                             "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}],
                                          "rules": {"http": [{"method": "GET",
                                                              "path": "/public"}]}}]}]))
    check(probe(c, "default/client", "world:192.0.2.10", 80, request="GET /public"), "allow",
          ALLOWED, NA)
    check(probe(c, "default/client", "world:192.0.2.10", 80, request="GET /private"), "l7-deny",
          "l7-deny", NA)


# --------------------------------------------------------------------------------------------
# Listener redirects (L4_LISTENER; EGRESS_SEED)
# --------------------------------------------------------------------------------------------
REDIRECT_YAML = """
    apiVersion: "cilium.io/v2"
    kind: CiliumNetworkPolicy
    metadata:
      name: "redirect-http-to-envoy"
    spec:
      endpointSelector:
        matchLabels:
          app: myService
      egress:
        - toFQDNs:
            - matchName: "example.com"
          toPorts:
            - ports:
                - port: "80"
                  protocol: TCP
              listener:
                envoyConfig:
                  kind: CiliumClusterwideEnvoyConfig
                  name: add-header-config
                name: add-header-listener
    """
REDIRECT_CCEC_YAML = """
    apiVersion: cilium.io/v2
    kind: CiliumClusterwideEnvoyConfig
    metadata:
      name: add-header-config
      annotations:
        cec.cilium.io/use-original-source-address: "false"
    spec:
      resources:
        - "@type": type.googleapis.com/envoy.config.listener.v3.Listener
          name: add-header-listener
          filter_chains:
            - filters:
                - name: envoy.filters.network.http_connection_manager
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                    stat_prefix: add-header-listener
                    route_config:
                      name: add_header_route
                      request_headers_to_add:
                        - header:
                            key: X-Request-Source
                            value: cilium
                      virtual_hosts:
                        - name: add_header_vhost
                          domains: ["*"]
                          routes:
                            - match:
                                prefix: "/"
                              route:
                                cluster: original-dst-cluster
                    http_filters:
                      - name: envoy.filters.http.router
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
        - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
          name: original-dst-cluster
          type: ORIGINAL_DST
          connect_timeout: 5s
          lb_policy: CLUSTER_PROVIDED
    """


def test_listener_redirect_docs_example():
    """examples/policies/l4/envoy_listener_redirect.yaml + envoy_listener_redirect_cec.yaml.
    L4_LISTENER: "allows all endpoints with the label app=myService to emit HTTP traffic to
    example.com on TCP port 80, and redirects that traffic to the Envoy listener
    add-header-listener". toFQDNs needs the DNS proxy: "DNS information is acquired by routing DNS
    traffic via DNS Proxy with a separate policy rule" (L3_DNS) - added as a second CNP."""
    dns = cnp("dns", endpointSelector={"matchLabels": {"app": "myService"}}, egress=[KUBE_DNS_ANY])
    c = cluster(deployment("myService", labels={"app": "myService"}), docs_yaml(REDIRECT_YAML, "default"),
                docs_yaml(REDIRECT_CCEC_YAML), dns)
    v = fqdn(c, "default/myService", "example.com", 80, request="GET /")
    check(v, "allow", ALLOWED, NA)
    assert v.listener == "CiliumClusterwideEnvoyConfig//add-header-config#add-header-listener", v
    v = fqdn(c, "default/myService", "example.com", 443)
    check(v, "drop", DEFAULT_DENY, NA)
    assert v.listener is None


def _egress_seed(listener_ref):
    """EGRESS_SEED "Step 1": "cec_proxy.yaml: A CiliumEnvoyConfig (cec) in the test-allow namespace
    ..." and "cnp_proxy.yaml: A CiliumNetworkPolicy (cnp) that allows all traffic from any pod in
    the test-allow namespace to *.roche.com and redirects it to the envoy listener defined in that
    cec." (shape as in this project's DESIGN.md §5a: FQDN/listener rule, cluster rule, DNS rule)."""
    cec = {"apiVersion": "cilium.io/v2", "kind": "CiliumEnvoyConfig",
           "metadata": {"name": "proxy-envoy", "namespace": "test-allow"},
           "spec": {"resources": [
               {"@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
                "name": "proxy-listener",
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.tcp_proxy",
                    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters."
                                              "network.tcp_proxy.v3.TcpProxy",
                                     "stat_prefix": "proxy", "cluster": "proxy-cluster"}}]}]},
               {"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
                "name": "proxy-cluster", "type": "STATIC", "connect_timeout": "5s"}]}}
    policy = cnp("proxy-policy", "test-allow", endpointSelector={}, egress=[
        {"toFQDNs": [{"matchPattern": "*.roche.com"}],
         "toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}, {"port": "443", "protocol": "TCP"}],
                      "listener": listener_ref}]},
        {"toEntities": ["cluster"]},
        KUBE_DNS_ANY])
    return cluster(namespace("test-allow"), namespace("test-deny"),
                   pod("curl", "test-allow", labels={"app": "curl"}),
                   pod("curl", "test-deny", labels={"app": "curl"}), cec, policy)


@pytest.mark.parametrize("listener_ref", [
    {"envoyConfig": {"kind": "CiliumEnvoyConfig", "name": "proxy-envoy"}, "name": "proxy-listener"},
    {"envoyConfig": {"name": "proxy-envoy"}, "name": "proxy-listener"},
], ids=["kind-explicit", "kind-omitted"])
def test_egress_seed_redirects_allowed_domains_to_the_listener(listener_ref):
    """EGRESS_SEED "Step 4": "the CiliumNetworkPolicy not only allows the traffic to www.roche.com
    but also instead of sending it to the linux networking stack, redirects it to the envoy listener
    defined in the CiliumEnvoyConfig". L4_LISTENER: "When kind is omitted, Cilium resolves the
    reference within the policy's own scope: a CiliumNetworkPolicy looks for a namespaced
    CiliumEnvoyConfig in its own namespace"."""
    c = _egress_seed(listener_ref)
    v = fqdn(c, "test-allow/curl", "www.roche.com", 443)
    check(v, "allow", ALLOWED, NA)
    assert v.listener == "CiliumEnvoyConfig/test-allow/proxy-envoy#proxy-listener", v
    # only *.roche.com: other names resolve (matchPattern "*") but are not allowed
    v = fqdn(c, "test-allow/curl", "www.google.com", 443)
    check(v, "drop", DEFAULT_DENY, NA)
    assert v.listener is None


def test_egress_seed_test_deny_namespace_is_not_restricted_by_cilium():
    """EGRESS_SEED "Step 3": from test-deny "the network traffic corresponding to the curl request is
    being sent directly to the linux netwoking stack, and as there is an AWS security group that
    only allows egress traffic to the kubecon-proxy-demo EC2 instance public ip" - Cilium itself
    allows it (no policy selects test-deny/curl: MODES "endpoints have unrestricted network access
    until selected by policy"); the timeout comes from the host's security group, not from
    Cilium. No listener is involved."""
    c = _egress_seed({"envoyConfig": {"kind": "CiliumEnvoyConfig", "name": "proxy-envoy"},
                      "name": "proxy-listener"})
    v = fqdn(c, "test-deny/curl", "www.roche.com", 443)
    check(v, "allow", ALLOWED, NA)
    assert v.listener is None
