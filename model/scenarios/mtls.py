"""mTLS injection (seed 002): pods speak plain HTTP to a backend that demands a client certificate;
Cilium's Envoy originates the mTLS with a certificate the pods never see (model/mtls.py builds the
PKI specification, the secrets, the CiliumClusterwideEnvoyConfig, the policy and the backend).

Workloads: ``mtls-inject`` (the seed's namespace: its traffic to the backend is redirected into
Envoy) and ``mtls-direct`` (selected by no policy: it reaches the backend itself, which must refuse a
client without a certificate), a curl pod each; the two Secrets in cilium-secrets. Stages: ``open``
(no Cilium objects: plain HTTP to the backend's TLS port is refused) and ``mtls-injection``.
"""
from __future__ import annotations

from model import k8s, mtls
from model.policy import Probe

from .base import Context, LabProbe, Stage

NAME = "mtls"
SEED = "002"
TITLE = "mTLS injection: plain HTTP from a pod, mutual TLS from Cilium's Envoy to the backend"
NEEDS: frozenset[str] = frozenset({"proxy", "mtls-backend"})
DIRECT_NAMESPACE = "mtls-direct"
STAGES = ("open", "mtls-injection")


def workloads(ctx: Context) -> list[dict]:
    return [*mtls.workloads(), k8s.namespace(DIRECT_NAMESPACE), k8s.curl_pod(DIRECT_NAMESPACE)]


def secret_objects(ctx: Context, material: dict[str, str] | None = None) -> list[dict]:
    """The client certificate (kubernetes.io/tls) and the CA (Opaque ``ca.crt``) in cilium-secrets,
    from ``material`` {"clientChain", "clientKey", "caBundle"}; placeholders without it."""
    if material is None:
        return mtls.placeholder_secrets()
    return [mtls.tls_secret(mtls.CLIENT_SECRET, material["clientChain"], material["clientKey"]),
            mtls.ca_secret(mtls.CA_SECRET, material["caBundle"])]


def stages(ctx: Context) -> list[Stage]:
    ccec = mtls.mtls_envoy_config(ctx.settings, ctx.proxy_address)
    return [
        Stage(STAGES[0], "the backend before any injection: plain HTTP to its TLS port is refused (the seed's "
                      '"curl -k https://<backend>:8083 without a cert fails")', ()),
        Stage(STAGES[1], "the CiliumClusterwideEnvoyConfig and the CNP redirecting backend:8083 to its "
                                'listener ("plain curl http://<backend>:8083 returns the echo with the client CN")',
              (ccec, mtls.mtls_network_policy(ctx.settings, ccec, ctx.proxy_address))),
    ]


def probes(ctx: Context, stage: Stage) -> list[LabProbe]:
    """Plain HTTP from mtls-inject (through Envoy's mTLS once injected: the echo must carry the
    client CN), and TLS without a client certificate from mtls-direct (refused by the backend)."""
    backend = f"{ctx.proxy_address}:{mtls.BACKEND_PORT}"
    target = Probe(source=f"{mtls.MTLS_NAMESPACE}/{k8s.CURL_POD}", to=f"world:{ctx.proxy_address}",
                   port=mtls.BACKEND_PORT, via="fqdn", request="GET /")
    return [
        LabProbe(traffic=target, check="mtls-echo", name="inject-plain", url=f"http://{backend}/",
                 server_answer="refused", note="curl http://<backend>:8083 (plain HTTP)"),
        LabProbe(traffic=Probe(source=f"{DIRECT_NAMESPACE}/{k8s.CURL_POD}", to=target.to, port=target.port,
                               via="fqdn", request="GET /"),
                 name="direct-tls", url=f"https://{backend}/", curl_args=("-k",), server_answer="refused",
                 note="curl -k https://<backend>:8083 without a client certificate (exit 56)"),
    ]


def check(name: str, settings, body: str) -> list[str]:
    """``mtls-echo``: the echo shows Envoy's client certificate (CN, verified)."""
    return mtls.check_echo(settings, body) if name == "mtls-echo" else [f"unknown check {name!r}"]
