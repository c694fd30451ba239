"""Probes, verdicts and the evaluation of one probe (see specs/evaluator.md, DESIGN.md §8).

Vocabulary is cilium-cli's connectivity test (cilium/cilium-cli ``connectivity/check/result.go``):
``allow``, ``drop`` (curl timeout), ``l7-deny`` (Envoy's HTTP 403) and ``dns-fail``. Egress is judged
first: an egress drop hides the ingress side.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from . import fqdn
from .cluster import Cluster, PolicyInputError, Workload, target_port
from .rules import PortRule, Target, World

VERDICTS = (ALLOW, DROP, L7_DENY, DNS_FAIL) = ("allow", "drop", "l7-deny", "dns-fail")
POLICY_DENY, DEFAULT_DENY, NOT_EVALUATED = "drop:policy-deny", "drop:default-deny", "n/a"
VIAS = ("pod-ip", "service-name", "service-ip", "fqdn")
PROTOCOLS = ("TCP", "UDP", "SCTP")
WORLD_DEFAULT_IP = "203.0.113.100"  # TEST-NET-3 (RFC 5737): outside every cluster range


@dataclass(frozen=True)
class Probe:
    """One connection attempt: ``source`` workload dials ``to`` on ``port`` (the service port for
    service-* probes); ``request`` ("GET /headers") makes it an HTTP request."""
    source: str
    to: str
    port: int
    via: str = "pod-ip"
    protocol: str = "TCP"
    request: str | None = None
    service: str | None = None
    address: str | None = None

    @property
    def id(self) -> str:
        text = f"{self.source}->{self.to}:{self.port}/{self.protocol} via {self.via}"
        return f"{text} {self.request}" if self.request else text


@dataclass(frozen=True)
class Verdict:
    """The outcome of one probe, its two sides and the explanation chain in evaluation order."""
    verdict: str
    egress: str
    ingress: str
    why: tuple[str, ...]
    listener: str | None = None

    def as_dict(self) -> dict:
        return {"verdict": self.verdict, "egress": self.egress, "ingress": self.ingress,
                "why": list(self.why), "listener": self.listener}


@dataclass
class _Side:
    """One direction's L3/L4 outcome: ``result`` (ALLOW, POLICY_DENY or DEFAULT_DENY), the port rules
    of the matching allow rules (None: the rule allows every port, without L7) and the explanation."""
    result: str
    port_rules: list[PortRule | None]
    why: list[str]


def evaluate(cluster: Cluster, probe: Probe) -> Verdict:
    """The verdict of one probe: DNS first (service-name, fqdn), then egress of the source, then
    ingress of the destination; egress wins (an egress drop or 403 hides the ingress side)."""
    src = cluster.workload(probe.source)
    dest, port, name = _resolve(cluster, probe)
    why: list[str] = []
    learned = False
    if name is not None:
        learned = _dns(cluster, src, name, why)
        if learned is None:
            return Verdict(DNS_FAIL, DNS_FAIL, NOT_EVALUATED, tuple(why))
    if isinstance(dest, World):
        dest = World(dest.address, name, learned)
    egress = _side(cluster, "egress", src, dest, port, probe.protocol, None if isinstance(dest, World) else dest.ports)
    why += egress.why
    if egress.result != ALLOW:
        return Verdict(DROP, egress.result, NOT_EVALUATED, tuple(why))
    listener = _listener(cluster, egress, why)
    if listener is False:
        return Verdict(DROP, POLICY_DENY, NOT_EVALUATED, tuple(why))
    if _l7(egress, probe.request, "egress", why) == L7_DENY:
        return Verdict(L7_DENY, L7_DENY, NOT_EVALUATED, tuple(why), listener)
    if isinstance(dest, World):
        why.append(f"{dest.key} is outside the cluster: no ingress side")
        return Verdict(ALLOW, ALLOW, NOT_EVALUATED, tuple(why), listener)
    ingress = _side(cluster, "ingress", dest, src, port, probe.protocol, dest.ports)
    why += ingress.why
    if ingress.result != ALLOW:
        return Verdict(DROP, ALLOW, ingress.result, tuple(why), listener)
    if _l7(ingress, probe.request, "ingress", why) == L7_DENY:
        return Verdict(L7_DENY, ALLOW, L7_DENY, tuple(why), listener)
    return Verdict(ALLOW, ALLOW, ALLOW, tuple(why), listener)


def _resolve(cluster: Cluster, probe: Probe) -> tuple[Workload | World, int, str | None]:
    """(destination endpoint, the port policies see, the name looked up first or None). Policies
    match the endpoint and the Service's target port, never the service port (docs.cilium.io
    "Layer 4 Examples": L4 policy applies after service port mapping). A service name is looked up
    as ``<svc>.<ns>.svc.cluster.local`` (docs "DNS Policy and IP Discovery": DNS rules must allow
    that full name, e.g. ``*.*.svc.cluster.local``)."""
    if probe.via not in VIAS or probe.protocol not in PROTOCOLS:
        raise PolicyInputError(f"probe {probe.id}: via must be one of {VIAS}, protocol one of {PROTOCOLS}")
    if probe.to.startswith("world:"):
        host = probe.to[len("world:"):]
        if probe.via != "fqdn":
            raise PolicyInputError(f"probe {probe.id}: a world destination is dialled via fqdn")
        if _is_ip(host):
            return World(host), probe.port, None
        return World(probe.address or WORLD_DEFAULT_IP, host), probe.port, host
    dest = cluster.workload(probe.to)
    if probe.via == "pod-ip":
        return dest, probe.port, None
    if probe.via == "fqdn":
        raise PolicyInputError(f"probe {probe.id}: via fqdn needs a world:HOST destination")
    svc, sp = cluster.service_port(dest, probe.port, probe.protocol, probe.service)
    if probe.via == "service-ip" and svc.cluster_ip is None:
        raise PolicyInputError(f"probe {probe.id}: Service {svc.key} is headless (no cluster IP)")
    name = f"{svc.name}.{svc.namespace}.svc.cluster.local" if probe.via == "service-name" else None
    return dest, target_port(sp, dest), name


def _is_ip(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def _dns(cluster: Cluster, src: Workload, name: str, why: list[str]) -> bool | None:
    """The lookup: UDP 53 to the kube-dns backend, egress then ingress. If the allowing egress rules
    all carry ``rules.dns``, Cilium's DNS proxy answers only names matching one of their patterns
    (else REFUSED); an allowing rule without L7 lifts the restriction but the proxy still sees the
    lookup (docs.cilium.io "Layer 7 Examples": the L7 part is void when a similar L4 rule exists;
    pkg/policy/rule.go wildcardL3L4Rule). Returns None on failure, else whether the proxy saw the
    lookup (so toFQDNs learns the IPs; docs "DNS Proxy")."""
    server = cluster.dns_server()
    if server is None:
        why.append(f"DNS: no kube-system/kube-dns Service with a 53/UDP backend: {name} cannot be resolved")
        return None
    dns, port = server
    why.append(f"DNS: {src.key} looks up {name} at {dns.key}:{port}/UDP")
    egress = _side(cluster, "egress", src, dns, port, "UDP", dns.ports)
    why += [f"DNS: {line}" for line in egress.why]
    if egress.result != ALLOW:
        why.append("DNS: lookup dropped: dns-fail")
        return None
    proxied = [r for r in egress.port_rules if r is not None and r.dns is not None]
    if proxied and len(proxied) == len(egress.port_rules):
        patterns = [p for r in proxied for p in r.dns]
        if not fqdn.matches_any(patterns, name):
            why.append(f"DNS: proxy refuses {name}: no rules.dns pattern matches ({', '.join(patterns)}): dns-fail")
            return None
        why.append(f"DNS: proxy answers {name} (rules.dns {', '.join(patterns)}) and learns its IPs")
    ingress = _side(cluster, "ingress", dns, src, port, "UDP", dns.ports)
    why += [f"DNS: {line}" for line in ingress.why]
    if ingress.result != ALLOW:
        why.append("DNS: lookup dropped: dns-fail")
        return None
    return bool(proxied)


def _side(cluster: Cluster, direction: str, subject: Workload, peer: Target, port: int, protocol: str,
          dest_ports) -> _Side:
    """L3/L4 of one direction (docs.cilium.io "Policy Enforcement Modes", "Deny Policies"): not
    selected => allowed; a matching deny rule wins over every allow; else the union of all selecting
    policies' allow rules; nothing matches => dropped if any selecting policy isolates (default
    deny), allowed otherwise (enableDefaultDeny false)."""
    src, dst = (subject, peer) if direction == "egress" else (peer, subject)
    flow = f"{direction} {src.key} -> {dst.key}:{port}/{protocol}"
    policies = cluster.selecting(subject, direction)
    if not policies:
        return _Side(ALLOW, [], [f"no policy selects {subject.key} for {direction}: {direction} not isolated, allowed"])
    isolating = [p.ref for p in policies if p.direction(direction).isolates]
    others = [p.ref for p in policies if not p.direction(direction).isolates]
    why = [f"{direction} of {subject.key}: " + "; ".join(filter(None, [
        isolating and f"selected by {', '.join(isolating)} (default deny)",
        others and f"{', '.join(others)} {'selects' if len(others) == 1 else 'select'} it without default deny"]))]
    for policy in policies:
        for rule in policy.direction(direction).denies:
            hit = rule.match(peer, port, protocol, dest_ports)
            if hit:
                why.append(f"{flow}: denied by {policy.ref} {rule.label(*hit)} (deny rules win over allows)")
                return _Side(POLICY_DENY, [], why)
    port_rules, labels = [], []
    for policy in policies:
        for rule in policy.direction(direction).allows:
            hit = rule.match(peer, port, protocol, dest_ports)
            if hit:
                port_rules.append(hit[1])
                labels.append(f"{policy.ref} {rule.label(*hit)}")
    if labels:
        return _Side(ALLOW, port_rules, why + [f"{flow}: allowed by {', '.join(labels)}"])
    if not isolating:
        return _Side(ALLOW, [], why + [f"{flow}: no rule matches and no selecting policy isolates {direction}: allowed"])
    why.append(f"{flow}: no rule allows it: dropped (default deny)")
    why += [f"{policy.ref} {rule.where}.{note}" for policy in policies for rule in policy.direction(direction).allows
            for p in rule.peers or () for note in [p.near_miss(peer)] if note]
    return _Side(DEFAULT_DENY, [], why)


def _listener(cluster: Cluster, side: _Side, why: list[str]) -> str | None | bool:
    """The Envoy listener an allowing egress port rule redirects to: its name, None (no redirect),
    or False when the referenced config or listener does not exist (Cilium cannot redirect)."""
    ref = next((r.listener for r in side.port_rules if r is not None and r.listener), None)
    if ref is None:
        return None
    kind, ns, config, listener = ref
    name = f"{kind}/{ns}/{config}#{listener}"
    if listener not in cluster.listeners.get((kind, ns, config), ()):
        why.append(f"listener {name} does not exist: nothing to redirect to, dropped")
        return False
    why.append(f"redirected to Envoy listener {name}: allowed via that listener")
    return name


def _l7(side: _Side, request: str | None, direction: str, why: list[str]) -> str:
    """HTTP rules: enforced only when every allowing port rule carries ``rules.http`` (an L3/L4-only
    allow of the same peer wildcards L7: pkg/policy/rule.go wildcardL3L4Rule); method and path are
    anchored regexes, a miss is Envoy's 403 (l7-deny; docs.cilium.io "Layer 7 Examples")."""
    if not side.port_rules or any(r is None or r.http is None for r in side.port_rules):
        return ALLOW
    rules = [h for r in side.port_rules for h in r.http]
    allowed = ", ".join(h.text() for h in rules)
    if request is None:
        why.append(f"{direction}: rules.http ({allowed}) applies to HTTP requests; a bare connection is "
                   "allowed at L4")
        return ALLOW
    method, _, path = request.partition(" ")
    if any(h.matches(method, path or "/") for h in rules):
        why.append(f"{direction}: request {request} matches rules.http ({allowed})")
        return ALLOW
    why.append(f"{direction}: request {request} matches no rules.http entry ({allowed}): HTTP 403 from Envoy, l7-deny")
    return L7_DENY


def all_pairs(cluster: Cluster) -> list[tuple[Probe, Verdict]]:
    """Every ordered pair of distinct workloads (built-ins excluded unless user-declared), on every
    declared container port of the destination, by pod IP; ordered by source, destination, port."""
    users = [w for w in cluster.workloads.values() if not w.builtin]
    out = []
    for src in users:
        for dst in users:
            if dst is src:
                continue
            for port, protocol in sorted({(p, proto) for _, p, proto in dst.ports}):
                probe = Probe(src.key, dst.key, port, protocol=protocol)
                out.append((probe, evaluate(cluster, probe)))
    return out
