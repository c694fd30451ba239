"""Probes, verdicts and the evaluation of one probe (see specs/evaluator.md, DESIGN.md §8).

Vocabulary is cilium-cli's connectivity test (cilium/cilium-cli ``connectivity/check/result.go``):
``allow``, ``drop`` (curl timeout), ``l7-deny`` (Envoy's HTTP 403) and ``dns-fail``. Egress is judged
first: an egress drop hides the ingress side.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from typing import Callable, Mapping

from . import fqdn, l7
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
    service-* probes); ``request`` ("GET /headers") makes it an HTTP request, sent with ``headers``
    (a mapping or (name, value) pairs; kept as sorted pairs; a ``Host`` header replaces the default,
    which is the name or address dialled, with ``:port`` unless the port is 80, as curl sends it)."""
    source: str
    to: str
    port: int
    via: str = "pod-ip"
    protocol: str = "TCP"
    request: str | None = None
    service: str | None = None
    address: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self):
        if not self.headers:
            if self.headers != ():
                object.__setattr__(self, "headers", ())
            return
        pairs = self.headers.items() if isinstance(self.headers, Mapping) else self.headers or ()
        object.__setattr__(self, "headers", tuple(sorted((str(k), str(v)) for k, v in pairs)))

    @property
    def id(self) -> str:
        text = f"{self.source}->{self.to}:{self.port}/{self.protocol} via {self.via}"
        text = f"{text} {self.request}" if self.request else text
        return text + "".join(f" [{k}: {v}]" for k, v in self.headers)


@dataclass(frozen=True)
class Verdict:
    """The outcome of one probe, its two sides and the explanation chain in evaluation order."""
    verdict: str
    egress: str
    ingress: str
    why: tuple[str, ...]
    listener: str | None = None
    approximate: bool = False  # a rule this model does not evaluate might change it (see the why chain)

    def as_dict(self) -> dict:
        out = {"verdict": self.verdict, "egress": self.egress, "ingress": self.ingress,
               "why": list(self.why), "listener": self.listener}
        if self.approximate:
            out["approximate"] = True
        return out


@dataclass
class _Side:
    """One direction's L3/L4 outcome: ``result`` (ALLOW, POLICY_DENY or DEFAULT_DENY), the port rules
    of the matching allow rules (None: the rule allows every port, without L7) and the explanation."""
    result: str
    port_rules: list[PortRule | None]
    why: list[str]
    approximate: bool = False


def evaluate(cluster: Cluster, probe: Probe, endpoints: tuple[Workload, Workload | None] | None = None) -> Verdict:
    """The verdict of one probe, marked ``approximate`` when a side it evaluated has a selecting
    policy with a rule this model left out that could change that side's result."""
    sides: list[_Side] = []
    verdict = _evaluate(cluster, probe, sides, endpoints)
    if any(side.approximate for side in sides):
        return replace(verdict, approximate=True)
    return verdict


def _evaluate(cluster: Cluster, probe: Probe, sides: list,
              endpoints: tuple[Workload, Workload | None] | None = None) -> Verdict:
    """The verdict of one probe: DNS first (service-name, fqdn), then egress of the source, then
    ingress of the destination; egress wins (an egress drop or 403 hides the ingress side).
    ``endpoints`` (source, destination workload) stand in for the probe's names (cilium_verdicts/classes.py
    evaluates a class's stand-ins once)."""
    src = cluster.workload(probe.source) if endpoints is None else endpoints[0]
    dest, port, name = _resolve(cluster, probe, None if endpoints is None else endpoints[1])
    why: list[str] = []
    learned = False
    if name is not None:
        learned = _dns(cluster, src, name, why, sides)
        if learned is None:
            return Verdict(DNS_FAIL, DNS_FAIL, NOT_EVALUATED, tuple(why))
    if isinstance(dest, World):
        dest = World(dest.address, name, learned)
    egress = _side(cluster, "egress", src, dest, port, probe.protocol, None if isinstance(dest, World) else dest.ports)
    sides.append(egress)
    why += egress.why
    if egress.result != ALLOW:
        return Verdict(DROP, egress.result, NOT_EVALUATED, tuple(why))
    listener = _listener(cluster, egress, why)
    if listener is False:
        return Verdict(DROP, POLICY_DENY, NOT_EVALUATED, tuple(why))
    def host() -> str:
        return _host(cluster, probe, dest)
    if _l7(egress, probe, host, "egress", why) == L7_DENY:
        return Verdict(L7_DENY, L7_DENY, NOT_EVALUATED, tuple(why), listener)
    if isinstance(dest, World):
        why.append(f"{dest.key} is outside the cluster: no ingress side")
        return Verdict(ALLOW, ALLOW, NOT_EVALUATED, tuple(why), listener)
    ingress = _side(cluster, "ingress", dest, src, port, probe.protocol, dest.ports)
    sides.append(ingress)
    why += ingress.why
    if ingress.result != ALLOW:
        return Verdict(DROP, ALLOW, ingress.result, tuple(why), listener)
    if _l7(ingress, probe, host, "ingress", why) == L7_DENY:
        return Verdict(L7_DENY, ALLOW, L7_DENY, tuple(why), listener)
    return Verdict(ALLOW, ALLOW, ALLOW, tuple(why), listener)


def _resolve(cluster: Cluster, probe: Probe, dest: Workload | None = None) -> tuple[Workload | World, int, str | None]:
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
            return World(host.strip("[]")), probe.port, None
        return World(probe.address or WORLD_DEFAULT_IP, host), probe.port, host
    dest = cluster.workload(probe.to) if dest is None else dest
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
    """An IPv4 or IPv6 literal is dialled as an address, never looked up."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _dns(cluster: Cluster, src: Workload, name: str, why: list[str], sides: list) -> bool | None:
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
    sides.append(egress)
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
    sides.append(ingress)
    why += [f"DNS: {line}" for line in ingress.why]
    if ingress.result != ALLOW:
        why.append("DNS: lookup dropped: dns-fail")
        return None
    return bool(proxied)


def _side(cluster: Cluster, direction: str, subject: Workload, peer: Target, port: int, protocol: str,
          dest_ports) -> _Side:
    """``_side_l34`` plus the rules left out: an ignored deny rule could only drop an allowed flow; an
    ignored allow rule could only allow a default-denied one or, with L7 rules on the allowing port
    rules, lift them (an L3/L4-only allow wildcards L7)."""
    side = _side_l34(cluster, direction, subject, peer, port, protocol, dest_ports)
    if not _has_ignored(cluster):
        return side
    l7 = any(r is not None and (r.http or r.dns or r.listener) for r in side.port_rules)
    widen = side.result == DEFAULT_DENY or (side.result == ALLOW and l7)
    left_out = [f"{p.ref} {where}" for p in cluster.selecting(subject, direction)
                for where, deny in p.direction(direction).ignored
                if (side.result == ALLOW if deny else widen)]
    if left_out:
        side.why.append(f"approximate: {', '.join(left_out)} is not evaluated and might change this")
        side.approximate = True
    return side


def _has_ignored(cluster: Cluster) -> bool:
    """Whether any policy left a rule out (memoised per cluster)."""
    found = cluster._memo.get("ignored")
    if found is None:
        found = cluster._memo["ignored"] = any(p.egress.ignored or p.ingress.ignored for p in cluster.policies)
    return found


def _side_l34(cluster: Cluster, direction: str, subject: Workload, peer: Target, port: int, protocol: str,
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


def _host(cluster: Cluster, probe: Probe, dest) -> str:
    """The Host header curl sends: the name or address in the URL, ``:port`` unless it is 80."""
    if isinstance(dest, World):
        name = dest.name or dest.address
    elif probe.via in ("service-name", "service-ip"):
        svc, _ = cluster.service_port(dest, probe.port, probe.protocol, probe.service)
        name = f"{svc.name}.{svc.namespace}.svc.cluster.local" if probe.via == "service-name" else svc.cluster_ip
    else:
        name = dest.ip
    return name if probe.port == 80 else f"{name}:{probe.port}"


def _l7(side: _Side, probe: Probe, host: Callable[[], str], direction: str, why: list[str]) -> str:
    """HTTP rules: enforced only when every allowing port rule carries ``rules.http`` (an L3/L4-only
    allow of the same peer wildcards L7: pkg/policy/rule.go wildcardL3L4Rule); a request passes when
    any rule matches it (method, path, host, headers, headerMatches: cilium_verdicts/l7.py), a miss is
    Envoy's 403 (l7-deny; docs.cilium.io "Layer 7 Examples")."""
    if not side.port_rules or any(r is None or r.http is None for r in side.port_rules):
        return ALLOW
    rules = [h for r in side.port_rules for h in r.http]
    allowed = ", ".join(h.text() for h in rules)
    if probe.request is None:
        why.append(f"{direction}: rules.http ({allowed}) applies to HTTP requests; a bare connection is "
                   "allowed at L4")
        return ALLOW
    request = l7.request(probe.request, host(), dict(probe.headers))
    shown = probe.request + "".join(f" [{k}: {v}]" for k, v in probe.headers)
    if any(h.failure(request) is None for h in rules):
        why.append(f"{direction}: request {shown} matches rules.http ({allowed})")
        return ALLOW
    misses = "; ".join(f"{h.text()}: {h.failure(request)}" for h in rules) or "none evaluated"
    why.append(f"{direction}: request {shown} matches no rules.http entry ({misses}): HTTP 403 from Envoy, l7-deny")
    left_out = [f"{r.where}.{f}" for r in side.port_rules for f in r.left_out]
    if left_out:
        why.append(f"approximate: {', '.join(left_out)} is not evaluated and might allow this request")
        side.approximate = True
    return L7_DENY


def pair_probes(cluster: Cluster) -> list[Probe]:
    """Every ordered pair of distinct workloads (built-ins excluded unless user-declared), on every
    declared container port of the destination, by pod IP; ordered by source, destination, port."""
    users = [w for w in cluster.workloads.values() if not w.builtin]
    ports = {w.key: sorted({(p, proto) for _, p, proto in w.ports}) for w in users}
    return [Probe(src.key, dst.key, port, protocol=protocol)
            for src in users for dst in users if dst is not src for port, protocol in ports[dst.key]]
