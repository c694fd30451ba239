"""What Cilium's agent resolves once it knows every object: CIDR groups and egress named ports.

- ``cidrGroupRef`` / ``cidrGroupSelector`` in a toCIDRSet / fromCIDRSet entry stand for the
  ``spec.externalCIDRs`` of CiliumCIDRGroup objects (docs.cilium.io "CIDR Groups": "CiliumCIDRGroup ...
  a list of CIDRs that can be referenced as a single entity from CiliumNetworkPolicies"). A group that
  is not in the input is named in a warning and contributes no address.
- An egress named port is resolved against the named ports of every pod the agent knows; when the
  name (and protocol) maps to different numbers on different pods, Cilium 1.18 skips that port
  ("Skipping named port ... duplicate named ports", cilium#12567), so the rule allows nothing on it.
  Ingress named ports resolve on the selected pod itself and are not affected.
"""
from __future__ import annotations

import ipaddress
from collections import defaultdict
from dataclasses import replace
from typing import Iterable, Mapping

from .rules import CIDRGroupPeer, Policy, PortRule, Rule


def cidr_group(obj: dict) -> tuple[dict[str, str], tuple]:
    """(labels, networks) of one CiliumCIDRGroup object."""
    labels = {str(k): str(v) for k, v in ((obj.get("metadata") or {}).get("labels") or {}).items()}
    cidrs = tuple(ipaddress.ip_network(c, strict=False) for c in (obj.get("spec") or {}).get("externalCIDRs") or [])
    return labels, cidrs


def resolve_cidr_groups(policies: Iterable[Policy], groups: Mapping[str, tuple[dict, tuple]]) -> list[str]:
    """Fill every CIDRGroupPeer's blocks; return warnings for groups that are not in the input."""
    warnings = []
    for policy in policies:
        for direction in (policy.egress, policy.ingress):
            for rule in direction.allows + direction.denies:
                for peer in rule.peers or ():
                    if not isinstance(peer, CIDRGroupPeer):
                        continue
                    if peer.ref is not None:
                        names = [peer.ref] if peer.ref in groups else []
                        if not names:
                            warnings.append(f"{policy.ref}: {rule.where}.{peer.where}: cidrGroupRef {peer.ref}: no "
                                            "CiliumCIDRGroup of that name in the input: it adds no address")
                    else:
                        names = [n for n, (labels, _) in sorted(groups.items()) if peer.selector.matches(labels)]
                    peer.blocks = tuple((net, peer.excepts) for n in names for net in groups[n][1])
    return warnings


def skip_conflicting_named_ports(policies: Iterable[Policy], workloads: Iterable) -> list[str]:
    """Mark egress port specs whose name maps to several numbers across the pods; return warnings."""
    numbers: dict[tuple[str, str], set[int]] = defaultdict(set)
    for w in workloads:
        for name, number, protocol in w.ports:
            if name:
                numbers[name, protocol].add(number)
    conflicts = {key: sorted(v) for key, v in numbers.items() if len(v) > 1}
    if not conflicts:
        return []
    warnings = []
    for policy in policies:
        for rules in (policy.egress.allows, policy.egress.denies):
            for rule in rules:
                if rule.ports:
                    rule.ports = tuple(_skip(policy, rule, pr, conflicts, warnings) for pr in rule.ports)
    return warnings


def _skip(policy: Policy, rule: Rule, pr: PortRule, conflicts, warnings: list[str]) -> PortRule:
    if not pr.specs:
        return pr
    specs = []
    for spec in pr.specs:
        hits = [(p, conflicts[spec.port, p]) for p in sorted(spec.protocols)
                if isinstance(spec.port, str) and (spec.port, p) in conflicts]
        if hits:
            why = ", ".join(f"{spec.port}/{p} is {' and '.join(map(str, n))} on different pods" for p, n in hits)
            warnings.append(f"{policy.ref}: {rule.where}.{pr.where}: named port {why}: Cilium skips it "
                            "(duplicate named ports, cilium#12567), the rule allows nothing on it")
            spec = replace(spec, skipped=f"duplicate named port {spec.port}")
        specs.append(spec)
    return replace(pr, specs=tuple(specs))
