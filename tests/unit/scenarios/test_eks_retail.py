"""eks-retail (seed 004): every stage reproduces the seed's stated outcome, offline.

Expected values are literal data, each with the seed sentence it comes from (seed
/work/shared/seeds/004_*.txt, the EKS workshop's "Network Policies" module). Where the seed is silent
about a request in a stage, the row says what decides it. Written from the texts, not from the code.

Probes (the seed's requests; HTTP by Service name on the Service port 80, MySQL as a bare TCP connect
on 3306, the external site by name on 80):
"""
from __future__ import annotations

import pytest

from scenarios import eks_retail

from .conftest import (
    ALLOW,
    DNS_FAIL,
    DROP,
    evaluator,
    explain,
    stage_cluster,
    stage_named,
)

NAME, IP = "service-name", "service-ip"
# (source, to, port, via, request, setup)
CAT_CHK = ("catalog/catalog", "checkout/checkout", 80, NAME, "GET /health", None)   # curl -s http://checkout.checkout/health
UI_CAT = ("ui/ui", "catalog/catalog", 80, NAME, "GET /health", None)                # curl ... catalog.catalog/health
UI_CAT_IP = ("ui/ui", "catalog/catalog", 80, IP, "GET /health", None)              # the same by ClusterIP (added)
UI_CHK = ("ui/ui", "checkout/checkout", 80, NAME, "GET /health", None)              # curl http://checkout.checkout/health
UI_WWW = ("ui/ui", "world:www.google.com", 80, "fqdn", "GET /", None)               # curl -v www.google.com
ORD_CAT = ("orders/orders", "catalog/catalog", 80, NAME, "GET /health", None)       # curl -v catalog.catalog/health
ORD_DB = ("orders/orders", "catalog/catalog-mysql", 3306, NAME, None, None)         # curl -v telnet://catalog-mysql.catalog:3306
UI_DB = ("ui/ui", "catalog/catalog-mysql", 3306, NAME, None, None)
CAT_DB = ("catalog/catalog", "catalog/catalog-mysql", 3306, NAME, None, None)
CAT_DB_NEW = ("catalog/catalog", "catalog/catalog-mysql", 3306, NAME, None, "rollout-restart")
UI_ORD = ("ui/ui", "orders/orders", 80, NAME, "GET /orders", None)                  # curl -v orders.orders/orders
ALL = (CAT_CHK, UI_CAT, UI_CAT_IP, UI_CHK, UI_WWW, ORD_CAT, ORD_DB, UI_DB, CAT_DB, CAT_DB_NEW, UI_ORD)

STAGE_NAMES = ["open", "default-deny", "allow-ui-egress", "allow-catalog-ingress-webservice",
               "allow-catalog-ingress-db", "allow-order-ingress-fail-debug", "allow-order-ingress-success-debug"]

OPEN = ('seed: "There are no network policies that are defined - So any component in the webapp application '
        'can communicate with any other component or any external service"')
UI_BLOCKED = ('seed: "UI to any other pod or service should be blocked - This command should time out, all '
              'outbound connctions blocked off" (by name the DNS lookup is the first thing blocked)')
NOT_UI = 'seed: "Catalog to checkout should work just fine - No Network Policy applied here yet"'
UI_EGRESS_ONLY_SERVICES = ('seed: "allow UI pods to communicate with 1. All other application services 2. Al '
                           'components in the kube-system namespace" ... "everything else is blocked" '
                           '(catalog-mysql is component mysql, not service)')
UNCHANGED = "no policy of this stage touches this path (as in the previous stage)"

# stage -> {probe: (verdict, why)}
EXPECTED: dict[str, dict[tuple, tuple[str, str]]] = {
    "open": {p: (ALLOW, OPEN) for p in ALL} | {
        CAT_CHK: (ALLOW, 'seed: "Verify the claim by talking to another service from a Catalog pod - Expect '
                         'this to work"'),
        UI_CAT: (ALLOW, 'seed: "Verify another communication from UI to Catalog service - Expect this to work '
                        'as well"'),
        ORD_DB: (ALLOW, 'seed: "Before restricting, test if the communication is open ... 3. From Order to '
                        'Catalog Database component - All should work"'),
    },
    "default-deny": {
        CAT_CHK: (ALLOW, NOT_UI),
        UI_CAT: (DNS_FAIL, UI_BLOCKED),
        UI_CAT_IP: (DROP, UI_BLOCKED + " (by ClusterIP: the connection itself)"),
        UI_CHK: (DNS_FAIL, UI_BLOCKED),
        UI_WWW: (DNS_FAIL, UI_BLOCKED),
        ORD_CAT: (ALLOW, NOT_UI),
        ORD_DB: (ALLOW, NOT_UI),
        UI_DB: (DNS_FAIL, UI_BLOCKED),
        CAT_DB: (ALLOW, NOT_UI),
        CAT_DB_NEW: (ALLOW, NOT_UI),
        UI_ORD: (DNS_FAIL, UI_BLOCKED),
    },
    "allow-ui-egress": {
        CAT_CHK: (ALLOW, NOT_UI),
        UI_CAT: (ALLOW, 'seed: "Try again communication to catalog service as well as the checkout service - '
                        'Expect both to work"'),
        UI_CAT_IP: (ALLOW, "same"),
        UI_CHK: (ALLOW, "same"),
        UI_WWW: (DROP, 'seed: "All communicaiton to any external site or service will not work however"'),
        ORD_CAT: (ALLOW, 'seed (next section): "Before restricting ... 2. From Order to Catalog ... All should '
                         'work"'),
        ORD_DB: (ALLOW, 'seed (next section): "3. From Order to Catalog Database component ... All should work"'),
        UI_DB: (DROP, UI_EGRESS_ONLY_SERVICES),
        CAT_DB: (ALLOW, NOT_UI),
        CAT_DB_NEW: (ALLOW, NOT_UI),
        UI_ORD: (ALLOW, UI_EGRESS_ONLY_SERVICES + " (orders is component service)"),
    },
    "allow-catalog-ingress-webservice": {
        CAT_CHK: (ALLOW, UNCHANGED),
        UI_CAT: (ALLOW, 'seed: "From UI to Catalog, this should work fine"'),
        UI_CAT_IP: (ALLOW, "same"),
        UI_CHK: (ALLOW, UNCHANGED),
        UI_WWW: (DROP, UNCHANGED),
        ORD_CAT: (DROP, 'seed: "From Order to Catalog, this should be blocked"'),
        ORD_DB: (ALLOW, 'seed: "The `catalog` database component is still open"'),
        UI_DB: (DROP, UI_EGRESS_ONLY_SERVICES),
        CAT_DB: (ALLOW, 'seed: "The `catalog` database component is still open"'),
        CAT_DB_NEW: (ALLOW, "same"),
        UI_ORD: (ALLOW, UNCHANGED),
    },
    "allow-catalog-ingress-db": {
        CAT_CHK: (ALLOW, UNCHANGED),
        UI_CAT: (ALLOW, UNCHANGED),
        UI_CAT_IP: (ALLOW, UNCHANGED),
        UI_CHK: (ALLOW, UNCHANGED),
        UI_WWW: (DROP, UNCHANGED),
        ORD_CAT: (DROP, UNCHANGED),
        ORD_DB: (DROP, 'seed: "Communication from `catalog` database from the `orders` component should fail"'),
        UI_DB: (DROP, 'seed: "and also from UI pods it should fail"'),
        CAT_DB: (ALLOW, 'seed: "Access works from existing pods from the catalog namespace"'),
        CAT_DB_NEW: (ALLOW, 'seed: "Access works from existing pods from the `catalog` namespace with new pods '
                            'after a restart"'),
        UI_ORD: (ALLOW, UNCHANGED),
    },
}
EXPECTED["allow-order-ingress-fail-debug"] = EXPECTED["allow-catalog-ingress-db"] | {
    UI_ORD: (DROP, 'seed: "Test UI to Order service. It should succeed ideally ... The above communication '
                   'didn\'t work"'),
}
EXPECTED["allow-order-ingress-success-debug"] = EXPECTED["allow-catalog-ingress-db"] | {
    UI_ORD: (ALLOW, 'seed: "Retest UI to Order service. It should succeed!"'),
}


def _key(lp) -> tuple:
    t = lp.traffic
    return (t.source, t.to, t.port, t.via, t.request, lp.setup)


def test_stage_names_in_seed_order():
    assert [s.name for s in eks_retail.stages(None)] == STAGE_NAMES
    assert list(EXPECTED) == STAGE_NAMES


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_probes_are_the_seed_requests(stage_name):
    stage = stage_named(eks_retail, stage_name)
    keys = [_key(lp) for lp in eks_retail.probes(None, stage)]
    assert sorted(keys, key=repr) == sorted(ALL, key=repr)
    assert set(EXPECTED[stage_name]) == set(ALL)


@pytest.mark.parametrize("stage_name", STAGE_NAMES)
def test_stage_reproduces_the_seed(stage_name):
    _, evaluate, _ = evaluator()
    stage = stage_named(eks_retail, stage_name)
    cluster = stage_cluster(eks_retail, stage)
    bad = []
    for lp in eks_retail.probes(None, stage):
        verdict, why = EXPECTED[stage_name][_key(lp)]
        v = evaluate(cluster, lp.traffic)
        if v.verdict != verdict:
            bad.append(f"{lp.traffic.id} setup={lp.setup}: want {verdict} ({why}), got {explain(v)}")
    assert not bad, "\n".join(bad)


def _evaluate(stage_name, key):
    _, evaluate, _ = evaluator()
    stage = stage_named(eks_retail, stage_name)
    lp = next(lp for lp in eks_retail.probes(None, stage) if _key(lp) == key)
    return evaluate(stage_cluster(eks_retail, stage), lp.traffic)


def test_external_site_is_an_egress_drop_once_ui_is_isolated():
    # seed: "All communicaiton to any external site or service will not work however - Because of
    # restricted connections allowed, everything else is blocked" (DNS via kube-system is allowed)
    v = _evaluate("allow-ui-egress", UI_WWW)
    assert (v.verdict, v.egress, v.ingress) == (DROP, "drop:default-deny", "n/a"), explain(v)


def test_fail_debug_ui_to_orders_is_an_ingress_drop_explained_by_the_namespace():
    """seed: "Check Network Policy manifest - `namespaceSelector` is empty, which means only the current
    namespace is permitted (orders)". The evaluator must say so (specs/evaluator.md, explanation chain:
    "... matches ui/ui's labels but, without a namespaceSelector, only selects pods in namespace orders")."""
    v = _evaluate("allow-order-ingress-fail-debug", UI_ORD)
    assert (v.verdict, v.egress, v.ingress) == (DROP, "allow", "drop:default-deny"), explain(v)
    lines = [w for w in v.why if "only selects pods in namespace orders" in w]
    assert lines, explain(v)
    assert any("ui/ui" in w for w in lines), explain(v)


def test_fail_debug_explained_by_pod_ip_too():
    # what `--explain ui/ui orders/orders:8080` evaluates: the pod directly on its container port
    _, evaluate, _ = evaluator()
    from cilium_verdicts import Probe  # noqa: PLC0415
    cluster = stage_cluster(eks_retail, stage_named(eks_retail, "allow-order-ingress-fail-debug"))
    v = evaluate(cluster, Probe(source="ui/ui", to="orders/orders", port=8080))
    assert v.verdict == DROP, explain(v)
    assert any("only selects pods in namespace orders" in w and "ui/ui" in w for w in v.why), explain(v)


def test_success_debug_allows_ui_by_namespace_and_pod():
    # seed: "Retest UI to Order service. It should succeed!"
    v = _evaluate("allow-order-ingress-success-debug", UI_ORD)
    assert (v.verdict, v.egress, v.ingress) == (ALLOW, "allow", "allow"), explain(v)


def test_catalog_restart_probe_restarts_the_catalog_deployment():
    # seed: "kubectl rollout restart deployment/catalog -n catalog" before the last mysql check
    stage = stage_named(eks_retail, "allow-catalog-ingress-db")
    restarts = [lp for lp in eks_retail.probes(None, stage) if lp.setup]
    assert [(lp.setup, lp.traffic.source) for lp in restarts] == [("rollout-restart", "catalog/catalog")]
    catalog = next(o for o in eks_retail.workloads(None)
                   if o["kind"] == "Deployment" and o["metadata"]["namespace"] == "catalog")
    assert catalog["metadata"]["name"] == "catalog"
