"""The Hoot episode 51 walkthrough (seed /work/shared/seeds/001_*.txt), step by step, end to end.

Each step applies the seed's YAML and asserts the outcome the seed states for it. The YAML and the
workloads are the hoot51 scenario pack's (scenarios/seed_manifests/hoot51/*.yaml: the seed's
manifests, one copy each, with ``namespace: default`` where the seed relies on the current
namespace; scenarios.hoot51.workloads()): sleep.yaml (curlimages/curl, app=sleep) in
``default`` and in ``sleep``; Istio's httpbin (app=httpbin) whose Service maps port 8000 to the
endpoint port 80 (the seed's CNP: "Note port 80 here! We aren't talking about the service port, but
the endpoint port, which is 80"); and notsleep (app=notsleep) in ``sleep``, the other pod of that
namespace (the seed: the combined selector "will restrict any other pods").
"""
from __future__ import annotations

from cilium_verdicts import Cluster, Probe, evaluate
from scenarios import hoot51


def objects(*keys: str) -> list[dict]:
    """The seed's policies, by their key in the pack (seed_manifests/hoot51/<key>.yaml)."""
    return [hoot51.policy(k) for k in keys]


def workloads() -> list[dict]:
    """kubectl apply -f sleep.yaml; httpbin.yaml; kubectl create ns sleep; sleep.yaml -n sleep; plus
    another pod in the sleep namespace (notsleep)."""
    return hoot51.workloads()


def verdict(policies: list[dict], source: str, via: str = "service-name", request: str | None = "GET /headers"):
    cluster = Cluster.from_objects(workloads() + policies)
    return evaluate(cluster, Probe(source, "default/httpbin", 8000, via=via, request=request))


def test_sample_apps_talk_before_any_policy():
    # "We can send a request to make sure there's connectivity between the two"
    assert verdict([], "default/sleep").verdict == "allow"


def test_default_deny_ingress_times_out():
    # "If we try to send a request this time, it's not going to work - the request will eventually time out."
    v = verdict(objects("default-deny-ingress"), "default/sleep")
    assert (v.verdict, v.egress, v.ingress) == ("drop", "allow", "drop:default-deny")
    assert "ingress of default/httpbin: selected by NetworkPolicy default/default-deny-ingress (default deny)" in v.why


def test_allow_ingress_to_httpbin_from_sleep_pods_of_its_namespace_only():
    policies = objects("default-deny-ingress", "allow-ingress-to-httpbin")
    # "If we repeat the request from the sleep workload, we'll see that the traffic is now allowed."
    v = verdict(policies, "default/sleep")
    assert v.verdict == "allow"
    assert any("allowed by NetworkPolicy default/allow-ingress-to-httpbin ingress[0].from[0]" in w for w in v.why)
    # "Send a request to the httpbin workload from the sleep namespace will fail because of our deny all policy."
    v = verdict(policies, "sleep/sleep")
    assert (v.verdict, v.ingress) == ("drop", "drop:default-deny")
    assert ("NetworkPolicy default/allow-ingress-to-httpbin ingress[0].from[0]: podSelector app=sleep matches "
            "sleep/sleep's labels but, without a namespaceSelector, only selects pods in namespace default") in v.why


def test_namespace_selector_admits_the_sleep_namespace():
    policies = objects("default-deny-ingress", "allow-ingress-to-httpbin",
                       "allow-ingress-from-sleep/namespace")
    # "If we send a request from the sleep namespace, we'll be able to access the httpbin workload"
    assert verdict(policies, "sleep/sleep").verdict == "allow"
    # "it's not very restrictive as it allows any pods in the sleep namespace"
    assert verdict(policies, "sleep/notsleep").verdict == "allow"


def test_namespace_and_pod_selector_restrict_other_pods_of_the_namespace():
    policies = objects("default-deny-ingress", "allow-ingress-to-httpbin",
                       "allow-ingress-from-sleep/namespace-and-pod")
    # "This won't change anything for the requests made from the sleep pods, but it will restrict any
    # other pods from making the requests."
    assert verdict(policies, "sleep/sleep").verdict == "allow"
    assert verdict(policies, "sleep/notsleep").verdict == "drop"


def test_allow_ns_ingress_allows_own_namespace_drops_others():
    # "we can make requests within the default namespace, however, requests from the sleep namespace will be dropped."
    policies = objects("allow-ns-ingress")
    assert verdict(policies, "default/sleep").verdict == "allow"
    v = verdict(policies, "sleep/sleep")
    assert (v.verdict, v.ingress) == ("drop", "drop:default-deny")


def test_egress_steps_dns_fails_by_name_service_ip_works_until_dns_is_allowed():
    # "Since we only modified ingress policies, sending a request from pods works fine"
    assert verdict(objects("allow-ns-ingress"), "default/sleep").verdict == "allow"
    # deny-sleep-egress: "If we retry the above request, it will fail." - the lookup is the first egress
    v = verdict(objects("allow-ns-ingress", "deny-sleep-egress"), "default/sleep")
    assert (v.verdict, v.egress, v.ingress) == ("dns-fail", "dns-fail", "n/a")
    # + egress to httpbin: "it fails - why is that? The reason is DNS"
    policies = objects("allow-ns-ingress", "deny-sleep-egress", "deny-sleep-to-httpbin-egress")
    v = verdict(policies, "default/sleep")
    assert (v.verdict, v.egress) == ("dns-fail", "dns-fail")
    assert any(w.startswith("DNS: egress default/sleep -> kube-system/coredns:53/UDP: no rule allows it") for w in v.why)
    # "We can confirm this by sending a request using the service IP instead of the DNS name and it will work."
    v = verdict(policies, "default/sleep", via="service-ip")
    assert v.verdict == "allow"
    assert any("allowed by NetworkPolicy default/deny-sleep-to-httpbin-egress egress[0].to[0]" in w for w in v.why)
    # + allow-dns-egress: "This time, sending a request to the httpbin service will work."
    v = verdict(policies + objects("allow-dns-egress"), "default/sleep")
    assert v.verdict == "allow"
    assert any("allowed by NetworkPolicy default/allow-dns-egress egress[0].to[0]" in w for w in v.why)


def test_l7_policy_allows_only_get_headers():
    # before the CNP: "Both of these work" (POST /post and GET /ip)
    assert verdict([], "default/sleep", request="POST /post").verdict == "allow"
    assert verdict([], "default/sleep", request="GET /ip").verdict == "allow"
    # "If we try sending a POST request, it will fail with HTTP 403, but GET requests to /headers will work."
    policies = objects("allow-get-headers")
    v = verdict(policies, "default/sleep", request="POST /post")
    assert (v.verdict, v.egress, v.ingress) == ("l7-deny", "allow", "l7-deny")
    assert verdict(policies, "default/sleep", request="GET /ip").verdict == "l7-deny"
    v = verdict(policies, "default/sleep", request="GET /headers")
    assert (v.verdict, v.egress, v.ingress) == ("allow", "allow", "allow")
    # the policy matches the endpoint port 80, not the service port 8000 the client dials
    assert any("default/sleep -> default/httpbin:80/TCP: allowed by CiliumNetworkPolicy default/allow-get-headers "
               "ingress[0].fromEndpoints[0].toPorts[0]" in w for w in v.why)
