"""The Hoot episode 51 walkthrough (seed /work/shared/seeds/001_*.txt), step by step, end to end.

Each step applies the seed's YAML (copied verbatim) and asserts the outcome the seed states for it.
Workloads as in the seed: sleep.yaml (curlimages/curl, app=sleep) in ``default`` and in ``sleep``;
Istio's httpbin (app=httpbin) whose Service maps port 8000 to the endpoint port 80 (the seed's CNP:
"Note port 80 here! We aren't talking about the service port, but the endpoint port, which is 80").
"""
from __future__ import annotations

import yaml

from model.policy import Cluster, Probe, evaluate

SLEEP = """
apiVersion: v1
kind: ServiceAccount
metadata: {name: sleep}
---
apiVersion: v1
kind: Service
metadata: {name: sleep, labels: {app: sleep, service: sleep}}
spec:
  ports: [{port: 80, name: http}]
  selector: {app: sleep}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: sleep}
spec:
  replicas: 1
  selector: {matchLabels: {app: sleep}}
  template:
    metadata: {labels: {app: sleep}}
    spec:
      serviceAccountName: sleep
      containers:
      - name: sleep
        image: curlimages/curl
        command: ["/bin/sleep", "infinity"]
"""
HTTPBIN = """
apiVersion: v1
kind: Service
metadata: {name: httpbin, labels: {app: httpbin, service: httpbin}}
spec:
  ports: [{name: http, port: 8000, targetPort: 80}]
  selector: {app: httpbin}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: httpbin}
spec:
  replicas: 1
  selector: {matchLabels: {app: httpbin, version: v1}}
  template:
    metadata: {labels: {app: httpbin, version: v1}}
    spec:
      containers:
      - image: docker.io/kennethreitz/httpbin
        name: httpbin
        ports: [{containerPort: 80}]
"""
DEFAULT_DENY_INGRESS = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny-ingress
spec:
  podSelector: {}
  policyTypes:
  - Ingress
"""
ALLOW_INGRESS_TO_HTTPBIN = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-ingress-to-httpbin
  namespace: default
spec:
  podSelector:
    matchLabels:
      app: httpbin
  policyTypes:
  - Ingress
  ingress:
    - from:
      - podSelector:
          matchLabels:
            app: sleep
"""
ALLOW_INGRESS_FROM_SLEEP_NS = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-ingress-from-sleep
  namespace: default
spec:
  podSelector:
    matchLabels:
      app: httpbin
  policyTypes:
  - Ingress
  ingress:
    - from:
      - namespaceSelector:
          matchLabels:
            kubernetes.io/metadata.name: sleep
"""
ALLOW_INGRESS_FROM_SLEEP_NS_AND_POD = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-ingress-from-sleep
spec:
  podSelector:
    matchLabels:
      app: httpbin
  policyTypes:
  - Ingress
  ingress:
    - from:
      - namespaceSelector:
          matchLabels:
            kubernetes.io/metadata.name: sleep
        podSelector:
          matchLabels:
            app: sleep
"""
ALLOW_NS_INGRESS = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-ns-ingress
spec:
  podSelector: {}
  ingress:
    - from:
      - podSelector: {}
"""
DENY_SLEEP_EGRESS = """
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: deny-sleep-egress
spec:
  podSelector:
    matchLabels:
      app: sleep
  policyTypes:
  - Egress
"""
SLEEP_TO_HTTPBIN_EGRESS = """
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: deny-sleep-to-httpbin-egress
spec:
  podSelector:
    matchLabels:
      app: sleep
  policyTypes:
  - Egress
  egress:
    - to:
      - podSelector:
          matchLabels:
            app: httpbin
"""
ALLOW_DNS_EGRESS = """
kind: NetworkPolicy
apiVersion: networking.k8s.io/v1
metadata:
  name: allow-dns-egress
spec:
  podSelector: {}
  policyTypes:
  - Egress
  egress:
    - to:
      - namespaceSelector:
          matchLabels:
            kubernetes.io/metadata.name: kube-system
        podSelector:
          matchLabels:
            k8s-app: kube-dns
"""
ALLOW_GET_HEADERS = """
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: allow-get-headers
spec:
  endpointSelector:
    matchLabels:
      app: httpbin
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: sleep
    toPorts:
    - ports:
      # Note port 80 here! We aren't talking about the service port, but the "endpoint" port, which is 80.
      - port: "80"
        protocol: TCP
      rules:
        http:
        - method: GET
          path: /headers
"""


def objects(*texts: str) -> list[dict]:
    return [d for t in texts for d in yaml.safe_load_all(t) if d]


def workloads() -> list[dict]:
    """kubectl apply -f sleep.yaml; httpbin.yaml; kubectl create ns sleep; sleep.yaml -n sleep; plus
    another pod in the sleep namespace (the seed: the combined selector "will restrict any other pods")."""
    in_sleep_ns = objects(SLEEP)
    for obj in in_sleep_ns:
        obj["metadata"]["namespace"] = "sleep"
    other = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "other", "namespace": "sleep",
                                                             "labels": {"app": "other"}},
             "spec": {"containers": [{"name": "curl", "image": "curlimages/curl"}]}}
    return objects(SLEEP, HTTPBIN) + [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "sleep"}}] \
        + in_sleep_ns + [other]


def verdict(policies: list[dict], source: str, via: str = "service-name", request: str | None = "GET /headers"):
    cluster = Cluster.from_objects(workloads() + policies)
    return evaluate(cluster, Probe(source, "default/httpbin", 8000, via=via, request=request))


def test_sample_apps_talk_before_any_policy():
    # "We can send a request to make sure there's connectivity between the two"
    assert verdict([], "default/sleep").verdict == "allow"


def test_default_deny_ingress_times_out():
    # "If we try to send a request this time, it's not going to work - the request will eventually time out."
    v = verdict(objects(DEFAULT_DENY_INGRESS), "default/sleep")
    assert (v.verdict, v.egress, v.ingress) == ("drop", "allow", "drop:default-deny")
    assert "ingress of default/httpbin: selected by NetworkPolicy default/default-deny-ingress (default deny)" in v.why


def test_allow_ingress_to_httpbin_from_sleep_pods_of_its_namespace_only():
    policies = objects(DEFAULT_DENY_INGRESS, ALLOW_INGRESS_TO_HTTPBIN)
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
    policies = objects(DEFAULT_DENY_INGRESS, ALLOW_INGRESS_TO_HTTPBIN, ALLOW_INGRESS_FROM_SLEEP_NS)
    # "If we send a request from the sleep namespace, we'll be able to access the httpbin workload"
    assert verdict(policies, "sleep/sleep").verdict == "allow"
    # "it's not very restrictive as it allows any pods in the sleep namespace"
    assert verdict(policies, "sleep/other").verdict == "allow"


def test_namespace_and_pod_selector_restrict_other_pods_of_the_namespace():
    policies = objects(DEFAULT_DENY_INGRESS, ALLOW_INGRESS_TO_HTTPBIN, ALLOW_INGRESS_FROM_SLEEP_NS_AND_POD)
    # "This won't change anything for the requests made from the sleep pods, but it will restrict any
    # other pods from making the requests."
    assert verdict(policies, "sleep/sleep").verdict == "allow"
    assert verdict(policies, "sleep/other").verdict == "drop"


def test_allow_ns_ingress_allows_own_namespace_drops_others():
    # "we can make requests within the default namespace, however, requests from the sleep namespace will be dropped."
    policies = objects(ALLOW_NS_INGRESS)
    assert verdict(policies, "default/sleep").verdict == "allow"
    v = verdict(policies, "sleep/sleep")
    assert (v.verdict, v.ingress) == ("drop", "drop:default-deny")


def test_egress_steps_dns_fails_by_name_service_ip_works_until_dns_is_allowed():
    # "Since we only modified ingress policies, sending a request from pods works fine"
    assert verdict(objects(ALLOW_NS_INGRESS), "default/sleep").verdict == "allow"
    # deny-sleep-egress: "If we retry the above request, it will fail." - the lookup is the first egress
    v = verdict(objects(ALLOW_NS_INGRESS, DENY_SLEEP_EGRESS), "default/sleep")
    assert (v.verdict, v.egress, v.ingress) == ("dns-fail", "dns-fail", "n/a")
    # + egress to httpbin: "it fails - why is that? The reason is DNS"
    policies = objects(ALLOW_NS_INGRESS, DENY_SLEEP_EGRESS, SLEEP_TO_HTTPBIN_EGRESS)
    v = verdict(policies, "default/sleep")
    assert (v.verdict, v.egress) == ("dns-fail", "dns-fail")
    assert any(w.startswith("DNS: egress default/sleep -> kube-system/coredns:53/UDP: no rule allows it") for w in v.why)
    # "We can confirm this by sending a request using the service IP instead of the DNS name and it will work."
    v = verdict(policies, "default/sleep", via="service-ip")
    assert v.verdict == "allow"
    assert any("allowed by NetworkPolicy default/deny-sleep-to-httpbin-egress egress[0].to[0]" in w for w in v.why)
    # + allow-dns-egress: "This time, sending a request to the httpbin service will work."
    v = verdict(policies + objects(ALLOW_DNS_EGRESS), "default/sleep")
    assert v.verdict == "allow"
    assert any("allowed by NetworkPolicy default/allow-dns-egress egress[0].to[0]" in w for w in v.why)


def test_l7_policy_allows_only_get_headers():
    # before the CNP: "Both of these work" (POST /post and GET /ip)
    assert verdict([], "default/sleep", request="POST /post").verdict == "allow"
    assert verdict([], "default/sleep", request="GET /ip").verdict == "allow"
    # "If we try sending a POST request, it will fail with HTTP 403, but GET requests to /headers will work."
    policies = objects(ALLOW_GET_HEADERS)
    v = verdict(policies, "default/sleep", request="POST /post")
    assert (v.verdict, v.egress, v.ingress) == ("l7-deny", "allow", "l7-deny")
    assert verdict(policies, "default/sleep", request="GET /ip").verdict == "l7-deny"
    v = verdict(policies, "default/sleep", request="GET /headers")
    assert (v.verdict, v.egress, v.ingress) == ("allow", "allow", "allow")
    # the policy matches the endpoint port 80, not the service port 8000 the client dials
    assert any("default/sleep -> default/httpbin:80/TCP: allowed by CiliumNetworkPolicy default/allow-get-headers "
               "ingress[0].fromEndpoints[0].toPorts[0]" in w for w in v.why)
