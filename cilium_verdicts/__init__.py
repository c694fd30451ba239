"""Offline Cilium verdict evaluator (pure: no Pulumi, no cluster). The CLI: cilium-verdicts (cli.py)."""
from .classes import all_pairs
from .cluster import Cluster, PolicyInputError, load_paths
from .verdict import (
           ALLOW,
           DNS_FAIL,
           DROP,
           L7_DENY,
           VERDICTS,
           Probe,
           Verdict,
           evaluate,
)

__all__ = ["ALLOW", "DNS_FAIL", "DROP", "L7_DENY", "VERDICTS", "Cluster", "PolicyInputError", "Probe",
           "Verdict", "all_pairs", "evaluate", "load_paths"]
