"""A fleet of edge clusters on the aws platform (config ``edgeClusters`` = N, 1..20): pure helpers.

N kind hosts, each with its own lockable security group, Elastic IP, kubeconfig and Cilium, all locked to
one shared proxy host whose ingress admits exactly the N hosts (stacks/fleet.py declares them).

Every edge cluster is described by the stack's Settings with its own ``envName``: ``<envName>-eNN``
(``demo-e01`` ...), so every resource of edge NN is named as the one-cluster stack names its own
(``kind-demo-e01``, ``kind-eip-demo-e01``, ``probes-egress-demo-e01`` ...): no two clusters share a name,
and the builders of the one-cluster stack (security groups, user-data, Helm values, scenarios, probes)
are reused unchanged. With N = 1 the stack is the one-cluster stack, names included.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from . import security_groups as sg
from .settings import Settings


def edge_settings(settings: Settings) -> list[Settings]:
    """The Settings of each edge cluster (N = 1: the stack's own)."""
    if settings.edge_clusters == 1:
        return [settings]
    return [replace(settings, env_name=f"{settings.env_name}-e{i:02d}", edge_clusters=1)
            for i in range(1, settings.edge_clusters + 1)]


def cluster_name(edge: Settings) -> str:
    """An edge cluster's name in the outputs: its envName (``demo-e01``)."""
    return edge.env_name


def proxy_ingress(settings: Settings, kind_cidrs: Mapping[str, Any]) -> list[sg.Rule]:
    """The shared proxy's ingress: SSH from the operator once, and the proxy port from each kind host's
    /32 (``ingress-proxy-<cluster>``) - exactly the N hosts, nothing else."""
    rules = [r for r in sg.proxy_ingress(settings, None) if r.key == "ingress-ssh"]
    for name, cidr in kind_cidrs.items():
        for r in sg.proxy_ingress(settings, cidr):
            if r.key != "ingress-ssh":
                rules.append(replace(r, key=f"{r.key}-{name}", description=f"{r.description} {name}"))
    return rules


def summary(reports: Mapping[str, Mapping[str, Any]]) -> str:
    """One line for the whole fleet: clusters verified and probes as expected."""
    ok = [n for n, r in reports.items() if r.get("ok")]
    cells = [c for r in reports.values() for s in r.get("scenarios", {}).values() for c in s.get("cells", [])]
    good = sum(1 for c in cells if c.get("ok"))
    bad = sorted(set(reports) - set(ok))
    return (f"fleet: {len(ok)}/{len(reports)} clusters verified, {good}/{len(cells)} probes as expected"
            + (f"; failing: {', '.join(bad)}" if bad else ""))
