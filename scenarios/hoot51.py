"""Hoot episode 51 (seed 001): Kubernetes NetworkPolicy and Cilium L7 policy with sleep and httpbin.

Workloads are the seed's: Istio's ``sleep`` sample in ``default`` and in ``sleep`` (``kubectl apply -f
sleep.yaml [-n sleep]``) and Istio's ``httpbin`` sample in ``default`` (service port 8000 -> container
port 80). One workload is added: Istio's ``notsleep`` sample (samples/sleep/notsleep.yaml) in the
``sleep`` namespace, the "other pod" of the seed's "it will restrict any other pods from making the
requests" — without it that sentence could not be checked.

Stages follow the seed's order. Policies accumulate as the seed applies them; ``kubectl delete netpol
--all`` (twice in the seed) empties the NetworkPolicies; re-applying ``allow-ingress-from-sleep`` with
the same name replaces the first version. Every policy the seed applies without ``-n`` lands in the
current namespace, ``default``: each object here says so with an explicit ``metadata.namespace``.
"""
from __future__ import annotations

from cilium_verdicts import Probe

from . import _seed, k8s
from .base import Context, LabProbe, Stage

NAME = "hoot51"
SEED = "001"
TITLE = "Hoot 51: NetworkPolicy ingress/egress (DNS!) and a Cilium L7 rule with sleep -> httpbin"
NEEDS: frozenset[str] = frozenset()

SLEEP_NS = "sleep"
HTTPBIN = "default/httpbin"
HTTPBIN_PORT = 8000          # the Service port the seed dials (httpbin:8000); the pod listens on 80
SOURCES = ("default/sleep", "sleep/sleep", "sleep/notsleep")
REQUESTS = ("GET /headers", "GET /ip", "POST /post")
VIAS = ("service-name", "service-ip")

# Istio's httpbin sample as the seed used it (istio/istio samples/httpbin/httpbin.yaml before it moved
# to go-httpbin on 8080): docker.io/kennethreitz/httpbin, containerPort 80. That image is published only
# as ``latest``, so it is pinned by digest.
HTTPBIN_IMAGE = ("docker.io/kennethreitz/httpbin"
                 "@sha256:599fe5e5073102dbb0ee3dbb65f049dab44fa9fc251f6835c9990f8fb196a72b")


# ---------------------------------------------------------------------------------------- workloads
def _sleep(ns: str, name: str = "sleep") -> list[dict]:
    """Istio samples/sleep/sleep.yaml (and notsleep.yaml): ServiceAccount, Service :80, Deployment
    ``app: <name>`` running curlimages/curl ``sleep infinity``. The optional TLS secret volume and
    notsleep's anti-affinity are left out (no effect on the network)."""
    container = {"name": name, "image": k8s.CURL_IMAGE, "imagePullPolicy": "IfNotPresent",
                 "command": ["/bin/sleep", "infinity"],
                 "resources": k8s.resources("10m", "16Mi", "64Mi"),
                 "securityContext": k8s.non_root(100)}
    labels = {"app": name}
    return [
        k8s.service_account(ns, name),
        k8s.service(ns, name, labels, [{"port": 80, "name": "http"}],
                     labels={"app": name, "service": name}),
        k8s.deployment(ns, name, labels, [container], service_account_name=name),
    ]


def _httpbin() -> list[dict]:
    """Istio samples/httpbin/httpbin.yaml: Service ``httpbin`` port 8000 -> targetPort 80, Deployment
    ``app: httpbin, version: v1``. gunicorn binds :80 as root in this image, so it keeps root (only
    NET_BIND_SERVICE, no privilege escalation)."""
    container = {"name": "httpbin", "image": HTTPBIN_IMAGE, "imagePullPolicy": "IfNotPresent",
                 "ports": [{"containerPort": 80}],
                 "resources": k8s.resources("50m", "64Mi", "256Mi"),
                 "securityContext": {"allowPrivilegeEscalation": False,
                                     "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}
    labels = {"app": "httpbin", "version": "v1"}
    return [
        k8s.service_account("default", "httpbin"),
        k8s.service("default", "httpbin", {"app": "httpbin"},
                     [{"name": "http", "port": 8000, "targetPort": 80}], labels={"app": "httpbin"}),
        k8s.deployment("default", "httpbin", labels, [container], labels={"app": "httpbin", "version": "v1"},
                        service_account_name="httpbin"),
    ]


def workloads(ctx: Context | None = None) -> list[dict]:
    """``default`` exists in every cluster and is not declared; ``sleep`` is (``kubectl create ns sleep``)."""
    return ([k8s.namespace(SLEEP_NS)]
            + _sleep("default") + _httpbin() + _sleep(SLEEP_NS) + _sleep(SLEEP_NS, "notsleep"))


# ---------------------------------------------------------------------------------------- policies
# The seed's policies are scenarios/seed_manifests/hoot51/<key>.yaml (scenarios._seed): each
# file copied from the seed (001, "Demo - Cilium & NetworkPolicy") with its sentence; only
# ``metadata.namespace: default`` is added where the seed relies on the current namespace.

# (stage name, the seed step it reproduces, the policies in force — in the seed's order)
_STAGES = (
    ("open", '"kubectl exec -it deploy/sleep -- curl httpbin:8000/headers" (Deploying sample apps): '
             "no policy yet", ()),
    ("default-deny-ingress", '"deploy a deny all ingress policy ... the request will eventually time out" '
                             "(Ingress policies)", ("default-deny-ingress",)),
    ("allow-sleep-to-httpbin", '"explicitly allow traffic from sleep to httpbin endpoints ... the traffic '
                               'is now allowed" (Ingress policies)',
     ("default-deny-ingress", "allow-ingress-to-httpbin")),
    ("allow-from-sleep-namespace", '"a policy that explicitly allows making calls from the pods in the sleep '
                                   'namespace" (Ingress policies)',
     ("default-deny-ingress", "allow-ingress-to-httpbin", "allow-ingress-from-sleep/namespace")),
    ("namespace-and-pod-selector", '"combine the namespaceSelector with the podSelector ... restrict any '
                                   'other pods" (Ingress policies)',
     ("default-deny-ingress", "allow-ingress-to-httpbin", "allow-ingress-from-sleep/namespace-and-pod")),
    ("allow-ns-ingress", '"kubectl delete netpol --all", then "allows all traffic within a namespace, but '
                         'denies all traffic from other namespaces" (Ingress policies)',
     ("allow-ns-ingress",)),
    ("deny-sleep-egress", '"a policy that denies all egress traffic from the sleep pod ... it will fail" '
                          "(Egress policies)", ("allow-ns-ingress", "deny-sleep-egress")),
    ("allow-sleep-to-httpbin-egress", '"it fails - why is that? The reason is DNS ... using the service IP '
                                      '... it will work" (Egress policies)',
     ("allow-ns-ingress", "deny-sleep-egress", "deny-sleep-to-httpbin-egress")),
    ("allow-dns-egress", '"allows all egress traffic ... to the core-dns service ... This time ... will work" '
                         "(Egress policies)",
     ("allow-ns-ingress", "deny-sleep-egress", "deny-sleep-to-httpbin-egress", "allow-dns-egress")),
    ("l7-get-headers", '"kubectl delete netpol --all", then "only allows GET requests to /headers ... a POST '
                       'request ... will fail with HTTP 403" (L7 policies)', ("allow-get-headers",)),
)


def policy(key: str) -> dict:
    """One of the seed's policy objects (seed_manifests/hoot51/<key>.yaml), freshly parsed."""
    return _seed.manifest(NAME, key)


STAGES = _seed.stage_names(_STAGES)


def stages(ctx: Context | None = None) -> list[Stage]:
    return _seed.staged(_STAGES, policy)


# ---------------------------------------------------------------------------------------- probes
def _note(source: str, via: str, request: str) -> str:
    ns = source.split("/")[0]
    method, path = request.split(" ", 1)
    flag = "-X POST " if method == "POST" else ""
    host = "httpbin" if ns == "default" else "httpbin.default"
    if via == "service-ip":
        host = "<httpbin ClusterIP>"
    return f"kubectl exec -it deploy/{source.split('/')[1]} -n {ns} -- curl {flag}{host}:8000{path}"


def probes(ctx: Context | None, stage: Stage) -> list[LabProbe]:
    """Every request of the seed, from every sleep pod, by service name and by service IP: GET
    /headers, GET /ip, POST /post to httpbin:8000. The same set in every stage, so each stage's matrix
    shows what changed."""
    return [LabProbe(traffic=Probe(source=src, to=HTTPBIN, port=HTTPBIN_PORT, via=via, request=req),
                     note=_note(src, via, req))
            for src in SOURCES for via in VIAS for req in REQUESTS]
