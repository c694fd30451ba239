"""Past one stack with Pulumi: one stack per cluster group, run by a bounded worker pool.

    python3 -m stacks.fleet_driver up|verify|destroy --groups G --clusters-per-group N
        [--workers W] [--prefix fleet] [--region R] [--yes]

Each group is a stack ``<prefix>-gNN`` of this program with ``edgeClusters`` = N (stacks/fleet.py: N
kind hosts behind one shared proxy); at most W stacks run at once (threads; each Pulumi operation is its
own engine process). One progress line per stack when it starts and when it ends (``[3/10] fleet-g03:
up done in 412 s: fleet: 20/20 clusters verified, ...``), then one line for all groups. Exit codes as
stacks/driver.py: 0 ok, 1 a stack failed or its verification did, 2 cannot run here.

For hundreds of clusters without Pulumi state per cluster, render a GitOps bundle instead
(``python -m model render --fleet N --out DIR``, model/fleet.py).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from stacks import automation as lab

MAX_WORKERS = 16


@dataclass
class GroupResult:
    stack: str
    ok: bool
    summary: str          # the stack's fleetSummary output, or the failure
    seconds: float


def group_names(prefix: str, groups: int) -> list[str]:
    return [f"{prefix}-g{i:02d}" for i in range(1, groups + 1)]


def run_groups(names: Sequence[str], run_one: Callable[[str], tuple[bool, str]], workers: int,
               echo: Callable[[str], None], clock: Callable[[], float] = time.monotonic) -> list[GroupResult]:
    """Run ``run_one(stack)`` for every stack, at most ``workers`` at a time; a progress line per stack
    as it starts and as it ends; an exception is that stack's failure (the others go on). Results in
    ``names`` order."""
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"--workers {workers}: accepted: 1..{MAX_WORKERS}")
    total, lock, done = len(names), threading.Lock(), [0]

    def one(index: int, name: str) -> GroupResult:
        with lock:
            echo(f"[{index}/{total}] {name}: started")
        start = clock()
        try:
            ok, summary = run_one(name)
        except Exception as exc:  # noqa: BLE001 - one stack's failure must not stop the others
            ok, summary = False, f"failed: {str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__}"
        result = GroupResult(name, ok, summary, clock() - start)
        with lock:
            done[0] += 1
            echo(f"[{done[0]}/{total} done] {name}: {'ok' if ok else 'FAILED'} in {result.seconds:.0f} s: {summary}")
        return result

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(one, i, n) for i, n in enumerate(names, 1)]
        return [f.result() for f in futures]


def overall(results: Sequence[GroupResult]) -> str:
    ok = [r for r in results if r.ok]
    bad = [r.stack for r in results if not r.ok]
    return (f"groups: {len(ok)}/{len(results)} ok" + (f"; failed: {', '.join(bad)}" if bad else ""))


def stack_runner(command: str, clusters: int, region: str | None, echo: Callable[[str], None]) -> Callable[[str], tuple[bool, str]]:
    """The real work of one group's stack through the automation API (stacks/automation.py)."""

    def run(name: str) -> tuple[bool, str]:
        stack = lab.open_stack(name, lab.workspace_env(), create=command == "up")
        if command == "destroy":
            lab.destroy_and_remove(stack)
            return True, "destroyed"
        if command == "up":
            lab.configure(stack, {"edgeClusters": clusters}, region=region or lab.region_from_env())
            lab.up(stack)
        outputs: dict[str, Any] = stack.outputs()
        summary = outputs.get("fleetSummary")
        verification = outputs.get("verification")
        ok = bool(verification is not None and (verification.value or {}).get("ok"))
        return ok, summary.value if summary is not None else "no fleetSummary output"
    return run


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python3 -m stacks.fleet_driver", description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=("up", "verify", "destroy"))
    p.add_argument("--groups", type=int, required=True, help="how many stacks (cluster groups)")
    p.add_argument("--clusters-per-group", type=int, default=1, help="edgeClusters of each stack (1..20)")
    p.add_argument("--workers", type=int, default=4, help=f"stacks at once (1..{MAX_WORKERS}, default 4)")
    p.add_argument("--prefix", default="fleet", help="stack names: <prefix>-g01 ... (default: fleet)")
    p.add_argument("--region", help="aws:region of new stacks")
    p.add_argument("--yes", action="store_true", help="up: do not ask before creating billable resources")
    args = p.parse_args(argv)
    if not 1 <= args.groups <= 999:
        p.error(f"--groups {args.groups}: accepted: 1..999")
    if not 1 <= args.clusters_per_group <= 20:
        p.error(f"--clusters-per-group {args.clusters_per_group}: accepted: 1..20 (the config key edgeClusters)")
    if not 1 <= args.workers <= MAX_WORKERS:
        p.error(f"--workers {args.workers}: accepted: 1..{MAX_WORKERS}")
    return args


def echo(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)


def main(argv: list[str] | None = None, runner: Callable[..., Callable[[str], tuple[bool, str]]] = stack_runner) -> int:
    args = parse_args(argv)
    if runner is stack_runner:
        reason = lab.preconditions(opt_in=False, passphrase=lab.needs_passphrase(lab.backend_url()))
        if reason:
            print(f"cannot run: {reason}", file=sys.stderr)
            return 2
    if args.command == "up" and not args.yes:
        try:
            answer = input(f"{args.groups} stacks x {args.clusters_per_group} kind hosts (+1 proxy each): "
                           "`python -m model cost --set edgeClusters=N` prices one. Proceed? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("not confirmed: nothing was changed (--yes skips the question)", file=sys.stderr)
            return 1
    names = group_names(args.prefix, args.groups)
    echo(f"{args.command}: {len(names)} stacks, {args.workers} at a time")
    results = run_groups(names, runner(args.command, args.clusters_per_group, args.region, echo), args.workers, echo)
    line = overall(results)
    echo(line)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
