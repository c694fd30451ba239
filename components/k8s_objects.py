"""Declare one Kubernetes object built by ``model`` as the matching pulumi-kubernetes resource.

Objects whose content depends on an address known only at deploy time come as a ``live`` Output of
the whole object plus its ``static`` rendering (same builder, placeholder address): names and
metadata are taken from ``static`` (the graph must not depend on an address), the rest from ``live``.
"""
from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

# apiVersion/kind -> (resource class, the object's content fields besides metadata)
_TYPED = {
    ("v1", "Namespace"): (k8s.core.v1.Namespace, ()),
    ("v1", "ServiceAccount"): (k8s.core.v1.ServiceAccount, ()),
    ("v1", "ConfigMap"): (k8s.core.v1.ConfigMap, ("data",)),
    ("v1", "Secret"): (k8s.core.v1.Secret, ("type", "data")),
    ("v1", "Service"): (k8s.core.v1.Service, ("spec",)),
    ("v1", "Pod"): (k8s.core.v1.Pod, ("spec",)),
    ("apps/v1", "Deployment"): (k8s.apps.v1.Deployment, ("spec",)),
    ("apps/v1", "StatefulSet"): (k8s.apps.v1.StatefulSet, ("spec",)),
    ("apps/v1", "DaemonSet"): (k8s.apps.v1.DaemonSet, ("spec",)),
    ("networking.k8s.io/v1", "NetworkPolicy"): (k8s.networking.v1.NetworkPolicy, ("spec",)),
}


def resource_name(prefix: str, obj: dict) -> str:
    meta = obj["metadata"]
    ns = f"{meta['namespace']}-" if meta.get("namespace") else ""
    return f"{prefix}-{obj['kind'].lower()}-{ns}{meta['name']}"


def declare(prefix: str, static: dict, opts: pulumi.ResourceOptions,
            live: pulumi.Output[dict] | None = None) -> pulumi.CustomResource:
    field = (lambda key: live.apply(lambda o: o.get(key))) if live is not None else static.get  # noqa: E731
    name, api, kind = resource_name(prefix, static), static["apiVersion"], static["kind"]
    if api.startswith("cilium.io/"):
        return k8s.apiextensions.CustomResource(name, api_version=api, kind=kind, metadata=static["metadata"],
                                                spec=field("spec"), opts=opts)
    if (api, kind) not in _TYPED:
        raise ValueError(f"no mapping for {api} {kind} ({name})")
    cls, fields = _TYPED[(api, kind)]
    return cls(name, metadata=static["metadata"], **{f: field(f) for f in fields if f in static}, opts=opts)
