"""Issue 21 contract 3: L7 HTTP as Cilium has it (method, path, host, headers, headerMatches).

Sources quoted per test:
- docs.cilium.io "Layer 7 Examples" (HTTP), example examples/policies/l7/http/http.yaml;
- cilium/cilium pkg/policy/api/http.go (v1.18): PortRuleHTTP "Headers is a list of HTTP headers which
  must be present in the request"; "Host is an extended POSIX regex matched against the host header of a
  request"; HeaderMatch "If none of the optional fields is present, then the header value is not
  matched, only presence of the header is enough"; Mismatch "The default is to drop the request.
  Otherwise the overall rule is still considered as matching, but the mismatches are logged";
- pkg/envoy/server.go getHTTPRule: a ``headers`` entry is split on its first space, "Remove ':' in
  "X-Key: true"", then "Header presence and matching (literal) value needed", else "Only header
  presence needed".
"""
from __future__ import annotations

import pytest

from .conftest import ALLOWED, NA, check, cluster, cnp, deployment, docs_yaml, probe

# docs.cilium.io "Layer 7 Examples": "The following example limits all endpoints which carry the labels
# app=myService to only be able to receive packets on port 80 using TCP. While communicating on this
# port, the only API endpoints allowed will be GET /path1, and PUT /path2 with the HTTP header
# X-My-Header set to true"
L7_RULE = """
apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "l7-rule"
spec:
  endpointSelector:
    matchLabels:
      app: myService
  ingress:
  - toPorts:
    - ports:
      - port: '80'
        protocol: TCP
      rules:
        http:
        - method: GET
          path: "/path1$"
        - method: PUT
          path: "/path2$"
          headers:
          - 'X-My-Header: true'
"""


def _docs_cluster():
    return cluster(deployment("client"), deployment("my-service", labels={"app": "myService"}, ports=[80]),
                   docs_yaml(L7_RULE, namespace="default"))


@pytest.mark.parametrize("request_line, headers, expected", [
    ("GET /path1", {}, "allow"),                                  # first rule, no header needed
    ("PUT /path2", {"X-My-Header": "true"}, "allow"),             # second rule with its header
    ("PUT /path2", {"x-my-header": "true"}, "allow"),             # header names are case-insensitive
    ("PUT /path2", {}, "l7-deny"),                                # header missing
    ("PUT /path2", {"X-My-Header": "false"}, "l7-deny"),          # header present, other value
    ("GET /path2", {"X-My-Header": "true"}, "l7-deny"),           # the header does not help GET /path2
    ("PUT /path1", {"X-My-Header": "true"}, "l7-deny"),
])
def test_docs_l7_rule_headers_equal_and_union(request_line, headers, expected):
    v = probe(_docs_cluster(), "default/client", "default/my-service", 80, request=request_line, headers=headers)
    check(v, expected, ALLOWED, "allow" if expected == "allow" else "l7-deny")


def test_a_header_without_value_only_needs_to_be_present():
    """getHTTPRule: an entry without a space is "Only header presence needed"."""
    c = cluster(deployment("client"), deployment("api", ports=[80]),
                cnp("token", endpointSelector={"matchLabels": {"app": "api"}},
                    ingress=[{"toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}],
                                           "rules": {"http": [{"headers": ["X-Token"]}]}}]}]))
    check(probe(c, "default/client", "default/api", 80, request="GET /", headers={"X-Token": "anything"}), "allow")
    v = probe(c, "default/client", "default/api", 80, request="GET /")
    check(v, "l7-deny", ALLOWED, "l7-deny")
    assert "header X-Token is missing" in v.why[-1]


def _header_matches(entry: dict, direction: str = "ingress"):
    rule = {"toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}],
                         "rules": {"http": [{"method": "GET", "headerMatches": [entry]}]}}]}
    if direction == "ingress":
        policy = cnp("hm", endpointSelector={"matchLabels": {"app": "api"}}, ingress=[rule])
    else:
        policy = cnp("hm", endpointSelector={"matchLabels": {"app": "client"}},
                     egress=[{**rule, "toEndpoints": [{"matchLabels": {"app": "api"}}]}])
    return cluster(deployment("client"), deployment("api", ports=[80]), policy)


@pytest.mark.parametrize("direction", ["ingress", "egress"])
@pytest.mark.parametrize("headers, expected", [
    ({"X-Env": "prod"}, "allow"),
    ({"X-Env": "dev"}, "l7-deny"),      # "The default is to drop the request" (403 from Envoy)
    ({}, "l7-deny"),
])
def test_header_matches_without_mismatch_action_fail_the_rule(direction, headers, expected):
    c = _header_matches({"name": "X-Env", "value": "prod"}, direction)
    v = probe(c, "default/client", "default/api", 80, request="GET /", headers=headers)
    sides = {"ingress": (ALLOWED, expected), "egress": (expected, NA if expected != "allow" else ALLOWED)}[direction]
    check(v, expected, *sides)


@pytest.mark.parametrize("direction", ["ingress", "egress"])
@pytest.mark.parametrize("action", ["LOG", "ADD", "DELETE", "REPLACE"])
def test_header_matches_with_a_mismatch_action_let_the_request_pass(direction, action):
    """http.go: with a Mismatch action "the overall rule is still considered as matching"."""
    c = _header_matches({"name": "X-Env", "value": "prod", "mismatch": action}, direction)
    check(probe(c, "default/client", "default/api", 80, request="GET /", headers={"X-Env": "dev"}), "allow")
    check(probe(c, "default/client", "default/api", 80, request="GET /"), "allow")
    # the rest of the rule still applies
    v = probe(c, "default/client", "default/api", 80, request="POST /", headers={"X-Env": "prod"})
    assert v.verdict == "l7-deny"


def test_header_matches_without_value_is_presence():
    c = _header_matches({"name": "X-Env"})
    check(probe(c, "default/client", "default/api", 80, request="GET /", headers={"X-Env": "x"}), "allow")
    check(probe(c, "default/client", "default/api", 80, request="GET /"), "l7-deny")


def test_host_is_a_regex_on_the_host_header():
    """http.go: "Host is an extended POSIX regex matched against the host header of a request". A
    request by pod IP carries that IP as Host (what curl sends), so only a probe that sets Host
    passes."""
    c = cluster(deployment("client"), deployment("api", ports=[80]),
                cnp("host", endpointSelector={"matchLabels": {"app": "api"}},
                    ingress=[{"toPorts": [{"ports": [{"port": "80", "protocol": "TCP"}],
                                           "rules": {"http": [{"host": "api\\.example\\.com"}]}}]}]))
    check(probe(c, "default/client", "default/api", 80, request="GET /", headers={"Host": "api.example.com"}), "allow")
    check(probe(c, "default/client", "default/api", 80, request="GET /", headers={"Host": "evil.example.com"}),
          "l7-deny")
    check(probe(c, "default/client", "default/api", 80, request="GET /"), "l7-deny")


def test_a_rule_with_headers_is_no_longer_dropped():
    """Issue 21: "drops a whole rule when one HTTP rule has headers (a wrong verdict)". The docs'
    policy allows nothing but port 80 HTTP: port 8080 stays default-denied and the policy isolates."""
    c = _docs_cluster()
    assert c.warnings == []
    check(probe(c, "default/client", "default/my-service", 80), "allow")  # a bare connection passes L4
    assert probe(c, "default/client", "default/my-service", 80, request="DELETE /path1").verdict == "l7-deny"


def test_a_secret_header_match_is_warned_and_approximate():
    """headerMatches[].secret: the value lives in a Secret the input does not carry. Only that HTTP rule
    (the smallest enclosing rule) is left out, with a warning naming the field: the L3/L4 part still
    applies, and a request the left-out rule might have allowed is an ``approximate`` l7-deny."""
    c = _header_matches({"name": "X-Token", "secret": {"namespace": "default", "name": "token"}})
    assert c.warnings == ["CiliumNetworkPolicy default/hm: ingress[0].toPorts[0].rules.http[0].headerMatches[0]"
                          ".secret is not supported: that HTTP rule is left out"]
    v = probe(c, "default/client", "default/api", 80, request="GET /")
    assert (v.verdict, v.ingress, v.approximate) == ("l7-deny", "l7-deny", True)
    bare = probe(c, "default/client", "default/api", 80)
    assert (bare.verdict, bare.approximate) == ("allow", False)
    assert probe(c, "default/client", "default/api", 8080).verdict == "drop"
