"""Equivalence classes: workloads that look the same to every policy get the same verdicts, so each
class is evaluated once (issue 21, "Scale").

A workload's class key is every field of its Workload except its name and pod IP (namespace,
namespace labels, pod labels, ports with their names, service account, kind, ...: whatever the
evaluator may read), plus its IP's signature: for every peer that is not a label selector, an entity
or an FQDN (CIDR rules and whatever else may look at addresses), whether it matches the workload and
whether it has a remark about it (Cilium never matches pod IPs with CIDR rules, but the explanation
says when a CIDR contains one: cilium#9209).

A class is evaluated through stand-ins: copies of its first workload named ``\\x00s<n>\\x00`` (as a
source) and ``\\x00d<n>\\x00`` (as a destination), so the explanation chain names the stand-ins, and
each member's verdict is the template with the stand-in names replaced by the member's name and the
stand-in's IP by the member's. A probe from a workload to itself, a template that names the shared IP
of two same-class stand-ins, and a probe that fails are evaluated directly, so the results are exactly
those of ``evaluate`` (tests/unit/verdicts/test_classes.py compares both on every scenario stage and on
the synthetic cluster).
"""
from __future__ import annotations

import dataclasses
import ipaddress
import re
from typing import Iterable, Mapping, Sequence

from .cluster import Cluster, PolicyInputError, Workload
from .rules import DIRECTIONS, CIDRPeer, EndpointPeer, EntityPeer, FQDNPeer
from .verdict import Probe, Verdict, evaluate, pair_probes

_IDENTITY = ("name", "ip")  # what a class's members may differ in
_PROBE_FIELDS = tuple(f.name for f in dataclasses.fields(Probe) if f.name not in ("source", "to"))
_LABEL_PEERS = (EndpointPeer, EntityPeer, FQDNPeer)


def _frozen(value):
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return tuple(sorted((_frozen(v) for v in value), key=repr))
    return value


@dataclasses.dataclass
class WorkloadClass:
    number: int
    members: list[Workload]
    source: Workload       # stand-in as the source of a probe
    destination: Workload  # stand-in as the destination


class Evaluator:
    """Verdicts of probes on one cluster, each class pair (and probe shape) evaluated once."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self._ip_peers = [peer for policy in cluster.policies for d in DIRECTIONS
                          for rule in (*policy.direction(d).allows, *policy.direction(d).denies)
                          for peer in rule.peers or () if not isinstance(peer, _LABEL_PEERS)]
        self._by_key: dict[tuple, WorkloadClass] = {}
        self._of: dict[str, WorkloadClass] = {}
        self._templates: dict[tuple, Verdict | None] = {}
        for w in cluster.workloads.values():
            self.class_of(w)

    # ------------------------------------------------------------------ classes
    def key(self, w: Workload) -> tuple:
        fields = tuple((f.name, _frozen(getattr(w, f.name))) for f in dataclasses.fields(w)
                       if f.name not in _IDENTITY)
        return fields + (("ip-signature", self._ip_signature(w)),)

    def _ip_signature(self, w: Workload) -> tuple:
        """Per non-label peer: (matches, has a remark). A CIDR peer never matches a pod (cilium#9209)
        and remarks exactly when a block holds the IP (rules.CIDRPeer), so its bits come from the
        parsed address once instead of one parse per peer."""
        address = ipaddress.ip_address(w.ip)
        out = []
        for peer in self._ip_peers:
            blocks = getattr(peer, "blocks", None) if type(peer) is CIDRPeer else None
            if blocks is None:
                out.append((peer.matches(w), peer.near_miss(w) is not None))
            else:
                out.append((False, any(address in net and not any(address in e for e in excepts)
                                       for net, excepts in blocks)))
        return tuple(out)

    def fields_key(self, w: Workload) -> tuple:
        """The class key without the IP signature (what a workload is, whatever the CIDR rules say)."""
        return self.key(w)[:-1]

    def class_of(self, w: Workload) -> WorkloadClass:
        found = self._of.get(w.key)
        if found is None:
            key = self.key(w)
            found = self._by_key.get(key)
            if found is None:
                n = len(self._by_key)
                found = self._by_key[key] = WorkloadClass(
                    n, [], dataclasses.replace(w, name=f"\x00s{n}\x00"), dataclasses.replace(w, name=f"\x00d{n}\x00"))
            found.members.append(w)
            self._of[w.key] = found
        return found

    def classes(self) -> list[WorkloadClass]:
        return list(self._by_key.values())

    def number(self, key: str) -> int:
        """The class number of a declared workload ``ns/name``."""
        return self._of[key].number

    # ------------------------------------------------------------------ verdicts
    def template_key(self, probe: Probe) -> tuple | None:
        """The cache key of a probe (None: evaluated directly)."""
        if probe.source == probe.to:
            return None
        src = self.cluster.workload(probe.source)
        to = probe.to if probe.to.startswith("world:") else self.class_of(self.cluster.workload(probe.to)).number
        return (self.class_of(src).number, to) + tuple(_frozen(getattr(probe, f)) for f in _PROBE_FIELDS)

    def template(self, probe: Probe) -> Verdict | None:
        """The class pair's verdict naming the stand-ins (None when this probe is evaluated directly)."""
        compiled = self.compiled(probe)
        return None if compiled is None else compiled[0]

    def compiled(self, probe: Probe) -> tuple[Verdict, tuple] | None:
        """(the stand-ins' verdict, its why lines with slots), or None: evaluate this probe directly."""
        key = self.template_key(probe)
        if key is None:
            return None
        if key not in self._templates:
            sc = self.class_of(self.cluster.workload(probe.source))
            world = probe.to.startswith("world:")
            dc = None if world else self.class_of(self.cluster.workload(probe.to))
            self._templates[key] = self._compile(probe, sc, dc)
        return self._templates[key]

    def _compile(self, probe: Probe, sc: WorkloadClass, dc: WorkloadClass | None) -> tuple[Verdict, tuple] | None:
        """Evaluate the stand-ins once; each why line becomes a str.format pattern with slots {0} source
        name, {1} destination name, {2} source IP, {3} destination IP (a plain str when it has none)."""
        stand_in = dataclasses.replace(probe, source=sc.source.key, to=probe.to if dc is None else dc.destination.key)
        try:
            verdict = evaluate(self.cluster, stand_in, (sc.source, None if dc is None else dc.destination))
        except PolicyInputError:
            return None  # evaluated directly: the error names the real workloads
        slots = [(sc.source.name, "{0}")] + ([] if dc is None else [(dc.destination.name, "{1}")])
        ips = [(sc.source.ip, "{2}")] + ([] if dc is None else [(dc.destination.ip, "{3}")])
        lines = []
        for line in verdict.why:
            hits = [(ip, slot) for ip, slot in ips if ip in line and _ip_pattern(ip).search(line)]
            if dc is sc and hits:
                return None  # the shared IP of two same-class stand-ins: which one is meant is unknown
            if "\x00" not in line and not hits:
                lines.append(line)
                continue
            line = line.replace("{", "{{").replace("}", "}}")
            for name, slot in slots:
                line = line.replace(name, slot)
            for ip, slot in hits:
                line = _ip_pattern(ip).sub(slot, line)
            lines.append(_Pattern(line))
        return verdict, tuple(lines)

    def verdict(self, probe: Probe) -> Verdict:
        compiled = self.compiled(probe)
        if compiled is None:
            return evaluate(self.cluster, probe)
        src = self.cluster.workload(probe.source)
        dst = None if probe.to.startswith("world:") else self.cluster.workload(probe.to)
        return _fill(compiled, src, dst)

    def many(self, probes: Iterable[Probe]) -> list[tuple[Probe, Verdict]]:
        return [(p, self.verdict(p)) for p in probes]

    def all_pairs(self, probes: Sequence[Probe]) -> list[tuple[Probe, Verdict]]:
        """``many`` for pod-IP probes between declared workloads (verdict.pair_probes), faster: the
        class pair's template is looked up by (source class, destination class, port, protocol)."""
        workloads, of, out = self.cluster.workloads, self._of, []
        cache: dict[tuple, tuple | None] = {}
        for p in probes:
            src, dst = workloads[p.source], workloads[p.to]
            sc, dc = of[p.source], of[p.to]
            if len(sc.members) == 1 and len(dc.members) == 1:  # one member pair: nothing to share
                out.append((p, evaluate(self.cluster, p)))
                continue
            key = (sc.number, dc.number, p.port, p.protocol)
            compiled = cache[key] if key in cache else cache.setdefault(key, self.compiled(p))
            out.append((p, evaluate(self.cluster, p) if compiled is None else _fill(compiled, src, dst)))
        return out


class _Pattern(str):
    """A why line with slots for the member's names and IPs."""


def _fill(compiled: tuple[Verdict, tuple], src: Workload, dst: Workload | None) -> Verdict:
    template, lines = compiled
    values = (src.name, dst.name if dst else "", src.ip, dst.ip if dst else "")
    verdict = object.__new__(type(template))
    verdict.__dict__.update(template.__dict__)
    verdict.__dict__["why"] = tuple(line.format(*values) if type(line) is _Pattern else line for line in lines)
    return verdict


_PATTERNS: dict[str, re.Pattern] = {}


def _ip_pattern(ip: str) -> re.Pattern:
    """The address as a whole (10.244.1.5, not inside 10.244.1.50 or 110.244.1.5)."""
    found = _PATTERNS.get(ip)
    if found is None:
        found = _PATTERNS[ip] = re.compile(r"(?<![0-9.])" + re.escape(ip) + r"(?![0-9]|\.[0-9])")
    return found


def evaluate_all(cluster: Cluster, probes: Sequence[Probe]) -> list[tuple[Probe, Verdict]]:
    """``[(probe, evaluate(cluster, probe)) ...]``, each class pair evaluated once."""
    return Evaluator(cluster).many(probes)


def all_pairs(cluster: Cluster, classes: bool = True) -> list[tuple[Probe, Verdict]]:
    """The verdict of every ``pair_probes`` probe; workloads of one class (the Evaluator above)
    are evaluated once (``classes=False``: every probe on its own, the reference)."""
    if not classes:
        return [(p, evaluate(cluster, p)) for p in pair_probes(cluster)]
    return Evaluator(cluster).all_pairs(pair_probes(cluster))
