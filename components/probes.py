"""Probes: one curl per matrix cell, run in the test pods from the kind host, plus a look at the
proxy's access log; their verdict against the expected matrix (model.matrix) is ``verification``.

Each probe is a pulumi-command remote command whose ``triggers`` are everything its answer depends
on (lock state, CR contents, host identity), so it re-runs exactly when the answer can change. A
timeout is a result, not a command failure. With ``strict``, a mismatch fails the update with a
message naming the cell, the expected and observed outcome, and a hint.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import pulumi
from pulumi_command import remote

from model.matrix import Cell, failures


@dataclass
class ProbesArgs:
    cells: Sequence[Cell]                    # names the probes (addresses may be placeholders)
    live_cells: pulumi.Input[list]           # the same cells with real addresses
    commands: Sequence[pulumi.Input[str]]    # one per cell (model.verify.command)
    kind: remote.ConnectionArgs
    proxy: remote.ConnectionArgs
    # the proxy-log check, given the stdout of the probe whose CONNECT it looks for (evidence_cell)
    proxy_log_command: Callable[[str], pulumi.Input[str]]
    evidence_cell: str
    triggers: Sequence[Any]                  # every probe's
    verify: Callable[[list[Cell], list[str], str], dict]  # (cells, stdouts, proxy stdout) -> report
    strict: bool
    after: Sequence[pulumi.Resource] = field(default_factory=list)
    extra_triggers: Callable[[Cell], Sequence[Any]] = lambda cell: ()  # a cell's own


class VerificationFailed(pulumi.RunError):
    pass


class Probes(pulumi.ComponentResource):
    verification: pulumi.Output[dict]

    def __init__(self, name: str, args: ProbesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cilium-egress-lab:verify:Probes", name, None, opts)
        probes = [remote.Command(
            f"{name}-{cell.source}-{cell.target}", connection=args.kind, create=command,
            triggers=[*args.triggers, *args.extra_triggers(cell)],
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)))
            for cell, command in zip(args.cells, args.commands)]
        evidence = next(p for c, p in zip(args.cells, probes) if c.id == args.evidence_cell)
        proxy_log = remote.Command(
            f"{name}-proxy-log", connection=args.proxy, create=evidence.stdout.apply(args.proxy_log_command),
            triggers=list(args.triggers),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*args.after, *probes]))

        def conclude(outs: list) -> dict:
            report = args.verify(outs[0], outs[1:-1], outs[-1])
            if args.strict and not report["ok"]:
                raise VerificationFailed(
                    "verification failed (strictVerification=true; set it false to keep the "
                    "stack and inspect `pulumi stack output verification`):\n  - "
                    + "\n  - ".join(failures(report)))
            return report

        self.verification = pulumi.Output.all(
            args.live_cells, *[p.stdout for p in probes], proxy_log.stdout).apply(conclude)
        self.register_outputs({"verification": self.verification})


