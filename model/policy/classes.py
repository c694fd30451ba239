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
those of ``evaluate`` (tests/unit/policy/test_classes.py compares both on every scenario stage and on
the synthetic cluster).
"""
from __future__ import annotations

import dataclasses
import re
from typing import Iterable, Mapping, Sequence

from .cluster import Cluster, PolicyInputError, Workload
from .rules import DIRECTIONS, EndpointPeer, EntityPeer, FQDNPeer
from .verdict import Probe, Verdict, evaluate

_IDENTITY = ("name", "ip")  # what a class's members may differ in
_PROBE_FIELDS = tuple(f.name for f in dataclasses.fields(Probe) if f.name not in ("source", "to"))
_LABEL_PEERS = (EndpointPeer, EntityPeer, FQDNPeer)


def _frozen(value):
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
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
        ip = tuple((peer.matches(w), peer.near_miss(w) is not None) for peer in self._ip_peers)
        return fields + (("ip-signature", ip),)

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

    # ------------------------------------------------------------------ verdicts
    def template_key(self, probe: Probe) -> tuple | None:
        """The cache key of a probe (None: evaluated directly)."""
        if probe.source == probe.to:
            return None
        src = self.cluster.workload(probe.source)
        to = probe.to if probe.to.startswith("world:") else self.class_of(self.cluster.workload(probe.to)).number
        return (self.class_of(src).number, to) + tuple(getattr(probe, f) for f in _PROBE_FIELDS)

    def template(self, probe: Probe) -> Verdict | None:
        """The class pair's verdict naming the stand-ins (None when this probe is evaluated directly)."""
        key = self.template_key(probe)
        if key is None:
            return None
        if key not in self._templates:
            sc = self.class_of(self.cluster.workload(probe.source))
            world = probe.to.startswith("world:")
            dc = None if world else self.class_of(self.cluster.workload(probe.to))
            stand_in = dataclasses.replace(probe, source=sc.source.key, to=probe.to if world else dc.destination.key)
            try:
                verdict = evaluate(self.cluster, stand_in, (sc.source, None if world else dc.destination))
            except PolicyInputError:
                verdict = None  # evaluated directly: the error names the real workloads
            if verdict is not None and dc is sc and any(sc.source.ip in line for line in verdict.why):
                verdict = None  # the shared IP of two same-class stand-ins: which one is meant is unknown
            self._templates[key] = verdict
        return self._templates[key]

    def verdict(self, probe: Probe) -> Verdict:
        template = self.template(probe)
        if template is None:
            return evaluate(self.cluster, probe)
        src = self.cluster.workload(probe.source)
        sc = self.class_of(src)
        swaps = [(sc.source.name, src.name)]
        ips = [(sc.source.ip, src.ip)]
        if not probe.to.startswith("world:"):
            dst = self.cluster.workload(probe.to)
            dc = self.class_of(dst)
            swaps.append((dc.destination.name, dst.name))
            ips.append((dc.destination.ip, dst.ip))
        ips = [(a, b) for a, b in ips if a != b]
        return dataclasses.replace(template, why=tuple(_swap(line, swaps, ips) for line in template.why))

    def many(self, probes: Iterable[Probe]) -> list[tuple[Probe, Verdict]]:
        return [(p, self.verdict(p)) for p in probes]


def _swap(line: str, names: list[tuple[str, str]], ips: list[tuple[str, str]]) -> str:
    if "\x00" in line:
        for stand_in, name in names:
            line = line.replace(stand_in, name)
    for old, new in ips:
        if old in line:
            line = re.sub(r"(?<![0-9.])" + re.escape(old) + r"(?![0-9]|\.[0-9])", new, line)
    return line


def evaluate_all(cluster: Cluster, probes: Sequence[Probe]) -> list[tuple[Probe, Verdict]]:
    """``[(probe, evaluate(cluster, probe)) ...]``, each class pair evaluated once."""
    return Evaluator(cluster).many(probes)
