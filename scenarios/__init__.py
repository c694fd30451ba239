"""Scenario packs: one pure module each (workloads, ordered stages of policy objects, probes, what
it needs from the platform), see base.py. This registry is the only place that lists them."""
from __future__ import annotations

from types import ModuleType

from . import cilium, egress, eks_retail, hoot51, mtls, stars, stars_mesh
from .base import TWO_CLUSTERS, Context, LabProbe, Stage

PACKS: dict[str, ModuleType] = {p.NAME: p for p in (egress, mtls, hoot51, eks_retail, stars, stars_mesh)}
# Stage names, in order, as each pack declares them (they never depend on the platform's addresses).
STAGE_NAMES: dict[str, tuple[str, ...]] = {p.NAME: tuple(p.STAGES) for p in PACKS.values()}
DEFAULT_SCENARIOS = ("egress",)
# The packs one cluster runs (every pack but those needing two clusters, base.TWO_CLUSTERS).
ONE_CLUSTER: tuple[str, ...] = tuple(n for n, p in PACKS.items() if TWO_CLUSTERS not in p.NEEDS)

__all__ = ["PACKS", "STAGE_NAMES", "DEFAULT_SCENARIOS", "Context", "LabProbe", "Stage", "pack", "stage_names", "stage",
           "platform_objects", "multi_cluster_refusals", "ONE_CLUSTER"]


def pack(name: str) -> ModuleType:
    try:
        return PACKS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; accepted: {', '.join(PACKS)}") from None


def stage_names(name: str, ctx: Context) -> list[str]:
    return [s.name for s in pack(name).stages(ctx)]


def stage(name: str, ctx: Context, stage_name: str | None = None) -> Stage:
    """The named stage of a pack (default: its last stage, the seed's end state)."""
    stages = pack(name).stages(ctx)
    if stage_name is None:
        return stages[-1]
    for s in stages:
        if s.name == stage_name:
            return s
    raise ValueError(f"scenario {name!r} has no stage {stage_name!r}; accepted: {', '.join(s.name for s in stages)}")


def platform_objects(ctx: Context) -> tuple[dict, ...]:
    """Policy objects the platform itself installs with Cilium, in force for every scenario at every
    stage: the egress proxy's guard (scenarios.cilium.proxy_guard_policy)."""
    return (cilium.proxy_guard_policy(ctx.settings, ctx.proxy_address),)


# Platforms that build two clusters joined by ClusterMesh (a pack with TWO_CLUSTERS in NEEDS runs only
# there): local (stacks/local_mesh.py: two kind clusters on the user's Docker). The others build one
# cluster, so they refuse such packs at config time.
MULTI_CLUSTER_PLATFORMS: frozenset[str] = frozenset({"local", "aws"})


def multi_cluster_refusals(names, platform: str | None) -> list[str]:
    """Config errors for selected packs that need two clusters on a platform that builds one, and for
    a two-cluster pack selected with any other pack (its clusters are its own: it runs alone)."""
    names = list(names or ())
    mesh = [n for n in names if n in PACKS and TWO_CLUSTERS in PACKS[n].NEEDS]
    errors = [f"scenarios: {n} needs two clusters joined by ClusterMesh; the {platform or 'aws'} platform builds one "
              f"cluster; accepted: the single-cluster scenarios "
              f"({', '.join(ONE_CLUSTER)}), or platform {' or '.join(sorted(MULTI_CLUSTER_PLATFORMS))}; "
              f"evaluate {n} offline with cilium-verdicts --scenario {n}"
              for n in mesh if platform not in MULTI_CLUSTER_PLATFORMS]
    if mesh and len(names) > 1 and not errors:
        errors.append(f"scenarios: {mesh[0]} builds its own two clusters and runs alone; accepted: [{mesh[0]!r}] "
                      f"alone, or only single-cluster scenarios ({', '.join(ONE_CLUSTER)})")
    return errors
