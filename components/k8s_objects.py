"""Declare one Kubernetes object built by ``model`` as the matching pulumi-kubernetes resource.

Objects whose content depends on an address known only at deploy time come as a ``live``
Output of the whole object plus its ``static`` rendering (same builder, placeholder address):
names and metadata are taken from ``static`` (the graph must not depend on an address), the
rest from ``live``.
"""
from __future__ import annotations


import pulumi
import pulumi_kubernetes as k8s


def resource_name(prefix: str, obj: dict) -> str:
    meta = obj["metadata"]
    ns = f"{meta['namespace']}-" if meta.get("namespace") else ""
    return f"{prefix}-{obj['kind'].lower()}-{ns}{meta['name']}"


def declare(prefix: str, static: dict, opts: pulumi.ResourceOptions,
            live: pulumi.Output[dict] | None = None) -> pulumi.CustomResource:
    field = (lambda key: live.apply(lambda o: o.get(key))) if live is not None else static.get  # noqa: E731
    name, kind = resource_name(prefix, static), static["kind"]
    if kind == "Namespace":
        return k8s.core.v1.Namespace(name, metadata=static["metadata"], opts=opts)
    if kind == "Pod":
        return k8s.core.v1.Pod(name, metadata=static["metadata"], spec=field("spec"), opts=opts)
    if kind == "Secret":
        return k8s.core.v1.Secret(name, metadata=static["metadata"], type=static.get("type"),
                                  data=field("data"), opts=opts)
    if static["apiVersion"].startswith("cilium.io/"):
        return k8s.apiextensions.CustomResource(
            name, api_version=static["apiVersion"], kind=kind, metadata=static["metadata"],
            spec=field("spec"), opts=opts)
    raise ValueError(f"no mapping for {static['apiVersion']} {kind}")


