"""Seed walk-throughs replayed stage by stage: every expected verdict is the outcome the seed text
states for that step.

- EKS = seed 004 (/work/shared/seeds/004_62b5bb5d45e01bff.txt, EKS workshop "Network Policy
  Implementation"), policies from aws-samples/eks-workshop-v2
  manifests/modules/networking/network-policies/apply-network-policies/*.yaml, workloads labelled
  as manifests/base-application/* (ports named ``http`` 8080, Services 80 -> ``http``).
- STARS = seed 003 (/work/shared/seeds/003_d4e1119a144dc003.txt, Calico "Stars" policy demo).
- HOOT = seed 001 (/work/shared/seeds/001_dd665a99f124401a.txt, Hoot episode 51).
- DESIGN.md §8 for the verdict vocabulary (egress wins; ``dns-fail`` when the lookup is dropped).

The seeds' manifests and workloads are the scenario packs' (scenarios/eks_retail.py, stars.py,
hoot51.py; the policies are scenarios/seed_manifests/<pack>/*.yaml, one copy each): each
test composes the policies of its seed step itself with ``<pack>.policy(key)``.
"""
from __future__ import annotations

import pytest

from scenarios import eks_retail, hoot51
from scenarios import stars as stars_pack

from .conftest import ALLOWED, DEFAULT_DENY, NA, check, cluster, docs_yaml, probe


def retail_store():
    """The workshop's retail store (ui, catalog + catalog-mysql, orders, checkout, carts)."""
    return eks_retail.workloads()


# default-deny.yaml carries ``namespace: ui``: the seed applies it with ``-n ui`` (the pack's file).
DEFAULT_DENY_EGRESS = eks_retail.policy("default-deny")
ALLOW_UI_EGRESS = eks_retail.policy("allow-ui-egress")
ALLOW_CATALOG_INGRESS_WEBSERVICE = eks_retail.policy("allow-catalog-ingress-webservice")
ALLOW_CATALOG_INGRESS_DB = eks_retail.policy("allow-catalog-ingress-db")
ORDERS_FAIL_DEBUG = eks_retail.policy("allow-order-ingress-fail-debug")
ORDERS_SUCCESS_DEBUG = eks_retail.policy("allow-order-ingress-success-debug")

EGRESS_STAGE = [DEFAULT_DENY_EGRESS, ALLOW_UI_EGRESS]


def curl(c, source, target, port=80, **kw):
    """``kubectl exec deployment/X -n X -- curl http://target.ns/...`` - by service name."""
    return probe(c, source, target, port, via="service-name", **kw)


def test_eks_no_policies():
    """EKS: "There are no network policies that are defined / So any component in the webapp
    application can communicate with any other component or any external service" - catalog to
    checkout and ui to catalog "Expect this to work"."""
    c = cluster(retail_store())
    check(curl(c, "catalog/catalog", "checkout/checkout"), "allow", ALLOWED, ALLOWED)
    check(curl(c, "ui/ui", "catalog/catalog"), "allow", ALLOWED, ALLOWED)
    check(probe(c, "ui/ui", "world:www.google.com", 443), "allow", ALLOWED, NA)


def test_eks_default_deny_egress_in_ui():
    """EKS "Block all egress traffic from ui namespace" (default-deny.yaml applied with -n ui):
    "Catalog to checkout should work just fine"; "UI to any other pod or service should be blocked
    ... all outbound connections blocked off" - including the lookup of catalog.catalog
    (DESIGN.md §8: ``dns-fail`` = "the lookup itself is dropped")."""
    c = cluster(retail_store(), DEFAULT_DENY_EGRESS)
    check(curl(c, "catalog/catalog", "checkout/checkout"), "allow", ALLOWED, ALLOWED)
    check(curl(c, "ui/ui", "catalog/catalog"), "dns-fail", "dns-fail", NA)
    check(probe(c, "ui/ui", "catalog/catalog", 8080), "drop", DEFAULT_DENY, NA)


def test_eks_allow_ui_egress():
    """EKS allow-ui-egress.yaml ("All other application services" + "All components in the
    kube-system namespace"): "Try again communication to catalog service as well as the checkout
    service - Expect both to work"; "All communicaiton [sic] to any external site or service will
    not work however" (``curl -v www.google.com``: the lookup in kube-system passes, the connection is
    dropped)."""
    c = cluster(retail_store(), EGRESS_STAGE)
    check(curl(c, "ui/ui", "catalog/catalog"), "allow", ALLOWED, ALLOWED)
    check(curl(c, "ui/ui", "checkout/checkout"), "allow", ALLOWED, ALLOWED)
    check(probe(c, "ui/ui", "world:www.google.com", 80), "drop", DEFAULT_DENY, NA)


def test_eks_catalog_ingress_webservice():
    """EKS allow-catalog-ingress-webservice.yaml: "From UI to Catalog, this should work fine"; "From
    Order to Catalog, this should be blocked"; "The catalog database component is still open"."""
    c = cluster(retail_store(), EGRESS_STAGE, ALLOW_CATALOG_INGRESS_WEBSERVICE)
    check(curl(c, "ui/ui", "catalog/catalog"), "allow", ALLOWED, ALLOWED)
    check(curl(c, "orders/orders", "catalog/catalog"), "drop", ALLOWED, DEFAULT_DENY)
    check(curl(c, "orders/orders", "catalog/catalog-mysql", 3306), "allow", ALLOWED, ALLOWED)


def test_eks_catalog_ingress_db_and_egress_wins():
    """EKS allow-catalog-ingress-db.yaml: "Communication from catalog database from the orders
    component should fail and also from UI pods it should fail"; "Access works from existing pods
    from the catalog namespace". ui's own egress policy (component=service pods only) already drops
    ui -> mysql: egress is judged first and hides the ingress side (DESIGN.md §8)."""
    c = cluster(retail_store(), EGRESS_STAGE, ALLOW_CATALOG_INGRESS_WEBSERVICE,
                ALLOW_CATALOG_INGRESS_DB)
    check(curl(c, "orders/orders", "catalog/catalog-mysql", 3306), "drop", ALLOWED, DEFAULT_DENY)
    check(curl(c, "ui/ui", "catalog/catalog-mysql", 3306), "drop", DEFAULT_DENY, NA)
    check(curl(c, "catalog/catalog", "catalog/catalog-mysql", 3306), "allow", ALLOWED, ALLOWED)


def test_eks_debugging_pod_selector_without_namespace_selector():
    """EKS "Network Policy Debugging": with allow-order-ingress-fail-debug.yaml, "Test UI to Order
    service. It should succeed ideally / The above communication didn't work"; the diagnosis:
    "namespaceSelector is empty, which means only the current namespace is permitted (orders)".
    The explanation chain must carry that diagnosis (specs/evaluator.md: "say so explicitly")."""
    c = cluster(retail_store(), EGRESS_STAGE, ORDERS_FAIL_DEBUG)
    v = curl(c, "ui/ui", "orders/orders")
    check(v, "drop", ALLOWED, DEFAULT_DENY)
    assert any("namespaceSelector" in line and "orders" in line and "ui/ui" in line
               for line in v.why), v.why


def test_eks_debugging_fixed():
    """EKS: "Fix network policy" (allow-order-ingress-success-debug.yaml, namespaceSelector
    kubernetes.io/metadata.name=ui + podSelector) - then "Retest" succeeds."""
    c = cluster(retail_store(), EGRESS_STAGE, ORDERS_SUCCESS_DEBUG)
    check(curl(c, "ui/ui", "orders/orders"), "allow", ALLOWED, ALLOWED)


# --------------------------------------------------------------------------------------------
# Stars (seed 003), single-cluster part
# --------------------------------------------------------------------------------------------
# default-deny.yaml names no namespace: the seed applies it with ``-n stars`` and ``-n client``.
STARS_DEFAULT_DENY = (stars_pack.policy("default-deny/stars"), stars_pack.policy("default-deny/client"))
STARS_BACKEND = stars_pack.policy("backend-policy")
STARS_ALLOW_UI_CLIENT = stars_pack.policy("allow-ui/client")


def stars(*extra):
    return cluster(stars_pack.workloads(), STARS_DEFAULT_DENY, STARS_BACKEND, STARS_ALLOW_UI_CLIENT, *extra)


def test_stars_policies():
    """STARS: default-deny "applied -n stars" and "-n client" (no policyTypes, no rules: ingress
    isolation only, kubernetes.io "policyTypes"); "Allow frontend as client of backend"
    (backend-policy, TCP 6379); "Allow management-ui as client of client" (allow-ui, namespaces
    labelled role=management-ui)."""
    c = stars()
    check(probe(c, "stars/frontend", "stars/backend", 6379), "allow", ALLOWED, ALLOWED)
    check(probe(c, "client/client", "stars/backend", 6379), "drop", ALLOWED, DEFAULT_DENY)
    check(probe(c, "management-ui/management-ui", "client/client", 9000), "allow", ALLOWED, ALLOWED)
    check(probe(c, "stars/frontend", "client/client", 9000), "drop", ALLOWED, DEFAULT_DENY)
    check(probe(c, "client/client", "management-ui/management-ui", 9001), "allow", ALLOWED, ALLOWED)


def test_stars_ipblock_of_a_pod_ip_does_not_work_in_one_cilium_cluster():
    """STARS' frontend-policy admits the client "by its pod IP" (``ipBlock: cidr:
    ${client_ep}/32``) because in the seed the client runs in another cluster. In one Cilium
    cluster, ipBlock never matches a pod IP (cilium/cilium#9209; docs.cilium.io "By default,
    CIDR-based selectors do not match in-cluster entities (pods or nodes).")."""
    client_ip = stars().workloads["client/client"].ip
    # Deliberately NOT the pack's frontend-policy (seed_manifests/stars/frontend-policy.yaml): the pack
    # replaced this cross-cluster ipBlock peer by the identity it stands for (namespaceSelector role:
    # client). This is the seed's own step-5 form, with the pod IP filled in, to show why.
    frontend_policy = docs_yaml(f"""
        kind: NetworkPolicy
        apiVersion: networking.k8s.io/v1
        metadata:
          namespace: stars
          name: frontend-policy
        spec:
          podSelector:
            matchLabels:
              role: frontend
          ingress:
            - from:
                - ipBlock:
                    cidr: {client_ip}/32
              ports:
                - protocol: TCP
                  port: 80
        """)
    c = stars(frontend_policy)
    assert c.workloads["client/client"].ip == client_ip
    check(probe(c, "client/client", "stars/frontend", 80), "drop", ALLOWED, DEFAULT_DENY)


@pytest.mark.parametrize("ns", ["stars", "client"])
def test_stars_default_deny_leaves_egress_open(ns):
    """kubernetes.io "Default deny all ingress traffic": "This policy does not affect isolation for
    egress from any pod." (STARS' default-deny has no policyTypes and no egress rules.)"""
    src = "stars/frontend" if ns == "stars" else "client/client"
    check(probe(stars(), src, "world:198.51.100.20", 443), "allow", ALLOWED, NA)


# --------------------------------------------------------------------------------------------
# Hoot 51 (seed 001) "Ingress policies", stage by stage
# --------------------------------------------------------------------------------------------
# The pack's files carry ``namespace: default``: the seed applies them in the current namespace.
HOOT_DENY_INGRESS = hoot51.policy("default-deny-ingress")
HOOT_ALLOW_TO_HTTPBIN = hoot51.policy("allow-ingress-to-httpbin")
HOOT_ALLOW_FROM_SLEEP_NS = hoot51.policy("allow-ingress-from-sleep/namespace")
HOOT_ALLOW_FROM_SLEEP_PODS = hoot51.policy("allow-ingress-from-sleep/namespace-and-pod")
HOOT_ALLOW_NS_INGRESS = hoot51.policy("allow-ns-ingress")


def hoot(*policies):
    """sleep in default and in sleep, httpbin in default, and notsleep - the "other pods" of the
    sleep namespace - as the pack deploys them."""
    return cluster(hoot51.workloads(), list(policies))


def curl_headers(c, source):
    """``kubectl exec -it deploy/sleep [-n sleep] -- curl httpbin.default:8000/headers``"""
    return probe(c, source, "default/httpbin", 8000, via="service-name", request="GET /headers")


def test_hoot_default_deny_ingress():
    """HOOT: "let's deploy a deny all ingress policy -- this will deny all traffic between the pods
    in the default namespace ... If we try to send a request this time, it's not going to work -
    the request will eventually time out." (hubble: "Policy denied DROPPED")"""
    check(curl_headers(hoot(HOOT_DENY_INGRESS), "default/sleep"), "drop", ALLOWED, DEFAULT_DENY)


def test_hoot_allow_sleep_to_httpbin():
    """HOOT: "let's explicitly allow traffic from sleep to httpbin endpoints ... If we repeat the
    request from the sleep workload, we'll see that the traffic is now allowed." ... "Send a
    request to the httpbin workload from the sleep namespace will fail because of our deny all
    policy." """
    c = hoot(HOOT_DENY_INGRESS, HOOT_ALLOW_TO_HTTPBIN)
    check(curl_headers(c, "default/sleep"), "allow", ALLOWED, ALLOWED)
    check(curl_headers(c, "sleep/sleep"), "drop", ALLOWED, DEFAULT_DENY)


def test_hoot_allow_from_sleep_namespace():
    """HOOT: allow-ingress-from-sleep (namespaceSelector kubernetes.io/metadata.name: sleep): "If we
    send a request from the sleep namespace, we'll be able to access the httpbin workload in the
    default namespace" - "it's not very restrictive as it allows any pods in the sleep namespace"."""
    c = hoot(HOOT_DENY_INGRESS, HOOT_ALLOW_TO_HTTPBIN, HOOT_ALLOW_FROM_SLEEP_NS)
    check(curl_headers(c, "sleep/sleep"), "allow", ALLOWED, ALLOWED)
    check(curl_headers(c, "sleep/notsleep"), "allow", ALLOWED, ALLOWED)


def test_hoot_allow_from_sleep_pods_in_sleep_namespace():
    """HOOT: namespaceSelector + podSelector in one element "to make it more restrictive and only
    allow the sleep pods from the sleep namespace ... This won't change anything for the requests
    made from the sleep pods, but it will restrict any other pods from making the requests." """
    c = hoot(HOOT_DENY_INGRESS, HOOT_ALLOW_TO_HTTPBIN, HOOT_ALLOW_FROM_SLEEP_PODS)
    check(curl_headers(c, "sleep/sleep"), "allow", ALLOWED, ALLOWED)
    check(curl_headers(c, "sleep/notsleep"), "drop", ALLOWED, DEFAULT_DENY)


def test_hoot_allow_ns_ingress():
    """HOOT: allow-ns-ingress ("apply this policy to all pods in the namespace" and "allow all
    traffic from all pods in the namespace"): "we can make requests within the default namespace,
    however, requests from the sleep namespace will be dropped." """
    c = hoot(HOOT_ALLOW_NS_INGRESS)
    check(curl_headers(c, "default/sleep"), "allow", ALLOWED, ALLOWED)
    check(curl_headers(c, "sleep/sleep"), "drop", ALLOWED, DEFAULT_DENY)
