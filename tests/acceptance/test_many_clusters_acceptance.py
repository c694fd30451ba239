"""Many clusters through the automation API (issue 23): a fleet of N = 2 edge clusters behind one shared
proxy on real AWS, and the two-cluster Stars walkthrough (stars-mesh) on each platform that builds two
clusters joined by ClusterMesh (scenarios.MULTI_CLUSTER_PLATFORMS: local, two kind clusters on this
machine's Docker or Podman; aws, both kind clusters on the kind host, stacks/aws_mesh.py).

Each is gated on what it needs, and skipped with the precise reason otherwise: the fleet like
test_lab_acceptance.py (the pulumi CLI, AWS credentials and LAB_ACCEPTANCE=1: billable resources), the
Stars run like test_platforms_acceptance.py (the pulumi CLI, docker or podman, kind, kubectl, helm).
"""
from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess

import pytest

import scenarios
from model import platforms
from stacks import automation as lab

REASON = lab.preconditions(opt_in=True)
MESH_PLATFORM = "local" if "local" in scenarios.MULTI_CLUSTER_PLATFORMS else None
MESH_REASON = (platforms.acceptance_problems(MESH_PLATFORM, os.environ, shutil.which) if MESH_PLATFORM else
               "stars-mesh needs two clusters joined by ClusterMesh and no platform builds them "
               "(scenarios.MULTI_CLUSTER_PLATFORMS is empty)")


def judge_fleet(stack, locked: bool) -> list[str]:
    """Every cluster's verification against the matrix for ``locked`` (the one-cluster judge, per cluster)."""
    settings = lab.settings_from_config(stack.get_all_config())
    clusters = (stack.outputs()["verification"].value or {}).get("clusters") or {}
    problems = [f"{name}: {p}" for name, report in clusters.items()
                for p in lab.compare_verification(report, locked, settings)]
    return problems + ([] if len(clusters) == settings.edge_clusters else [f"clusters reported: {sorted(clusters)}"])


@pytest.mark.skipif(bool(REASON), reason=str(REASON))
def test_fleet_of_two_end_to_end(acceptance):
    ctx = acceptance
    stack = lab.open_stack(ctx.stack_name, ctx.env, secrets_provider="passphrase")
    ctx.created = True
    try:
        lab.configure(stack, {"envName": ctx.env_name[:16], "edgeClusters": 2, "restrictEgress": False,
                              "strictVerification": False, "maxMonthlyCostUsd": 1000},
                      region=lab.region_from_env())
        lab.set_scenarios(stack, ["egress"])
        stack.workspace.install()
        out = lab.up(stack, ctx.log).outputs
        assert len(out["edgeClusters"].value) == 2 and out["kubeconfigs"].secret
        for ip in out["kindPublicIps"].value.values():
            ipaddress.IPv4Address(ip)
        assert out["fleetSummary"].value.startswith("fleet: 2/2 clusters verified"), out["fleetSummary"].value
        assert not judge_fleet(stack, locked=False)
        # the lock: only the two lock rules (and the probes) change, then every cluster is locked
        violations = lab.preview_lock_change(stack, True, ctx.log)
        assert not violations, "\n".join(violations)
        out = lab.up(stack, ctx.log).outputs
        assert out["fleetSummary"].value.startswith("fleet: 2/2 clusters verified"), out["fleetSummary"].value
        assert not judge_fleet(stack, locked=True)
        lab.preview(stack, ctx.log, expect_no_changes=True)
    finally:
        lab.destroy_and_remove(stack, ctx.log)
        ctx.removed = True


def _stars_mesh_every_stage(ctx, config: dict, region: str | None = None) -> None:
    """Every stage: up, then every probe (run in its source's cluster) judged against the mesh
    evaluator's expectations (model.probes.plan); then destroy, which deletes both kind clusters."""
    stack = lab.open_stack(ctx.stack_name, ctx.env, secrets_provider="passphrase")
    ctx.created = True
    try:
        lab.configure(stack, {"envName": ctx.env_name, "strictVerification": False, **config}, region=region)
        lab.set_scenarios(stack, ["stars-mesh"])
        stack.workspace.install()
        for stage in scenarios.STAGE_NAMES["stars-mesh"]:
            lab.set_stage(stack, "stars-mesh", stage)
            out = lab.up(stack, ctx.log).outputs
            assert out["ciliumStatus"].value == {c: "deployed" for c in scenarios.pack("stars-mesh").CLUSTERS}
            assert out["kubeconfigs"].secret and sorted(out["kubeconfigs"].value) == sorted(
                scenarios.pack("stars-mesh").CLUSTERS)
            verdict = lab.verify(stack)
            print(f"--- stars-mesh at {stage} ---\n" + verdict.report())
            assert verdict.ok, f"stage {stage}:\n{verdict.report()}"
    finally:
        lab.destroy_and_remove(stack, ctx.log)
        ctx.removed = True


@pytest.mark.skipif(bool(MESH_REASON), reason=f"stars-mesh on {MESH_PLATFORM}: {MESH_REASON}; it is verified "
                    "offline in tests/unit/scenarios/test_stars_mesh.py and tests/unit/test_local_mesh.py")
def test_two_cluster_stars_end_to_end(acceptance):
    _stars_mesh_every_stage(acceptance, {"platform": MESH_PLATFORM})
    listed = subprocess.run(["kind", "get", "clusters"], capture_output=True, text=True, check=False)
    assert not set(scenarios.pack("stars-mesh").CLUSTERS) & set(listed.stdout.split())


@pytest.mark.skipif(bool(REASON) or "aws" not in scenarios.MULTI_CLUSTER_PLATFORMS,
                    reason=f"stars-mesh on aws: {REASON or 'aws is not a two-cluster platform'}; it is verified "
                    "offline in tests/unit/test_aws_mesh.py (mocks, the kind host's boot emulated)")
def test_two_cluster_stars_on_the_aws_kind_host_end_to_end(acceptance):
    _stars_mesh_every_stage(acceptance, {"envName": acceptance.env_name[:16], "maxMonthlyCostUsd": 1000},
                            region=lab.region_from_env())
