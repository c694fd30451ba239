"""What every platform's composition does the same way: each selected scenario at its stage
(declare_scenario), its probes (declare_checks: the same commands, triggers and order everywhere;
only where they run differs) and the verification output (verify)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import pulumi
import pulumi_kubernetes as k8s
from pulumi_command import remote

import scenarios
from components.platform_policies import PlatformPolicies, PlatformPoliciesArgs
from components.probes import Probes, ProbesArgs, VerificationFailed
from components.scenario import Scenario, ScenarioArgs
from model import local, probes
from model.settings import Settings
from scenarios import Context
from scenarios.cilium import content_hash


@dataclass
class Deployed:
    static: probes.Plan                  # names, stage objects' shapes (placeholder addresses)
    live: pulumi.Output                  # Output[probes.Plan] with the real addresses
    component: Scenario


def declare_scenario(settings: Settings, name: str, ctx_static: Context, ctx_live: pulumi.Output,
                     provider: k8s.Provider, after: list[pulumi.Resource], mtls: Any | None) -> Deployed:
    """One scenario pack at its configured stage: its workloads, (secrets), the stage's objects.
    ``mtls``: the platform's mTLS backend (stacks.mtls.MtlsPlatform) or None."""
    pack, stage = scenarios.pack(name), settings.stage_of(name)
    static = probes.plan(name, ctx_static, stage)
    live = ctx_live.apply(lambda c: probes.plan(name, c, stage))
    secrets = list(getattr(pack, "secret_objects", lambda ctx, m=None: [])(ctx_static))
    secrets_live = [pulumi.Output.secret(mtls.material.apply(lambda m, i=i: pack.secret_objects(ctx_static, m)[i]))
                    for i in range(len(secrets))] if mtls is not None else []
    component = Scenario(settings.name(name), ScenarioArgs(
        workloads=list(static.workloads), stage_objects=list(static.stage.objects),
        stage_objects_live=live.apply(lambda pl: list(pl.stage.objects)), provider=provider,
        secrets=secrets if secrets_live else [], secrets_live=secrets_live, after=after))
    return Deployed(static, live, component)


def declare_on_cilium(settings: Settings, ctx_static: Context, ctx_live: pulumi.Output, provider: k8s.Provider,
                      after: list[pulumi.Resource], mtls: Any | None = None) -> tuple[PlatformPolicies, dict[str, Deployed]]:
    """Once Cilium runs (``after``: its release and CRDs): the platform's own policies
    (model.local.platform_objects) and every selected scenario at its configured stage."""
    guard = PlatformPolicies(settings.name("platform"), PlatformPoliciesArgs(
        objects=list(local.platform_objects(ctx_static)),
        objects_live=ctx_live.apply(lambda c: list(local.platform_objects(c))),
        provider=provider, after=after))
    deployed = {name: declare_scenario(settings, name, ctx_static, ctx_live, provider, after, mtls)
                for name in settings.scenarios}
    return guard, deployed


def declare_checks(settings: Settings, deployed: dict[str, Deployed], ctx_live: pulumi.Output, *,
                   identity: Sequence[pulumi.Input[str]], command: Callable[[probes.Plan, int], str],
                   evidence: Callable[[probes.Planned, str], pulumi.Input[str]],
                   kind: remote.ConnectionArgs | None, proxy: remote.ConnectionArgs | None,
                   after: Sequence[pulumi.Resource], mtls: Any | None = None) -> dict[str, Probes]:
    """Every scenario's probes, re-run whenever their answer can change: the lock, what runs the
    cluster and the proxy (``identity``), the stage and its objects, the platform's own objects, the
    mTLS certificates. ``command(plan, i)``: probe i's command (model.probes.command with the
    platform's kubectl); ``evidence(planned, stdout)``: its proxy-log command; ``kind``/``proxy``:
    SSH connections, or None to run them on this machine."""
    checks = {}
    for name, d in deployed.items():
        triggers = [settings.restrict_egress, *identity, d.static.stage.name,
                    d.live.apply(lambda pl: content_hash(*pl.stage.objects)),
                    ctx_live.apply(lambda c: content_hash(*local.platform_objects(c)))]
        if mtls is not None and "mtls-backend" in scenarios.pack(name).NEEDS:
            triggers.append(mtls.digest)
        checks[name] = Probes(settings.name(f"probes-{name}"), ProbesArgs(
            names=[p.name for p in d.static.probes],
            commands=[d.live.apply(lambda pl, i=i: command(pl, i)) for i in range(len(d.static.probes))],
            kind=kind, proxy=proxy, triggers=triggers,
            evidence={p.name: (lambda out, p=p: evidence(p, out))
                      for p in d.static.probes if p.check == probes.PROXY_LOG},
            after=[*after, *d.component.policies, *d.component.workload_resources]))
    return checks


def verify(settings: Settings, plans: dict[str, pulumi.Output], checks: dict[str, Probes]) -> pulumi.Output:
    """The ``verification`` output (model.probes.report); with strictVerification a mismatch fails
    the update, naming every probe that differs, what was expected and why."""
    names = list(plans)

    def conclude(args: list) -> dict:
        n = len(names)
        live = dict(zip(names, args[:n]))
        stdouts = {k: v for d in args[n:2 * n] for k, v in d.items()}
        proxy = {k: v for d in args[2 * n:] for k, v in d.items()}
        report = probes.report(live, stdouts, proxy, settings)
        if settings.strict_verification and not report["ok"]:
            raise VerificationFailed(
                "verification failed (strictVerification=true; set it false to keep the stack and inspect "
                "`pulumi stack output verification`):\n  - " + "\n  - ".join(probes.failures(report)))
        return report
    return pulumi.Output.all(*[plans[n] for n in names], *[checks[n].stdouts for n in names],
                             *[checks[n].proxy_stdouts for n in names]).apply(conclude)
