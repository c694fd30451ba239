"""mTLS injection (seed 002): pods speak plain HTTP to a backend that demands a client certificate;
Cilium's Envoy originates the mTLS with a certificate the pods never see (model/py builds the
PKI specification, the secrets, the CiliumClusterwideEnvoyConfig, the policy and the backend).

Workloads: ``mtls-inject`` (the seed's namespace: its traffic to the backend is redirected into
Envoy) and ``mtls-direct`` (selected by no policy: it reaches the backend itself, which must refuse a
client without a certificate), a curl pod each; the two Secrets in cilium-secrets. Stages: ``open``
(no Cilium objects: plain HTTP to the backend's TLS port is refused) and ``mtls-injection``.
"""
from __future__ import annotations

import base64
import ipaddress
import json

from cilium_verdicts import Probe

from . import k8s
from .base import Context, LabProbe, PackSettings, Stage
from .cilium import (
    API_VERSION,
    SECRETS_NAMESPACE,
    dns_rule,
    listener_ref,
    static_cluster,
    tcp_proxy_listener,
)
from .k8s import LAB_LABEL, curl_pod, namespace

NAME = "mtls"
SEED = "002"
TITLE = "mTLS injection: plain HTTP from a pod, mutual TLS from Cilium's Envoy to the backend"
NEEDS: frozenset[str] = frozenset({"proxy", "mtls-backend"})
DIRECT_NAMESPACE = "mtls-direct"
STAGES = ("open", "mtls-injection")
MTLS_NAMESPACE = "mtls-inject"
BACKEND_PORT = 8083
CCEC_NAME = "mtls-injection-envoy"
LISTENER = "mtls-injection-listener"
CLUSTER = "internal-tls-cluster"
CNP_NAME = "mtls-injection-policy"
CLIENT_SECRET = "tls-client-cert"   # kubernetes.io/tls in cilium-secrets: Envoy's client certificate
CA_SECRET = "mtls-ca"               # Opaque in cilium-secrets, only ca.crt: trust anchors for the backend
STAT_PREFIX = "mtls-injection"
CONNECT_TIMEOUT = "5s"
PLACEHOLDER = "<set by pulumi up>"

UPSTREAM_TLS_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
TLS_SOCKET = "envoy.transport_sockets.tls"
CA_KEY = "ca.crt"  # the key Cilium's secret sync maps to trusted_ca



def sds_name(secret: str) -> str:
    """The SDS name under which Cilium serves ``secret`` of its secrets namespace to Envoy."""
    return f"{SECRETS_NAMESPACE}/{secret}"


def ipv4(address: str) -> str:
    return str(ipaddress.IPv4Address(address))  # ValueError for anything but a plain IPv4 address


# ----------------------------------------------------------------------------- Kubernetes objects
def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def tls_secret(name: str, cert_pem: str, key_pem: str) -> dict:
    """A ``kubernetes.io/tls`` secret in cilium-secrets. ``cert_pem`` is the chain Envoy presents
    (leaf first, then the intermediate)."""
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": SECRETS_NAMESPACE, "labels": dict(LAB_LABEL)},
            "data": {"tls.crt": _b64(cert_pem), "tls.key": _b64(key_pem)}}


def ca_secret(name: str, ca_pem: str) -> dict:
    """An Opaque secret in cilium-secrets holding only ``ca.crt`` (Cilium serves it as a validation
    context; a ``tls.crt`` key would turn it into a certificate instead)."""
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": SECRETS_NAMESPACE, "labels": dict(LAB_LABEL)},
            "data": {CA_KEY: _b64(ca_pem)}}


def placeholder_secrets() -> list[dict]:
    """The two secrets with placeholder contents, for the render CLI (real ones come from pulumi up)."""
    return [tls_secret(CLIENT_SECRET, PLACEHOLDER, PLACEHOLDER), ca_secret(CA_SECRET, PLACEHOLDER)]


def inject_workloads() -> list[dict]:
    """Namespace mtls-inject, then its curl pod."""
    return [namespace(MTLS_NAMESPACE), curl_pod(MTLS_NAMESPACE)]


def upstream_tls_context(settings: PackSettings) -> dict:
    """Envoy's side of the mTLS: client certificate and CA by SDS from cilium-secrets, SNI = the
    server name, and the server certificate must carry that name as a DNS SAN."""
    return {
        "name": TLS_SOCKET,
        "typed_config": {
            "@type": UPSTREAM_TLS_TYPE,
            "sni": settings.mtls_server_name,
            "common_tls_context": {
                "alpn_protocols": ["http/1.1"],
                "tls_certificate_sds_secret_configs": [{"name": sds_name(CLIENT_SECRET)}],
                "combined_validation_context": {
                    "default_validation_context": {"match_typed_subject_alt_names": [
                        {"san_type": "DNS", "matcher": {"exact": settings.mtls_server_name}}]},
                    "validation_context_sds_secret_config": {"name": sds_name(CA_SECRET)},
                },
            },
        },
    }


def mtls_envoy_config(settings: PackSettings, backend_address: str) -> dict:
    """CiliumClusterwideEnvoyConfig: tcp_proxy listener -> STATIC cluster backend:8083 over mTLS."""
    return {
        "apiVersion": API_VERSION,
        "kind": "CiliumClusterwideEnvoyConfig",
        "metadata": {"name": CCEC_NAME},
        "spec": {"resources": [
            tcp_proxy_listener(LISTENER, CLUSTER, STAT_PREFIX, tunnel=False),
            static_cluster(CLUSTER, ipv4(backend_address), BACKEND_PORT, CONNECT_TIMEOUT,
                           transport_socket=upstream_tls_context(settings)),
        ]},
    }


def mtls_network_policy(settings: PackSettings, envoy_config: dict, backend_address: str) -> dict:  # noqa: ARG001
    """CiliumNetworkPolicy in mtls-inject: DNS, same namespace, backend/32:8083 redirected to the
    CCEC's listener. Three separate rules (a listener port rule may not carry L7 rules)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": CNP_NAME, "namespace": MTLS_NAMESPACE},
        "spec": {
            "endpointSelector": {},
            "egress": [
                dns_rule(),
                {"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": MTLS_NAMESPACE}}]},
                {"toCIDR": [f"{ipv4(backend_address)}/32"],
                 "toPorts": [{"ports": [{"port": str(BACKEND_PORT), "protocol": "TCP"}],
                              "listener": listener_ref(envoy_config)}]},
            ],
        },
    }




def workloads(ctx: Context) -> list[dict]:
    return [*inject_workloads(), k8s.namespace(DIRECT_NAMESPACE), k8s.curl_pod(DIRECT_NAMESPACE)]


def secret_objects(ctx: Context, material: dict[str, str] | None = None) -> list[dict]:
    """The client certificate (kubernetes.io/tls) and the CA (Opaque ``ca.crt``) in cilium-secrets,
    from ``material`` {"clientChain", "clientKey", "caBundle"}; placeholders without it."""
    if material is None:
        return placeholder_secrets()
    return [tls_secret(CLIENT_SECRET, material["clientChain"], material["clientKey"]),
            ca_secret(CA_SECRET, material["caBundle"])]


def stages(ctx: Context) -> list[Stage]:
    ccec = mtls_envoy_config(ctx.settings, ctx.proxy_address)
    return [
        Stage(STAGES[0], "the backend before any injection: plain HTTP to its TLS port is refused (the seed's "
                      '"curl -k https://<backend>:8083 without a cert fails")', ()),
        Stage(STAGES[1], "the CiliumClusterwideEnvoyConfig and the CNP redirecting backend:8083 to its "
                                'listener ("plain curl http://<backend>:8083 returns the echo with the client CN")',
              (ccec, mtls_network_policy(ctx.settings, ccec, ctx.proxy_address))),
    ]


def probes(ctx: Context, stage: Stage) -> list[LabProbe]:
    """Plain HTTP from mtls-inject (through Envoy's mTLS once injected: the echo must carry the
    client CN), and TLS without a client certificate from mtls-direct (refused by the backend)."""
    backend = f"{ctx.proxy_address}:{BACKEND_PORT}"
    target = Probe(source=f"{MTLS_NAMESPACE}/{k8s.CURL_POD}", to=f"world:{ctx.proxy_address}",
                   port=BACKEND_PORT, via="fqdn", request="GET /")
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
    return check_echo(settings, body) if name == "mtls-echo" else [f"unknown check {name!r}"]


# ----------------------------------------------------------------------------------------- checks
def echo_headers(body: str) -> dict[str, str]:
    """Headers of an echo response, names lower-cased (haproxy lower-cases them anyway)."""
    return {k.lower(): v for k, v in json.loads(body)["headers"].items()}


def check_echo(settings: PackSettings, body: str) -> list[str]:
    """Problems with the plain probe's response body (empty list = it went through Envoy's mTLS
    with our client certificate)."""
    try:
        headers = echo_headers(body)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return [f"not the echo server's JSON ({exc.__class__.__name__}): {body[:200]!r}"]
    problems = []
    cn = headers.get("x-ssl-client-cn")
    if cn != settings.mtls_client_cn:
        problems.append(f"X-SSL-Client-CN is {cn!r}, expected {settings.mtls_client_cn!r}")
    if headers.get("x-ssl-client-verify") != "0":
        problems.append(f"X-SSL-Client-Verify is {headers.get('x-ssl-client-verify')!r}, expected '0'")
    return problems
