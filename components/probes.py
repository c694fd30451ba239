"""Probes: one command per probe of a scenario's stage - on the kind host over SSH (aws), or on the
user's machine with their kubectl (local, existing: pulumi-command local.Command) - (curl in the
source pod, retried within the convergence window), plus, for probes that go through the egress
proxy, a look at the proxy's access log for their CONNECT. The stack judges the results against the
model's plan (model.probes.report) into the ``verification`` output.

Each probe's ``triggers`` are everything its answer depends on (lock state, stage and its objects,
host identity), so it re-runs exactly when the answer can change. A timeout is a result, not a
command failure.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import pulumi
from pulumi_command import local, remote


class VerificationFailed(pulumi.RunError):
    """A probe saw something other than the model expects (strictVerification)."""


@dataclass
class ProbesArgs:
    names: Sequence[str]                      # the probes' stable names (model.probes.Planned.name)
    commands: Sequence[pulumi.Input[str]]     # one per name (model.probes.command)
    kind: remote.ConnectionArgs | None       # None: run on this machine (local.Command)
    proxy: remote.ConnectionArgs | None
    triggers: Sequence[Any]                   # every probe's
    # probe name -> its proxy-log command, given that probe's stdout (model.remote.proxy_log_command)
    evidence: Mapping[str, Callable[[str], pulumi.Input[str]]] = field(default_factory=dict)
    after: Sequence[pulumi.Resource] = field(default_factory=list)


class Probes(pulumi.ComponentResource):
    stdouts: pulumi.Output[dict]        # probe name -> its JSON line
    proxy_stdouts: pulumi.Output[dict]  # probe name -> its proxy-log JSON line

    def __init__(self, name: str, args: ProbesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cilium-egress-lab:verify:Probes", name, None, opts)
        def command(res: str, connection: remote.ConnectionArgs | None, create, deps):
            opts = pulumi.ResourceOptions(parent=self, depends_on=deps)
            if connection is None:
                return local.Command(res, create=create, triggers=list(args.triggers), opts=opts)
            return remote.Command(res, connection=connection, create=create, triggers=list(args.triggers), opts=opts)
        probes = {n: command(f"{name}-{n}", args.kind, cmd, list(args.after))
                  for n, cmd in zip(args.names, args.commands)}
        logs = {n: command(f"{name}-{n}-proxy-log", args.proxy, probes[n].stdout.apply(make), [*args.after, probes[n]])
                for n, make in args.evidence.items()}
        self.stdouts = pulumi.Output.all(**{n: p.stdout for n, p in probes.items()})
        self.proxy_stdouts = pulumi.Output.all(**{n: c.stdout for n, c in logs.items()}) if logs else \
            pulumi.Output.from_input({})
        self.register_outputs({"stdouts": self.stdouts})
