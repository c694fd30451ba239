"""Probes, verdicts and the evaluation of one probe (see specs/evaluator.md, DESIGN.md §8).

Vocabulary is cilium-cli's connectivity test (cilium/cilium-cli ``connectivity/check/result.go``):
``allow``, ``drop`` (curl timeout), ``l7-deny`` (Envoy's HTTP 403) and ``dns-fail``. Egress is judged
first: an egress drop hides the ingress side.
"""
from __future__ import annotations

from dataclasses import dataclass

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
