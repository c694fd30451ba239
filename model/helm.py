"""Cilium's Helm values: the lab's kind cluster, or what an existing Cilium cluster needs for the lab's
objects (render --values-for). The objects themselves: scenarios.cilium."""
from __future__ import annotations

from typing import Any

from scenarios.cilium import SECRETS_NAMESPACE

from . import network
from .settings import Settings, shown
from .userdata import KIND_CLUSTER_NAME

HELM_REPO = "https://helm.cilium.io/"
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
    # The DNS rules allow only some names (dns_rule). A refused lookup must look like NXDOMAIN, not
    # REFUSED (the chart's default): resolvers try the pod's search domains first (ndots:5) and
    # musl (the curl image) and glibc stop at a REFUSED answer instead of trying the next suffix,
    # so "www.roche.com" would fail at "www.roche.com.test-allow.svc.cluster.local".
    dns_proxy = {"dnsRejectResponseCode": "nameError"}
    if target == "existing":
        return {
            "envoyConfig": envoy_config,
            "dnsProxy": dns_proxy,
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
        "dnsProxy": dns_proxy,
        "hubble": {"enabled": True, "relay": {"enabled": True}},
        "image": {"pullPolicy": "IfNotPresent"},
    }
