"""The local and existing platforms, end to end, through the automation API (issue 22). No cloud
account: each runs only where its tools are (stacks.automation.platform_preconditions) and is skipped
with the precise reason otherwise.

- local: kind up on this machine's Docker or Podman, Cilium, the hoot51 tour (every stage: up, its
  probes judged against the model's expectations), then destroy - which deletes the kind cluster -
  and remove the stack, always.
- existing: the cluster of LAB_EXISTING_KUBECONFIG (LAB_EXISTING_CONTEXT optional): hoot51 at its
  last stage, verified, then destroy; the cluster's own namespaces are untouched (checked with
  kubectl before and after).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

import scenarios
from model import platforms
from stacks import automation as lab

TOUR = "hoot51"


def _run_tour(ctx, stack) -> None:
    for stage in scenarios.STAGE_NAMES[TOUR]:
        lab.set_stage(stack, TOUR, stage)
        lab.up(stack, ctx.log)
        ctx.last = lab.verify(stack)
        print(f"--- {TOUR} at {stage} ---\n" + ctx.last.report())
        assert ctx.last.ok, ctx.last.report()


def _missing(platform: str) -> str | None:
    return platforms.acceptance_problems(platform, os.environ, shutil.which)


@pytest.mark.skipif(bool(_missing("local")), reason=str(_missing("local")))
def test_local_platform_end_to_end(acceptance):
    ctx = acceptance
    stack = lab.open_stack(ctx.stack_name, ctx.env, secrets_provider="passphrase")
    ctx.created = True
    try:
        lab.configure(stack, {"platform": "local", "envName": ctx.env_name, "strictVerification": False})
        lab.set_scenarios(stack, [TOUR])
        stack.workspace.install()
        out = lab.up(stack, ctx.log).outputs
        assert out["platform"].value == "local" and out["kubeconfig"].secret
        assert out["ciliumStatus"].value == "deployed"
        _run_tour(ctx, stack)
        # a stack keeps its platform
        lab.configure(stack, {"platform": "aws"})
        with pytest.raises(lab.PlatformSwitchRefused):
            lab.preview(stack, ctx.log)
        lab.configure(stack, {"platform": "local"})
    finally:
        lab.destroy_and_remove(stack, ctx.log)
        ctx.removed = True
    listed = subprocess.run(["kind", "get", "clusters"], capture_output=True, text=True, check=False)
    assert "egress-lab" not in listed.stdout.split()


def _namespaces(kubeconfig: str, context: str | None) -> set[str]:
    got = subprocess.run([*platforms.kubectl_args(kubeconfig, context), "get", "namespaces", "-o", "json"],
                         capture_output=True, text=True, check=True)
    return {n["metadata"]["name"] for n in json.loads(got.stdout)["items"]}


@pytest.mark.skipif(bool(_missing("existing")), reason=str(_missing("existing")))
def test_existing_platform_end_to_end(acceptance):
    ctx = acceptance
    kubeconfig = os.environ[platforms.EXISTING_KUBECONFIG_VAR]
    context = os.environ.get(platforms.EXISTING_CONTEXT_VAR) or None
    before = _namespaces(kubeconfig, context)
    stack = lab.open_stack(ctx.stack_name, ctx.env, secrets_provider="passphrase")
    ctx.created = True
    try:
        lab.configure(stack, {"platform": "existing", "kubeconfigPath": kubeconfig, "kubeContext": context or "",
                              "envName": ctx.env_name, "strictVerification": False})
        lab.set_scenarios(stack, [TOUR])
        stack.workspace.install()
        out = lab.up(stack, ctx.log).outputs
        assert out["platform"].value == "existing"
        ctx.last = lab.verify(stack)
        assert ctx.last.ok, ctx.last.report()
    finally:
        lab.destroy_and_remove(stack, ctx.log)
        ctx.removed = True
    assert _namespaces(kubeconfig, context) == before  # exactly what the stack added is gone, nothing else
