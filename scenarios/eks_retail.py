"""EKS workshop "Network Policies" with the retail store sample (seed 004), on Cilium.

Namespaces, pod labels, Service names and ports are the workshop's (aws-samples/eks-workshop-v2,
manifests/base-application/<component>/{namespace,deployment,statefulset-mysql,service*}.yaml at
bb1b3000; the same labels and ports since the 2023 module): every component serves HTTP on container
port 8080 named ``http`` behind a Service on port 80 (``targetPort: http``); ``catalog-mysql`` is a
StatefulSet on 3306 (``mysql``) behind Service ``catalog-mysql:3306``. Pod labels are
``app.kubernetes.io/{name,instance,component,created-by}`` with component ``service`` or ``mysql``.

Stand-in images (the lab tests the network, not the shop): hashicorp/http-echo answers 200 on every
path (``/health`` has its own handler, ``/orders`` gets the echo text) on 8080; busybox ``nc -lk``
accepts TCP on 3306 for catalog-mysql. Every HTTP workload carries a curl sidecar for the probes
(http-echo's image is distroless: no shell).

The policies are the workshop's files from
manifests/modules/networking/network-policies/apply-network-policies/ (unchanged since 2024-03-22),
applied as the seed applies them: ``default-deny.yaml`` has no namespace and the seed applies it with
``-n ui``; the others name their namespace. The fail-debug and success-debug files both define
``orders/allow-orders-ingress-webservice``: applying the second replaces the first.

The world probe (ui -> www.google.com) needs the kind host to reach the internet (restrictEgress off,
or the proxy letting it through): its "open" verdict is allow.
"""
from __future__ import annotations

from cilium_verdicts import Probe

from . import _seed, k8s
from .base import Context, LabProbe, Stage

NAME = "eks-retail"
SEED = "004"
TITLE = "EKS workshop network policies on the retail sample: ui egress, catalog/mysql ingress, debugging"
NEEDS: frozenset[str] = frozenset()

ECHO_IMAGE = k8s.ECHO_IMAGE  # hashicorp/http-echo 1.0.0 (scenarios/k8s.py)
# busybox's nc (NC_110_COMPAT, on in defconfig): ``-l -k -e PROG`` is a persistent server.
BUSYBOX_IMAGE = "busybox:1.36.1"

HTTP_PORT = 8080            # containerPort "http" of every component
SERVICE_PORT = 80           # Service port of every component
MYSQL_PORT = 3306
CREATED_BY = {"app.kubernetes.io/created-by": "eks-workshop"}
COMPONENTS = ("ui", "catalog", "orders", "checkout", "carts")


def pod_labels(name: str, component: str = "service") -> dict:
    """The workshop's pod template labels (base-application/<name>/deployment.yaml)."""
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name,
            "app.kubernetes.io/component": component, **CREATED_BY}


def _selector(name: str, component: str = "service") -> dict:
    labels = pod_labels(name, component)
    del labels["app.kubernetes.io/created-by"]
    return labels


def _component(name: str) -> list[dict]:
    """Namespace, Service ``<name>:80 -> http`` and Deployment of one retail component (stand-in)."""
    echo = {"name": name, "image": ECHO_IMAGE, "imagePullPolicy": "IfNotPresent",
            "args": [f"-listen=:{HTTP_PORT}", f"-text={name}"],
            "ports": [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}],
            "readinessProbe": {"httpGet": {"path": "/health", "port": HTTP_PORT}, "periodSeconds": 5},
            "resources": k8s.resources("10m", "16Mi", "64Mi"),
            "securityContext": k8s.non_root(65532)}
    return [
        k8s.namespace(name, CREATED_BY),
        k8s.service(name, name, _selector(name),
                     [{"port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP", "name": "http"}],
                     labels=CREATED_BY),
        k8s.deployment(name, name, pod_labels(name), [echo, k8s.curl_sidecar()],
                        labels={**CREATED_BY, "app.kubernetes.io/type": "app"},
                        probe_container=k8s.CURL_CONTAINER, selector=_selector(name)),
    ]


def _catalog_mysql() -> list[dict]:
    """base-application/catalog/{statefulset-mysql,service-mysql}.yaml with a TCP listener for MySQL."""
    nc = {"name": "mysql", "image": BUSYBOX_IMAGE, "imagePullPolicy": "IfNotPresent",
          "command": ["nc", "-lk", "-p", str(MYSQL_PORT), "-e", "cat"],
          "ports": [{"name": "mysql", "containerPort": MYSQL_PORT, "protocol": "TCP"}],
          "readinessProbe": {"tcpSocket": {"port": MYSQL_PORT}, "periodSeconds": 5},
          "resources": k8s.resources("10m", "8Mi", "32Mi"),
          "securityContext": k8s.non_root(65534)}
    return [
        k8s.service("catalog", "catalog-mysql", _selector("catalog", "mysql"),
                     [{"port": MYSQL_PORT, "targetPort": "mysql", "protocol": "TCP", "name": "mysql"}],
                     labels=CREATED_BY),
        k8s.workload("StatefulSet", "catalog", "catalog-mysql", pod_labels("catalog", "mysql"), [nc],
                      labels={**CREATED_BY, "app.kubernetes.io/team": "database"},
                      selector=_selector("catalog", "mysql"), service_name="catalog-mysql"),
    ]


def workloads(ctx: Context | None = None) -> list[dict]:
    out: list[dict] = []
    for name in COMPONENTS:
        out += _component(name)
    return out + _catalog_mysql()


# ---------------------------------------------------------------------------------------- policies
# aws-samples/eks-workshop-v2 manifests/modules/networking/network-policies/apply-network-policies/*.yaml,
# copied verbatim into scenarios/seed_manifests/eks-retail/<key>.yaml (scenarios._seed; only
# default-deny.yaml gains ``namespace: ui``, the seed's ``-n ui``).

_BASE = ("default-deny", "allow-ui-egress", "allow-catalog-ingress-webservice", "allow-catalog-ingress-db")
_STAGES = (
    ("open", '"There are no network policies that are defined" (Implementing Egress Controls)', ()),
    ("default-deny", '"kubectl apply -n ui -f .../default-deny.yaml ... UI to any other pod or service '
                     'should be blocked" (Implementing Egress Controls)', _BASE[:1]),
    ("allow-ui-egress", '"Apply allow-ui-egress network policy ... Expect both to work ... any external site '
                        '... will not work" (Implementing Egress Controls)', _BASE[:2]),
    ("allow-catalog-ingress-webservice", '"allow traffic into (ingress) the catalog service component only '
                                         'from the ui component" (Implementing Ingress Controls)', _BASE[:3]),
    ("allow-catalog-ingress-db", '"only Catalog service can communicate with Catalog database component" '
                                 "(Implementing Ingress Controls)", _BASE),
    ("allow-order-ingress-fail-debug", '"Test UI to Order service ... The above communication didn\'t work" '
                                       "(Network Policy Debugging)", _BASE + ("allow-order-ingress-fail-debug",)),
    ("allow-order-ingress-success-debug", '"Apply fixed manifest ... Retest UI to Order service. It should '
                                          'succeed!" (Network Policy Debugging)',
     _BASE + ("allow-order-ingress-success-debug",)),
)


def policy(key: str) -> dict:
    """One of the workshop's policy objects (seed_manifests/eks-retail/<key>.yaml), freshly parsed."""
    return _seed.manifest(NAME, key)


STAGES = _seed.stage_names(_STAGES)


def stages(ctx: Context | None = None) -> list[Stage]:
    return _seed.staged(_STAGES, policy)


# ---------------------------------------------------------------------------------------- probes
def _http(source: str, to: str, path: str, note: str, via: str = "service-name") -> LabProbe:
    return LabProbe(traffic=Probe(source=source, to=to, port=SERVICE_PORT, via=via, request=f"GET {path}"),
                    note=note)


def _mysql(source: str, note: str, setup: str | None = None) -> LabProbe:
    return LabProbe(traffic=Probe(source=source, to="catalog/catalog-mysql", port=MYSQL_PORT,
                                  via="service-name", request=None), note=note, setup=setup)


def probes(ctx: Context | None, stage: Stage) -> list[LabProbe]:
    """Every request of the seed, in the seed's order, the same set in every stage (plus ui -> catalog
    by service IP: the seed's "UI to any other pod or service should be blocked" without DNS in the
    way). ``curl telnet://host:3306`` is a bare TCP connection (request None)."""
    ex = "kubectl exec deployment/{0} -n {0} -- curl "
    return [
        _http("catalog/catalog", "checkout/checkout", "/health", ex.format("catalog") + "-s http://checkout.checkout/health"),
        _http("ui/ui", "catalog/catalog", "/health", ex.format("ui") + "-s http://catalog.catalog/health --connect-timeout 5"),
        _http("ui/ui", "catalog/catalog", "/health",
              "the same request to catalog's ClusterIP (no DNS lookup)", via="service-ip"),
        _http("ui/ui", "checkout/checkout", "/health", ex.format("ui") + "http://checkout.checkout/health"),
        LabProbe(traffic=Probe(source="ui/ui", to="world:www.google.com", port=80, via="fqdn", request="GET /"),
                 note=ex.format("ui") + "-v www.google.com --connect-timeout 5"),
        _http("orders/orders", "catalog/catalog", "/health", ex.format("orders") + "-v catalog.catalog/health --connect-timeout 5"),
        _mysql("orders/orders", ex.format("orders") + "-v telnet://catalog-mysql.catalog:3306 --connect-timeout 5"),
        _mysql("ui/ui", ex.format("ui") + "-v telnet://catalog-mysql.catalog:3306 --connect-timeout 5"),
        _mysql("catalog/catalog", ex.format("catalog") + "-v telnet://catalog-mysql.catalog:3306 --connect-timeout 5"),
        _mysql("catalog/catalog", "kubectl rollout restart deployment/catalog -n catalog; then "
               + ex.format("catalog") + "-v telnet://catalog-mysql.catalog:3306 --connect-timeout 5",
               setup="rollout-restart"),
        _http("ui/ui", "orders/orders", "/orders", ex.format("ui") + "-v orders.orders/orders --connect-timeout 5"),
    ]
