"""Offline Cilium verdict evaluator (pure: no Pulumi, no cluster). See specs/evaluator.md."""
from .cluster import Cluster, PolicyInputError, load_paths
from .verdict import (
           ALLOW,
           DNS_FAIL,
           DROP,
           L7_DENY,
           VERDICTS,
           Probe,
           Verdict,
           all_pairs,
           evaluate,
)

__all__ = ["ALLOW", "DNS_FAIL", "DROP", "L7_DENY", "VERDICTS", "Cluster", "PolicyInputError", "Probe",
           "Verdict", "all_pairs", "evaluate", "load_paths"]
