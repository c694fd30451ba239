"""Cilium: Helm values and the egress-via-proxy CiliumEnvoyConfig + CiliumNetworkPolicy.

Pitfalls this encodes (DESIGN.md §5a; cilium/cilium pkg/policy/api/rule_validation.go at v1.18.10):
- CECs need ``envoyConfig.enabled`` and kube-proxy replacement (or ``nodePort.enabled``) set
  explicitly; Envoy reads SDS secrets only from ``envoyConfig.secretsNamespace`` (cilium-secrets).
- A ``listener`` port rule may not carry L7 ``rules`` (the schema accepts it, the agent rejects it),
  and toFQDNs may not share a rule with toEndpoints/toCIDR: so the FQDN/listener rule, the
  cluster rule and the kube-dns rule are three separate egress rules.
- toFQDNs learns IPs only from DNS answers the proxy sees: the kube-dns rule carries ``rules.dns``.
- The listener has no ``address``: Cilium allocates the proxy port and adds its own filters.
- ``tunneling_config.hostname: %DOWNSTREAM_LOCAL_ADDRESS%`` makes Envoy CONNECT to the original
  destination (Cilium's transparent redirect keeps it as the downstream local address). HTTP L7
  policy breaks CONNECT through a forward proxy in 1.18; tcp_proxy + tunneling is the working path.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from . import network
from .fqdn import is_pattern
from .proxy import REDIRECTED_PORTS
from .settings import Settings, shown
from .userdata import KIND_CLUSTER_NAME

API_VERSION = "cilium.io/v2"
SECRETS_NAMESPACE = "cilium-secrets"
ALLOW_NAMESPACE = "test-allow"
DENY_NAMESPACE = "test-deny"
EGRESS_CEC_NAME = "proxy-envoy"
EGRESS_LISTENER = "proxy-listener"
EGRESS_CLUSTER = "proxy-cluster"
EGRESS_CNP_NAME = "proxy-policy"
HELM_REPO = "https://helm.cilium.io/"

LISTENER_TYPE = "type.googleapis.com/envoy.config.listener.v3.Listener"
CLUSTER_TYPE = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
TCP_PROXY_TYPE = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
KUBE_DNS = {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system", "k8s:k8s-app": "kube-dns"}}


HELM_TARGETS = ("kind", "existing")  # who the Helm values are for (render --values-for)


def helm_values(settings: Settings, target: str = "kind") -> dict[str, Any]:  # noqa: ARG001
    """Values for the cilium/cilium chart.

    ``kind`` (the stack's release): a one-node kind cluster with no kube-proxy. ``existing``: only
    what this lab's objects need from an existing Cilium >= 1.16 cluster, to merge into its release
    (``helm upgrade --reuse-values -f``) - nothing about how that cluster reaches its API server,
    allocates pod addresses or runs its operator. The part both need is written once, below.
    """
    if target not in HELM_TARGETS:
        raise ValueError(f"Helm values target {shown(target)} is not accepted; accepted: {', '.join(HELM_TARGETS)}")
    # CECs need envoyConfig; Envoy reads SDS secrets only from its secrets namespace (DESIGN 5a).
    envoy_config = {"enabled": True, "secretsNamespace": {"create": True, "name": SECRETS_NAMESPACE}}
    if target == "existing":
        return {
            "envoyConfig": envoy_config,
            # CEC redirects need kube-proxy replacement or nodePort (DESIGN 5a). nodePort works with
            # or without kube-proxy and is implied where the cluster already runs KPR; turning KPR on
            # would also need the cluster's own k8sServiceHost.
            "nodePort": {"enabled": True},
            # the chart's default, stated: listener redirects and the DNS rule behind toFQDNs need it
            "l7Proxy": True,
        }
    return {
        "kubeProxyReplacement": True,
        # no kube-proxy, so the agent must reach the API server directly (kind's node name)
        "k8sServiceHost": f"{KIND_CLUSTER_NAME}-control-plane",
        "k8sServicePort": network.KUBE_API_PORT,
        "ipam": {"mode": "kubernetes"},
        "operator": {"replicas": 1},
        "envoyConfig": envoy_config,
        "hubble": {"enabled": True, "relay": {"enabled": True}},
        "image": {"pullPolicy": "IfNotPresent"},
    }


def static_cluster(name: str, address: str, port: int, connect_timeout: str, **extra) -> dict:
    return {
        "@type": CLUSTER_TYPE,
        "name": name,
        "type": "STATIC",
        "connect_timeout": connect_timeout,
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": address, "port_value": port}}}}]}]},
        **extra,
    }


def tcp_proxy_listener(name: str, cluster: str, stat_prefix: str, tunnel: bool) -> dict:
    """A listener with one tcp_proxy filter; no ``address`` (Cilium allocates the port)."""
    tcp_proxy: dict[str, Any] = {"@type": TCP_PROXY_TYPE, "stat_prefix": stat_prefix, "cluster": cluster}
    if tunnel:
        tcp_proxy["tunneling_config"] = {"hostname": "%DOWNSTREAM_LOCAL_ADDRESS%"}
    return {"@type": LISTENER_TYPE, "name": name, "filter_chains": [
        {"filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": tcp_proxy}]}]}


def egress_envoy_config(settings: Settings, proxy_address: str) -> dict:
    """CiliumEnvoyConfig ``proxy-envoy``: tcp_proxy tunnelling (HTTP CONNECT) to the proxy."""
    return {
        "apiVersion": API_VERSION,
        "kind": "CiliumEnvoyConfig",
        "metadata": {"name": EGRESS_CEC_NAME, "namespace": ALLOW_NAMESPACE},
        "spec": {"resources": [
            tcp_proxy_listener(EGRESS_LISTENER, EGRESS_CLUSTER, "proxy-tunnel", tunnel=True),
            static_cluster(EGRESS_CLUSTER, proxy_address, settings.proxy_port, "55s"),
        ]},
    }


def listener_ref(envoy_config: dict) -> dict:
    """The CNP ``listener`` reference to the (single) listener of ``envoy_config`` - derived from
    the object, never typed twice. The kind is always explicit: it defaults to a namespaced CEC,
    and a cluster-wide config is only found when named as such."""
    listeners = [r["name"] for r in envoy_config["spec"]["resources"] if r["@type"] == LISTENER_TYPE]
    if len(listeners) != 1:
        raise ValueError(f"{envoy_config['metadata']['name']}: expected one listener, got {listeners}")
    return {"envoyConfig": {"kind": envoy_config["kind"], "name": envoy_config["metadata"]["name"]},
            "name": listeners[0]}


def fqdn_selectors(domains: tuple[str, ...]) -> list[dict]:
    """One toFQDNs entry per allowed domain: matchPattern for wildcards, matchName otherwise."""
    return [{"matchPattern": d} if is_pattern(d) else {"matchName": d} for d in domains]


def dns_rule() -> dict:
    """Egress to kube-dns with a DNS L7 rule, so Cilium's DNS proxy learns toFQDNs IPs."""
    return {"toEndpoints": [KUBE_DNS],
            "toPorts": [{"ports": [{"port": "53", "protocol": "ANY"}],
                         "rules": {"dns": [{"matchPattern": "*"}]}}]}


def egress_network_policy(settings: Settings, envoy_config: dict) -> dict:
    """CiliumNetworkPolicy ``proxy-policy``: allowed domains on 80/443 redirected to the listener;
    in-cluster traffic; DNS. Anything else from test-allow is dropped (default deny once selected)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "CiliumNetworkPolicy",
        "metadata": {"name": EGRESS_CNP_NAME, "namespace": envoy_config["metadata"]["namespace"]},
        "spec": {
            "endpointSelector": {},
            "egress": [
                {"toFQDNs": fqdn_selectors(settings.allowed_domains),
                 "toPorts": [{"ports": [{"port": str(p), "protocol": "TCP"} for p in REDIRECTED_PORTS],
                              "listener": listener_ref(envoy_config)}]},
                {"toEntities": ["cluster"]},
                dns_rule(),
            ],
        },
    }


def content_hash(*objects: Any) -> str:
    """Stable digest of manifests, used as a probe trigger (re-run when a CR changes)."""
    return hashlib.sha256(json.dumps(objects, sort_keys=True).encode()).hexdigest()[:16]
