"""Builders for the documentation-based evaluator tests (tests/unit/verdicts/test_docs_*.py).

Every expected verdict in those tests comes from the Kubernetes / Cilium documentation or a seed
text (/work/shared/seeds), cited next to the test - never from running the evaluator. These
helpers only build Kubernetes objects (plain dicts, the shape ``kubectl apply`` takes) and call the
spec's API (specs/evaluator.md): ``Cluster.from_objects``, ``Probe``, ``evaluate``, ``all_pairs``.
"""
from __future__ import annotations

import copy
import textwrap
from typing import Any, Iterable

import yaml

import cilium_verdicts as policy

# Side results (specs/evaluator.md "Side results").
ALLOWED = "allow"
DEFAULT_DENY = "drop:default-deny"
POLICY_DENY = "drop:policy-deny"
NA = "n/a"


def api():
    return policy


# --------------------------------------------------------------------------- object builders
def namespace(name: str, **labels: str) -> dict:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = dict(labels)
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def _container_ports(ports: Iterable) -> list[dict]:
    """``80`` | ``(name, 8080)`` | ``(name, 53, "UDP")`` -> containerPort entries."""
    out = []
    for p in ports:
        if isinstance(p, int):
            out.append({"containerPort": p, "protocol": "TCP"})
        else:
            name, number, *proto = p
            entry = {"containerPort": number, "protocol": proto[0] if proto else "TCP"}
            if name:
                entry["name"] = name
            out.append(entry)
    return out


def _pod_spec(ports: Iterable) -> dict:
    container: dict[str, Any] = {"name": "main", "image": "registry.example/app:1"}
    ports = list(ports)
    if ports:
        container["ports"] = _container_ports(ports)
    return {"containers": [container]}


def deployment(name: str, ns: str = "default", labels: dict | None = None, ports: Iterable = (),
               kind: str = "Deployment") -> dict:
    """A Deployment (or StatefulSet / DaemonSet with ``kind=``) whose pod template carries
    ``labels`` (default ``{"app": name}``) and declares ``ports``."""
    labels = dict(labels) if labels is not None else {"app": name}
    spec: dict[str, Any] = {"selector": {"matchLabels": labels},
                            "template": {"metadata": {"labels": labels}, "spec": _pod_spec(ports)}}
    if kind == "StatefulSet":
        spec["serviceName"] = name
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": ns},
            "spec": spec}


def pod(name: str, ns: str = "default", labels: dict | None = None, ports: Iterable = ()) -> dict:
    labels = dict(labels) if labels is not None else {"app": name}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels}, "spec": _pod_spec(ports)}


def service(name: str, ns: str = "default", selector: dict | None = None, ports: Iterable = (),
            cluster_ip: str | None = None) -> dict:
    """``ports``: dicts as in a Service spec (``{"port": 8000, "targetPort": 80}``) or ints."""
    spec: dict[str, Any] = {"selector": dict(selector) if selector is not None else {"app": name},
                            "ports": [p if isinstance(p, dict) else {"port": p} for p in ports]}
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": spec}


def netpol(name: str, ns: str = "default", **spec: Any) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def cnp(name: str, ns: str = "default", **spec: Any) -> dict:
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def ccnp(name: str, **spec: Any) -> dict:
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy",
            "metadata": {"name": name}, "spec": spec}


def docs_yaml(text: str, namespace: str | None = None) -> list[dict]:
    """Objects from a manifest copied verbatim from the docs (multi-document). ``namespace`` is
    what ``kubectl apply -n NS`` adds to namespaced objects that name none."""
    objects = [d for d in yaml.safe_load_all(textwrap.dedent(text)) if d]
    if namespace:
        for obj in objects:
            if not obj["kind"].startswith("CiliumClusterwide") and obj["kind"] != "Namespace":
                obj.setdefault("metadata", {}).setdefault("namespace", namespace)
    return objects


def flatten(*parts: Any) -> list[dict]:
    out: list[dict] = []
    for part in parts:
        if isinstance(part, dict):
            out.append(part)
        else:
            out.extend(flatten(*part))
    return out


def cluster(*parts: Any):
    """``Cluster.from_objects`` over dicts and lists of dicts."""
    return api().Cluster.from_objects(copy.deepcopy(flatten(*parts)))


# --------------------------------------------------------------------------- probes
def probe(c, source: str, to: str, port: int, **kw: Any):
    """evaluate(cluster, Probe(...)) - keyword arguments as in the spec's Probe. A ``world:HOST``
    destination is dialled ``via="fqdn"`` (the spec's only via for world): with a name, the DNS
    lookup comes first; with an IPv4 literal there is no lookup."""
    if to.startswith("world:"):
        kw.setdefault("via", "fqdn")
    p = api()
    return p.evaluate(c, p.Probe(source=source, to=to, port=port, **kw))


def check(v, verdict: str, egress: str | None = None, ingress: str | None = None) -> None:
    """Assert a Verdict; the failure message carries the explanation chain."""
    got = (v.verdict, v.egress, v.ingress)
    want = (verdict, egress if egress is not None else v.egress,
            ingress if ingress is not None else v.ingress)
    assert got == want, f"got {got}, want {want}\nwhy:\n  " + "\n  ".join(v.why)


def allowed(v) -> bool:
    return v.verdict == "allow"
