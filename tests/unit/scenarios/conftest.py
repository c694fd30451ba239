"""Helpers for the scenario-pack tests.

Expected verdicts in test_<pack>.py are literal data written from the seed texts
(/work/shared/seeds/00N_*.txt) and the documents the seeds link, quoted next to each row — never
computed by the pack or the evaluator. These helpers only evaluate a pack's probes with the evaluator
(specs/evaluator.md) so the tests can compare.
"""
from __future__ import annotations

from cilium_verdicts import Cluster, all_pairs, evaluate

ALLOW, DROP, L7_DENY, DNS_FAIL = "allow", "drop", "l7-deny", "dns-fail"


def evaluator():
    """The evaluator's API (cilium_verdicts)."""
    return Cluster, evaluate, all_pairs


def stage_cluster(pack, stage):
    Cluster, _, _ = evaluator()
    return Cluster.from_objects(list(pack.workloads(None)) + list(stage.objects))


def stage_named(pack, name):
    return next(s for s in pack.stages(None) if s.name == name)


def explain(v) -> str:
    return f"{v.verdict} (egress {v.egress}, ingress {v.ingress})\n  " + "\n  ".join(v.why)
