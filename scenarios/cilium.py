"""Cilium objects the packs and the platform apply: the Envoy building blocks, the egress-via-proxy
CiliumEnvoyConfig + CiliumNetworkPolicy and the platform's proxy guard (the Helm values: model.helm).

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
import ipaddress
import json
from typing import Any

from cilium_verdicts.envoy import LISTENER_TYPE
from cilium_verdicts.fqdn import is_pattern

from .base import PackSettings

API_VERSION = "cilium.io/v2"
SECRETS_NAMESPACE = "cilium-secrets"
ALLOW_NAMESPACE = "test-allow"
DENY_NAMESPACE = "test-deny"
EGRESS_CEC_NAME = "proxy-envoy"
EGRESS_LISTENER = "proxy-listener"
EGRESS_CLUSTER = "proxy-cluster"
EGRESS_CNP_NAME = "proxy-policy"
PROXY_GUARD_NAME = "egress-proxy-guard"

CLUSTER_TYPE = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
TCP_PROXY_TYPE = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
TLS_INSPECTOR_TYPE = "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
# Ports the egress policy redirects into Envoy, hence the ports Envoy CONNECTs to (the proxy must
# allow CONNECT to each: model.proxy).
REDIRECTED_PORTS = (80, 443)
KUBE_DNS = {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system", "k8s:k8s-app": "kube-dns"}}


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


def tcp_proxy(cluster: str, stat_prefix: str, tunnel_hostname: str | None = None) -> dict:
    """A ``tcp_proxy`` network filter; with ``tunnel_hostname`` it tunnels over HTTP CONNECT."""
    config: dict[str, Any] = {"@type": TCP_PROXY_TYPE, "stat_prefix": stat_prefix, "cluster": cluster}
    if tunnel_hostname is not None:
        config["tunneling_config"] = {"hostname": tunnel_hostname}
    return {"name": "envoy.filters.network.tcp_proxy", "typed_config": config}


def tcp_proxy_listener(name: str, cluster: str, stat_prefix: str, tunnel: bool) -> dict:
    """A listener with one tcp_proxy filter; no ``address`` (Cilium allocates the port)."""
    return {"@type": LISTENER_TYPE, "name": name, "filter_chains": [{"filters": [
        tcp_proxy(cluster, stat_prefix, "%DOWNSTREAM_LOCAL_ADDRESS%" if tunnel else None)]}]}


def sni_tunnel_listener(name: str, cluster: str, stat_prefix: str, server_names: tuple[str, ...]) -> dict:
    """A listener that tunnels TLS by its SNI name and plain HTTP by the original address.

    ``tls_inspector`` reads the ClientHello; a TLS connection whose SNI is one of ``server_names``
    (Envoy accepts ``*.`` wildcards) is CONNECTed as ``<SNI>:<original port>``, so the proxy can
    enforce the allow-list by name; a TLS connection with any other SNI matches no chain and is
    closed. Plain HTTP carries no name Envoy can see at L4: it is CONNECTed to the original
    destination address (Cilium's transparent redirect keeps it as the downstream local address).
    Cilium keeps these listener filters and filter chains and only adds its own (the BPF metadata
    listener filter after ours, the cilium.network filter before each tcp_proxy):
    cilium/cilium pkg/ciliumenvoyconfig/cec_resource_parser.go, ParseResources.

    Wildcard depth differs: Envoy's ``*.roche.com`` in ``server_names`` matches any number of
    labels (``a.b.roche.com``), Cilium's matchPattern ``*`` exactly one (cilium_verdicts.fqdn). A client that
    sends SNI ``a.b.roche.com`` to an address Cilium redirects (one learned for an allowed name)
    passes Envoy's chain; squid's allow-list is the Cilium pattern (one label) and refuses it
    (TCP_DENIED). The data-plane lab shows both halves."""
    return {
        "@type": LISTENER_TYPE, "name": name,
        "listener_filters": [{"name": "envoy.filters.listener.tls_inspector",
                              "typed_config": {"@type": TLS_INSPECTOR_TYPE}}],
        "filter_chains": [
            {"filter_chain_match": {"transport_protocol": "tls", "server_names": list(server_names)},
             "filters": [tcp_proxy(cluster, stat_prefix, "%REQUESTED_SERVER_NAME%:%DOWNSTREAM_LOCAL_PORT%")]},
            {"filter_chain_match": {"transport_protocol": "raw_buffer"},
             "filters": [tcp_proxy(cluster, stat_prefix, "%DOWNSTREAM_LOCAL_ADDRESS%")]},
        ],
    }


def egress_envoy_config(settings: PackSettings, proxy_address: str) -> dict:
    """CiliumEnvoyConfig ``proxy-envoy``: tcp_proxy tunnelling (HTTP CONNECT) to the proxy."""
    return {
        "apiVersion": API_VERSION,
        "kind": "CiliumEnvoyConfig",
        "metadata": {"name": EGRESS_CEC_NAME, "namespace": ALLOW_NAMESPACE},
        "spec": {"resources": [
            sni_tunnel_listener(EGRESS_LISTENER, EGRESS_CLUSTER, "proxy-tunnel", settings.allowed_domains),
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


# The cluster's own zones: services "<svc>.<ns>.svc.cluster.local" and their pods
# ("<pod>.<svc>.<ns>.svc.cluster.local"); '*' spans one label in Cilium 1.18 (cilium_verdicts.fqdn), the
# docs' example for services is exactly '*.*.svc.cluster.local' (docs.cilium.io, DNS-based policy).
CLUSTER_DNS_PATTERNS = ("*.*.svc.cluster.local", "*.*.*.svc.cluster.local")


def dns_rule(names: tuple[str, ...] = ()) -> dict:
    """Egress to kube-dns with a DNS L7 rule, so Cilium's DNS proxy learns toFQDNs IPs and answers
    only for ``names`` (allowed domains) and the cluster's own zones - not any name (a DNS rule of
    '*' is a way to exfiltrate data in queries). Other names get NXDOMAIN (helm_values)."""
    allowed = [{"matchPattern": n} if is_pattern(n) else {"matchName": n} for n in names]
    allowed += [{"matchPattern": p} for p in CLUSTER_DNS_PATTERNS]
    return {"toEndpoints": [KUBE_DNS],
            "toPorts": [{"ports": [{"port": "53", "protocol": "ANY"}], "rules": {"dns": allowed}}]}


def in_cluster_rule() -> dict:
    """The cluster's workloads, except kube-system. Not ``toEntities: cluster`` (the seed's): that
    includes kube-dns, and an L3 allow of the DNS server on all ports makes Cilium wildcard the DNS
    rule's L7 part for that peer (any name would resolve again; cilium/cilium#8106, docs "Layer 7
    Examples"). The namespace key makes the selector span namespaces (docs "Kubernetes constructs")."""
    return {"toEndpoints": [{"matchExpressions": [
        {"key": "k8s:io.kubernetes.pod.namespace", "operator": "NotIn", "values": ["kube-system"]}]}]}


def egress_network_policy(settings: PackSettings, envoy_config: dict) -> dict:
    """CiliumNetworkPolicy ``proxy-policy``: allowed domains on 80/443 redirected to the listener;
    in-cluster workloads; DNS for the allowed domains and the cluster's zones only. Anything else
    from test-allow is dropped (default deny once selected)."""
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
                in_cluster_rule(),
                dns_rule(settings.allowed_domains),
            ],
        },
    }


def proxy_guard_policy(settings: PackSettings, proxy_address: str) -> dict:
    """CiliumClusterwideNetworkPolicy ``egress-proxy-guard``: no pod opens a connection to the egress
    proxy's port itself. Squid sees every client behind the kind host as one address (the node's),
    so it cannot tell Envoy's tunnel from a pod's own ``curl -x``; without this, any pod without
    policy could use the proxy for what the proxy passes (the bootstrap domains, port 80 by
    address). Envoy's upstream connection leaves from the node (cilium-envoy runs in the host's
    network namespace), which no endpoint policy selects, so the tunnel is untouched - as it is by
    test-allow's own policy, which allows no connection to the proxy either.

    ``enableDefaultDeny`` false both ways: the guard selects every endpoint but must not put any of
    them into default deny (docs.cilium.io "Policy Enforcement Modes", cilium 1.16+); a deny rule
    wins over every allow ("Deny Policies"). Only the proxy port: the mTLS backend on the same host
    is a destination pods do reach (through their listener, or refused by the server itself)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "CiliumClusterwideNetworkPolicy",
        "metadata": {"name": PROXY_GUARD_NAME},
        "spec": {
            "description": "No pod connects to the egress proxy itself; only Envoy's tunnel (from the node) does.",
            "endpointSelector": {},
            "enableDefaultDeny": {"egress": False, "ingress": False},
            "egressDeny": [{"toCIDR": [f"{ipaddress.IPv4Address(proxy_address)}/32"],
                            "toPorts": [{"ports": [{"port": str(settings.proxy_port), "protocol": "TCP"}]}]}],
        },
    }


def content_hash(*objects: Any) -> str:
    """Stable digest of manifests, used as a probe trigger (re-run when a CR changes)."""
    return hashlib.sha256(json.dumps(objects, sort_keys=True).encode()).hexdigest()[:16]
