"""hoot51 (seed 001): every stage reproduces the seed's stated outcome, offline.

Expected values are literal data below, each row with the seed sentence it comes from (seed
/work/shared/seeds/001_*.txt, "Hoot Episode 51"). Where the seed says nothing about a request, the row
cites the document that decides it. They were written from these texts, not from running the code.

Key: (source, via, request) -> verdict; request "*" = all of GET /headers, GET /ip, POST /post. Every
probe dials httpbin's Service port 8000 (by name: httpbin / httpbin.default; or by ClusterIP).
"""
from __future__ import annotations

import pytest

from scenarios import hoot51

from .conftest import (
    ALLOW,
    DNS_FAIL,
    DROP,
    L7_DENY,
    evaluator,
    explain,
    stage_cluster,
    stage_named,
)

SLEEP, NS_SLEEP, NOTSLEEP = "default/sleep", "sleep/sleep", "sleep/notsleep"
NAME, IP = "service-name", "service-ip"
REQUESTS = ("GET /headers", "GET /ip", "POST /post")

# The seed's ordered stages (issue text, "Stages, with exactly these names, in the seed's order").
STAGE_NAMES = ["open", "default-deny-ingress", "allow-sleep-to-httpbin", "allow-from-sleep-namespace",
               "namespace-and-pod-selector", "allow-ns-ingress", "deny-sleep-egress",
               "allow-sleep-to-httpbin-egress", "allow-dns-egress", "l7-get-headers"]

K8S_NONISOLATED = ('k8s docs (network-policies): "By default, a pod is non-isolated for ingress; all '
                   'inbound connections are allowed."')
STILL_NS_INGRESS = ('seed (allow-ns-ingress, still in force): "requests from the sleep namespace will be '
                    'dropped"')
CILIUM_NS = ('Cilium docs "Using Kubernetes Constructs In Policy": a namespaced CNP\'s fromEndpoints '
             'match its own namespace only (DESIGN.md §8); the CNP lives in default')

# stage -> [(source, via, request, verdict, why)]
EXPECTED: dict[str, list[tuple[str, str, str, str, str]]] = {
    "open": [
        (SLEEP, NAME, "*", ALLOW, 'seed: "send a request to make sure there\'s connectivity between the '
                                  'two"; "sending a POST request and a request to /ip ... Both of these work"'),
        (SLEEP, IP, "*", ALLOW, K8S_NONISOLATED),
        (NS_SLEEP, NAME, "*", ALLOW, K8S_NONISOLATED),
        (NS_SLEEP, IP, "*", ALLOW, K8S_NONISOLATED),
        (NOTSLEEP, NAME, "*", ALLOW, K8S_NONISOLATED),
        (NOTSLEEP, IP, "*", ALLOW, K8S_NONISOLATED),
    ],
    "default-deny-ingress": [
        (SLEEP, NAME, "*", DROP, 'seed: "it\'s not going to work - the request will eventually time out"; '
                                 'hubble "policy-verdict:none INGRESS DENIED"'),
        (SLEEP, IP, "*", DROP, 'seed: "deny all ingress policy -- this will deny all traffic between the pods '
                               'in the default namespace"'),
        (NS_SLEEP, NAME, "*", DROP, 'seed (next stage): "from the sleep namespace will fail because of our '
                                    'deny all policy"'),
        (NS_SLEEP, IP, "*", DROP, "same"),
        (NOTSLEEP, NAME, "*", DROP, "same"),
        (NOTSLEEP, IP, "*", DROP, "same"),
    ],
    "allow-sleep-to-httpbin": [
        (SLEEP, NAME, "*", ALLOW, 'seed: "If we repeat the request from the sleep workload, we\'ll see that '
                                  'the traffic is now allowed."'),
        (SLEEP, IP, "*", ALLOW, "same"),
        (NS_SLEEP, NAME, "*", DROP, 'seed: "Send a request to the httpbin workload from the sleep namespace '
                                    'will fail because of our deny all policy."'),
        (NS_SLEEP, IP, "*", DROP, "same"),
        (NOTSLEEP, NAME, "*", DROP, "same (any pod of the sleep namespace)"),
        (NOTSLEEP, IP, "*", DROP, "same"),
    ],
    "allow-from-sleep-namespace": [
        (SLEEP, NAME, "*", ALLOW, 'seed (next stage): "This won\'t change anything for the requests made from '
                                  'the sleep pods"; allow-ingress-to-httpbin is still in force'),
        (SLEEP, IP, "*", ALLOW, "same"),
        (NS_SLEEP, NAME, "*", ALLOW, 'seed: "If we send a request from the sleep namespace, we\'ll be able to '
                                     'access the httpbin workload in the default namespace"'),
        (NS_SLEEP, IP, "*", ALLOW, "same"),
        (NOTSLEEP, NAME, "*", ALLOW, 'seed: "it allows any pods in the sleep namespace to access the httpbin '
                                     'workload"'),
        (NOTSLEEP, IP, "*", ALLOW, "same"),
    ],
    "namespace-and-pod-selector": [
        (SLEEP, NAME, "*", ALLOW, 'seed: "This won\'t change anything for the requests made from the sleep '
                                  'pods"'),
        (SLEEP, IP, "*", ALLOW, "same"),
        (NS_SLEEP, NAME, "*", ALLOW, "same"),
        (NS_SLEEP, IP, "*", ALLOW, "same"),
        (NOTSLEEP, NAME, "*", DROP, 'seed: "but it will restrict any other pods from making the requests"'),
        (NOTSLEEP, IP, "*", DROP, "same"),
    ],
    "allow-ns-ingress": [
        (SLEEP, NAME, "*", ALLOW, 'seed: "we can make requests within the default namespace"'),
        (SLEEP, IP, "*", ALLOW, "same"),
        (NS_SLEEP, NAME, "*", DROP, 'seed: "however, requests from the sleep namespace will be dropped"'),
        (NS_SLEEP, IP, "*", DROP, "same"),
        (NOTSLEEP, NAME, "*", DROP, "same"),
        (NOTSLEEP, IP, "*", DROP, "same"),
    ],
    "deny-sleep-egress": [
        (SLEEP, NAME, "*", DNS_FAIL, 'seed: "If we retry the above request, it will fail." — and later: "we\'re '
                                     'denying all egress traffic from the sleep pod, including requests to '
                                     'resolve the httpbin DNS name"'),
        (SLEEP, IP, "*", DROP, 'seed: "a policy that denies all egress traffic from the sleep pod"'),
        (NS_SLEEP, NAME, "*", DROP, STILL_NS_INGRESS + "; deny-sleep-egress is in default only"),
        (NS_SLEEP, IP, "*", DROP, STILL_NS_INGRESS),
        (NOTSLEEP, NAME, "*", DROP, STILL_NS_INGRESS),
        (NOTSLEEP, IP, "*", DROP, STILL_NS_INGRESS),
    ],
    "allow-sleep-to-httpbin-egress": [
        (SLEEP, NAME, "*", DNS_FAIL, 'seed: "If you send a request you\'ll notice that it fails - why is that? '
                                     'The reason is DNS"'),
        (SLEEP, IP, "*", ALLOW, 'seed: "We can confirm this by sending a request using the service IP instead '
                                'of the DNS name and it will work."'),
        (NS_SLEEP, NAME, "*", DROP, STILL_NS_INGRESS),
        (NS_SLEEP, IP, "*", DROP, STILL_NS_INGRESS),
        (NOTSLEEP, NAME, "*", DROP, STILL_NS_INGRESS),
        (NOTSLEEP, IP, "*", DROP, STILL_NS_INGRESS),
    ],
    "allow-dns-egress": [
        (SLEEP, NAME, "*", ALLOW, 'seed: "This time, sending a request to the httpbin service will work."'),
        (SLEEP, IP, "*", ALLOW, "same (the egress rule to httpbin allowed it already)"),
        (NS_SLEEP, NAME, "*", DROP, STILL_NS_INGRESS),
        (NS_SLEEP, IP, "*", DROP, STILL_NS_INGRESS),
        (NOTSLEEP, NAME, "*", DROP, STILL_NS_INGRESS),
        (NOTSLEEP, IP, "*", DROP, STILL_NS_INGRESS),
    ],
    "l7-get-headers": [
        (SLEEP, NAME, "GET /headers", ALLOW, 'seed: "but GET requests to `/headers` will work"'),
        (SLEEP, NAME, "POST /post", L7_DENY, 'seed: "If we try sending a POST request, it will fail with HTTP 403"'),
        (SLEEP, NAME, "GET /ip", L7_DENY, 'seed: "a policy that only allows GET requests to `/headers`" (a miss '
                                          'of an L7 rule is Envoy\'s 403)'),
        (SLEEP, IP, "GET /headers", ALLOW, "same, by ClusterIP"),
        (SLEEP, IP, "POST /post", L7_DENY, "same, by ClusterIP"),
        (SLEEP, IP, "GET /ip", L7_DENY, "same, by ClusterIP"),
        (NS_SLEEP, NAME, "*", DROP, CILIUM_NS),
        (NS_SLEEP, IP, "*", DROP, CILIUM_NS),
        (NOTSLEEP, NAME, "*", DROP, CILIUM_NS + " (and notsleep is not app=sleep)"),
        (NOTSLEEP, IP, "*", DROP, CILIUM_NS),
    ],
}


def _expected(stage: str) -> dict[tuple[str, str, str], tuple[str, str]]:
    out = {}
    for src, via, req, verdict, why in EXPECTED[stage]:
        for r in (REQUESTS if req == "*" else (req,)):
            key = (src, via, r)
            assert key not in out, f"duplicate expectation {key}"
            out[key] = (verdict, why)
    return out


def test_stage_names_in_seed_order():
    assert [s.name for s in hoot51.stages(None)] == STAGE_NAMES
    assert list(EXPECTED) == STAGE_NAMES


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_probes_cover_every_seed_request(stage_name):
    """Every probe targets httpbin's Service port 8000 and has exactly one expectation above: all
    three sleep pods x by name and by ClusterIP x GET /headers, GET /ip, POST /post."""
    stage = stage_named(hoot51, stage_name)
    got = {}
    for lp in hoot51.probes(None, stage):
        t = lp.traffic
        assert (t.to, t.port, t.protocol) == ("default/httpbin", 8000, "TCP")
        got[(t.source, t.via, t.request)] = lp
    assert set(got) == set(_expected(stage_name))
    assert len(got) == 18


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_stage_reproduces_the_seed(stage_name):
    _, evaluate, _ = evaluator()
    stage = stage_named(hoot51, stage_name)
    cluster = stage_cluster(hoot51, stage)
    want = _expected(stage_name)
    bad = []
    for lp in hoot51.probes(None, stage):
        t = lp.traffic
        verdict, why = want[(t.source, t.via, t.request)]
        v = evaluate(cluster, t)
        if v.verdict != verdict:
            bad.append(f"{t.id}: want {verdict} ({why}), got {explain(v)}")
    assert not bad, "\n".join(bad)


# Which side decides, where the seed shows it.
def _verdict(stage_name, source, via, request="GET /headers"):
    _, evaluate, _ = evaluator()
    stage = stage_named(hoot51, stage_name)
    probe = next(lp.traffic for lp in hoot51.probes(None, stage)
                 if (lp.traffic.source, lp.traffic.via, lp.traffic.request) == (source, via, request))
    return evaluate(stage_cluster(hoot51, stage), probe)


def test_default_deny_is_an_ingress_drop():
    # seed, hubble: "policy-verdict:none INGRESS DENIED ... Policy denied DROPPED" (no policy allows it)
    v = _verdict("default-deny-ingress", SLEEP, NAME)
    assert (v.egress, v.ingress) == ("allow", "drop:default-deny"), explain(v)


def test_egress_lockdown_fails_on_dns_first():
    # seed: "we're denying all egress traffic from the sleep pod, including requests to resolve the httpbin
    # DNS name" — egress wins and hides the ingress side (DESIGN.md §8)
    v = _verdict("allow-sleep-to-httpbin-egress", SLEEP, NAME)
    assert (v.verdict, v.egress, v.ingress) == (DNS_FAIL, "dns-fail", "n/a"), explain(v)


def test_service_ip_works_because_policies_see_port_80():
    # seed: "by service IP ... it will work"; the egress rule has no ports and allow-ns-ingress admits
    # default/sleep at the endpoint port 80 (the Service's 8000 is never seen by policy)
    v = _verdict("allow-sleep-to-httpbin-egress", SLEEP, IP)
    assert (v.verdict, v.egress, v.ingress) == (ALLOW, "allow", "allow"), explain(v)


def test_l7_miss_is_a_403_on_the_ingress_side():
    # seed: "If we try sending a POST request, it will fail with HTTP 403"; the CNP is an ingress rule
    v = _verdict("l7-get-headers", SLEEP, NAME, "POST /post")
    assert (v.verdict, v.egress, v.ingress) == (L7_DENY, "allow", "l7-deny"), explain(v)


def test_l7_rule_names_the_endpoint_port_not_the_service_port():
    # seed, in the CNP: "Note port 80 here! We aren't talking about the service port, but the
    # "endpoint" port, which is 80."
    cnp = stage_named(hoot51, "l7-get-headers").objects[0]
    assert cnp["spec"]["ingress"][0]["toPorts"][0]["ports"][0]["port"] == "80"
    assert _verdict("l7-get-headers", SLEEP, NAME).verdict == ALLOW
