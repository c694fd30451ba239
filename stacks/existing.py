"""The existing composition: a cluster the user already runs Cilium >= 1.16 on (kubeconfigPath,
kubeContext). Nothing at cluster level is created or deleted: no Cilium release, no platform policy,
only the selected scenarios (namespaces, workloads, policies) and their probes, run with the user's
kubectl on this machine. Before anything, model.platforms.existing_preflight checks the cluster and
that no namespace the scenarios create exists without the lab's label; ``pulumi destroy`` removes
exactly what the stack added."""
from __future__ import annotations

import os
import shlex
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from model import platforms, probes, render
from model.settings import Settings
from scenarios import Context
from scenarios.k8s import LAB_LABEL

from .shared import declare_checks, declare_scenario, verify


def kubectl(settings: Settings) -> str:
    """The user's kubectl with the stack's kubeconfig and context (the probes' command prefix)."""
    return " ".join(shlex.quote(a) for a in platforms.kubectl_args(
        os.path.expanduser(settings.kubeconfig_path), settings.kube_context or None))


def scenario_namespaces(plans: dict[str, probes.Plan]) -> list[str]:
    return [o["metadata"]["name"] for pl in plans.values() for o in pl.workloads if o["kind"] == "Namespace"]


def declare(settings: Settings, tools: Any) -> dict[str, Any]:
    ctx_static = Context(settings, render.PLACEHOLDER_ADDRESS)  # no proxy on existing: no pack here uses it
    plans = {n: probes.plan(n, ctx_static, settings.stage_of(n)) for n in settings.scenarios}
    needs = frozenset().union(*(platforms.pack_needs(n, ctx_static) for n in settings.scenarios))
    path = os.path.expanduser(settings.kubeconfig_path)
    platforms.existing_preflight(path, settings.kube_context or None, needs, scenario_namespaces(plans),
                                 next(iter(LAB_LABEL.items())), tools.run, tools.which)

    provider = k8s.Provider(settings.name("existing-k8s"), kubeconfig=path,
                            context=settings.kube_context or None)
    ctx_live = pulumi.Output.from_input(ctx_static)
    deployed = {name: declare_scenario(settings, name, ctx_static, ctx_live, provider, [], None)
                for name in settings.scenarios}
    prefix = kubectl(settings)
    checks = declare_checks(
        settings, deployed, ctx_live, identity=[path, settings.kube_context],
        command=lambda pl, i: probes.command(pl.probes[i], pl.workloads, settings.convergence_seconds, kubectl=prefix),
        evidence=lambda p, out: "true", kind=None, proxy=None, after=[])
    return {
        "kubeconfigPath": path,
        "kubeContext": settings.kube_context,
        "stages": {name: d.static.stage.name for name, d in deployed.items()},
        "verification": verify(settings, {n: d.live for n, d in deployed.items()}, checks),
    }
