"""Kubernetes NetworkPolicy (networking.k8s.io/v1) as Cilium implements it.

Sources: kubernetes.io/docs/concepts/services-networking/network-policies/ and the NetworkPolicy API
reference; Cilium's translation pkg/k8s/network_policy.go (ParseNetworkPolicy, parseNetworkPolicyPeer,
parsePorts); docs.cilium.io "Network Policy" (known gaps, cilium#9209).
"""
from __future__ import annotations

import ipaddress

from .rules import CIDRPeer, Direction, EndpointPeer, Policy, PortRule, PortSpec, Rule
from .selectors import parse_selector

PROTOCOLS = ("TCP", "UDP", "SCTP")


def parse_network_policy(obj: dict, ref: str, namespace: str) -> tuple[Policy, list[str]]:
    """The Policy of one NetworkPolicy, plus warnings. Raises ValueError on malformed input."""
    spec = obj.get("spec") or {}
    sections = {d: [_rule(d, i, raw, namespace) for i, raw in enumerate(spec.get(d) or [])]
                for d in ("ingress", "egress")}
    types = spec.get("policyTypes") or []
    if any(t not in ("Ingress", "Egress") for t in types):
        raise ValueError(f"policyTypes {types} may only hold Ingress and Egress")
    warnings = [f"{ref}: spec.{d} is set but policyTypes {types} lacks {d.title()}; Cilium enforces it "
                "anyway (cilium#48703)" for d in ("ingress", "egress") if types and sections[d] and d.title() not in types]
    # Missing policyTypes = Ingress, plus Egress when egress rules exist (API reference). Cilium adds the
    # rules of both sections whatever policyTypes says and isolates ingress unless the policy names
    # only Egress (pkg/k8s/network_policy.go ParseNetworkPolicy).
    ingress = Direction(bool(sections["ingress"]) or "Ingress" in types or "Egress" not in types, sections["ingress"])
    egress = Direction(bool(sections["egress"]) or "Egress" in types, sections["egress"])
    subject = EndpointPeer("", parse_selector(spec.get("podSelector")), scope=namespace)
    return Policy(ref, subject, egress, ingress), warnings


def _rule(direction: str, index: int, raw: dict, namespace: str) -> Rule:
    """Missing or empty from/to = every peer, in the cluster or not; missing or empty ports = every
    port (API reference: "If this field is empty or missing, this rule matches all ...")."""
    key = "from" if direction == "ingress" else "to"
    peers = raw.get(key) or []
    return Rule(f"{direction}[{index}]",
                tuple(_peer(f"{key}[{j}]", p, namespace) for j, p in enumerate(peers)) or None,
                tuple(_port(f"ports[{j}]", p) for j, p in enumerate(raw.get("ports") or [])) or None)


def _peer(where: str, raw: dict, namespace: str):
    """podSelector only = pods of the policy's namespace; namespaceSelector only = all pods of the
    matching namespaces; both = matching pods in matching namespaces; ``{}`` = all of that scope.
    ipBlock = addresses outside the cluster only (Cilium never matches pod IPs, cilium#9209)."""
    if "ipBlock" in raw:
        if "podSelector" in raw or "namespaceSelector" in raw:
            raise ValueError(f"{where}: ipBlock cannot be combined with a selector")
        block = raw["ipBlock"] or {}
        net = ipaddress.ip_network(block.get("cidr", ""), strict=False)
        return CIDRPeer(where, ((net, tuple(ipaddress.ip_network(e, strict=False) for e in block.get("except") or [])),))
    if "podSelector" not in raw and "namespaceSelector" not in raw:
        raise ValueError(f"{where}: a peer needs podSelector, namespaceSelector or ipBlock")
    pods = parse_selector(raw["podSelector"]) if "podSelector" in raw else None
    if "namespaceSelector" in raw:
        return EndpointPeer(where, pods, parse_selector(raw["namespaceSelector"]))
    return EndpointPeer(where, pods, scope=namespace)


def _port(where: str, raw: dict) -> PortRule:
    """protocol defaults to TCP; port numeric or named (resolved on the destination pod), missing =
    all ports of the protocol; endPort needs a numeric port (Cilium supports ranges since 1.16,
    cilium/cilium#32807)."""
    protocol = raw.get("protocol") or "TCP"
    if protocol not in PROTOCOLS:
        raise ValueError(f"{where}: protocol {protocol!r} is not one of {PROTOCOLS}")
    port, end = raw.get("port"), raw.get("endPort")
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if end is not None and (not isinstance(port, int) or not isinstance(end, int) or end < port):
        raise ValueError(f"{where}: endPort needs a numeric port not above it")
    return PortRule(where, (PortSpec(port, end, frozenset({protocol})),))
