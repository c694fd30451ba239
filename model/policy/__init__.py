"""Offline Cilium verdict evaluator (pure: no Pulumi, no cluster). See specs/evaluator.md."""
from .verdict import ALLOW, DNS_FAIL, DROP, L7_DENY, VERDICTS, Probe, Verdict

__all__ = ["ALLOW", "DNS_FAIL", "DROP", "L7_DENY", "VERDICTS", "Probe", "Verdict"]
