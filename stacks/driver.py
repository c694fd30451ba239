"""A small driver for the lab, built on stacks/automation.py (the code the acceptance suite runs).

    python3 -m stacks.driver up|preview|verify|lock|unlock|destroy [--stack NAME] [--region R] [--yes]
    python3 -m stacks.driver tour SCENARIO [--out DIR] [--yes]

Prints one line per engine event as it goes and the probes' results as a table after
up/verify/lock/unlock. Before ``up`` and ``tour`` it prints the cost estimate (model/cost.py) and
asks "Proceed? [y/N]" unless ``--yes`` (no answer, e.g. no terminal, is a no). ``tour`` steps a scenario through every stage (config, up, its probes'
matrix observed vs expected, written as text and SVG per stage), then restores the stage it was at.
Exit codes: 0 ok; 1 failed verification, refused lock change, an unconfirmed cost or a failed
Pulumi operation; 2 cannot run here (no pulumi CLI, no AWS credentials, no passphrase).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from pulumi import automation as auto

import scenarios
from cilium_verdicts.picture import matrix_svg
from model import cost
from model.settings import PROJECT, SettingsError
from stacks import automation as lab

COMMANDS = {
    "up": "create or update the lab, then show the probes",
    "preview": "show what `up` would change",
    "verify": "judge the deployed probes' results against the expected matrix",
    "lock": "restrictEgress=true: preview (only egress rules may change), up, verify",
    "unlock": "restrictEgress=false: preview (only egress rules may change), up, verify",
    "destroy": "destroy every resource and remove the stack (its Pulumi.<stack>.yaml is kept)",
    "tour": "step SCENARIO through all its stages (up + verify each, a report and an SVG per stage), then "
            "restore its stage",
}


def parse_args(argv: list[str] | None, prog: str = "python3 -m stacks.driver") -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=prog, description="Drive the cilium-egress-lab stack.",
        epilog="commands:\n" + "\n".join(f"  {k:<8} {v}" for k, v in COMMANDS.items()) +
               "\nbackend: PULUMI_BACKEND_URL if set, else Pulumi.yaml's (file://~); "
               "secrets: PULUMI_CONFIG_PASSPHRASE_FILE (or PULUMI_CONFIG_PASSPHRASE).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=list(COMMANDS), metavar="command", help=" | ".join(COMMANDS))
    parser.add_argument("--stack", default="dev", help="stack name (default: dev)")
    parser.add_argument("--region", help="set aws:region (default: the stack's, else AWS_REGION / "
                                         f"AWS_DEFAULT_REGION, else {lab.DEFAULT_REGION})")
    parser.add_argument("scenario", nargs="?", help="tour only: the scenario to step through "
                                                    f"({', '.join(scenarios.PACKS)})")
    parser.add_argument("--scenarios", help="up only: set scenarios first, e.g. egress,mtls")
    parser.add_argument("--out", help="tour only: where the per-stage reports go (default: tour-<scenario>)")
    parser.add_argument("--yes", action="store_true", help="up/tour: do not ask before creating billable resources")
    args = parser.parse_args(argv)
    if args.command == "tour" and args.scenario not in scenarios.PACKS:
        parser.error(f"tour needs a scenario; accepted: {', '.join(scenarios.PACKS)}")
    if args.command != "tour" and (args.scenario or args.out):
        parser.error("a scenario and --out apply to `tour` only")
    if args.scenarios and args.command != "up":
        parser.error("--scenarios applies to `up` only")
    if args.scenarios:
        unknown = [n for n in args.scenarios.split(",") if n not in scenarios.PACKS]
        if unknown:
            parser.error(f"--scenarios: {unknown[0]!r} is not a scenario; accepted: {', '.join(scenarios.PACKS)}")
    return args


def echo(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)


def show(verdict: lab.Verdict) -> int:
    print(verdict.report())
    print(f"verification ({'locked' if verdict.locked else 'unlocked'}): {'OK' if verdict.ok else 'FAILED'}")
    return 0 if verdict.ok else 1


def confirm_cost(stack: auto.Stack, args: argparse.Namespace, overrides: dict[str, str] | None = None) -> bool:
    """Print what the stack's configuration (with ``overrides``, project keys) costs on-demand
    (model/prices.json) and ask, unless --yes. An estimate that cannot be made (a region or instance
    type the table lacks) is said, then asked."""
    config = {**stack.get_all_config(), **{f"{PROJECT}:{k}": v for k, v in (overrides or {}).items()}}
    region = getattr(config.get("aws:region"), "value", None) or lab.region_from_env()
    try:
        platform = lab.settings_from_config(config).platform
    except SettingsError:
        platform = "aws"
    if platform != "aws":  # kind on this machine, or a cluster the user already pays for
        print(f"cost: platform {platform} creates no cloud resource (0 USD)")
        return True
    try:
        print(cost.render_text(cost.estimate(lab.settings_from_config(config), region), stack.name), end="")
    except (cost.CostError, SettingsError) as exc:
        print(f"cost: {exc}")
    if args.yes:
        return True
    try:
        answer = input("Proceed? [y/N] ")
    except EOFError:  # no terminal, no answer: no
        answer = ""
    if answer.strip().lower() in ("y", "yes"):
        return True
    print("not confirmed: nothing was changed (--yes skips the question)", file=sys.stderr)
    return False


def cmd_up(stack: auto.Stack, args: argparse.Namespace, log: lab.EventLog) -> int:
    names = args.scenarios.split(",") if args.scenarios else None
    if not confirm_cost(stack, args, {"scenarios": json.dumps(names)} if names else None):
        return 1
    if names:
        lab.set_scenarios(stack, names)
    lab.up(stack, log)
    return show(lab.verify(stack))


def cmd_preview(stack: auto.Stack, args: argparse.Namespace, log: lab.EventLog) -> int:
    result, _ = lab.preview(stack, log)
    print("changes:", ", ".join(f"{n} {op}" for op, n in sorted(result.change_summary.items())) or "none")
    return 0


def cmd_verify(stack: auto.Stack, args: argparse.Namespace, log: lab.EventLog) -> int:
    return show(lab.verify(stack))


def cmd_lock(stack: auto.Stack, args: argparse.Namespace, log: lab.EventLog) -> int:
    locked = args.command == "lock"
    deployed = stack.outputs().get("restrictEgress")
    if deployed is None:
        print(f"stack {stack.name} is not deployed: run `up` first", file=sys.stderr)
        return 1
    if bool(deployed.value) == locked:
        print(f"already {args.command}ed; verifying")
        return show(lab.verify(stack, expected_locked=locked))
    violations = lab.preview_lock_change(stack, locked, log)
    if violations:
        lab.set_lock(stack, not locked)  # leave the config as deployed
        print("refused: the lock change would do more than create/delete egress rules:\n  "
              + "\n  ".join(violations), file=sys.stderr)
        return 1
    lab.up(stack, log)
    return show(lab.verify(stack, expected_locked=locked))


def cmd_destroy(stack: auto.Stack, args: argparse.Namespace, log: lab.EventLog) -> int:
    lab.destroy_and_remove(stack, log, preserve_config=True)
    print(f"stack {stack.name}: destroyed and removed")
    return 0


def cmd_tour(stack: auto.Stack, args: argparse.Namespace, log: lab.EventLog) -> int:
    """Every stage of one scenario in order: set the stage, up, judge its probes; a text report and
    an SVG (observed vs expected) per stage; then the scenario's original stage (and the original
    scenario list, if the tour had to add it) are restored and applied."""
    name = args.scenario
    settings = lab.settings_from_config(stack.get_all_config())
    original_scenarios, original_stage = list(settings.scenarios), settings.stage_of(name)
    if not confirm_cost(stack, args):
        return 1
    stages = scenarios.STAGE_NAMES[name]
    out = Path(args.out or f"tour-{name}")
    out.mkdir(parents=True, exist_ok=True)
    failed = []
    try:
        if name not in original_scenarios:
            lab.set_scenarios(stack, [*original_scenarios, name])
        for i, stage in enumerate(stages, 1):
            echo(f"[{i}/{len(stages)}] {name}: stage {stage}: pulumi up")
            lab.set_stage(stack, name, stage)
            lab.up(stack, log)
            verdict = lab.verify(stack)
            section = lab.picture_input(verdict.verification, name)
            mismatches = sum(c["observed"] != c["verdict"] and c["observed"] is not None for c in section["cells"])
            stem = out / f"{i:02d}-{stage}"
            stem.with_suffix(".txt").write_text(verdict.report() + "\n")
            stem.with_suffix(".svg").write_text(matrix_svg(section, f"{name} - {stage} (observed vs expected)"))
            cells = ((verdict.verification or {}).get("scenarios") or {}).get(name, {}).get("cells", [])
            ok = sum(1 for c in cells if c.get("ok") is True)
            echo(f"[{i}/{len(stages)}] {name}: stage {stage}: {ok}/{len(cells)} probes as expected "
                 f"({mismatches} differ from the evaluator's verdict) -> {stem}.txt, {stem}.svg")
            if not verdict.ok:
                failed.append(stage)
    finally:
        echo(f"restoring {name} to stage {original_stage or 'last'} and scenarios {original_scenarios}")
        lab.set_stage(stack, name, original_stage)
        lab.set_scenarios(stack, original_scenarios)
        lab.up(stack, log)
    print(f"tour {name}: {len(stages) - len(failed)}/{len(stages)} stages as expected"
          + (f"; failed: {', '.join(failed)}" if failed else "") + f"; reports in {out}")
    return 1 if failed else 0


RUN = {"up": cmd_up, "preview": cmd_preview, "verify": cmd_verify,
       "lock": cmd_lock, "unlock": cmd_lock, "destroy": cmd_destroy, "tour": cmd_tour}


def main(argv: list[str] | None = None, prog: str = "python3 -m stacks.driver") -> int:
    args = parse_args(argv, prog)
    backend = lab.backend_url()
    reason = lab.preconditions(opt_in=False, passphrase=lab.needs_passphrase(backend), aws=False)
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    log = lab.EventLog(echo=echo)
    try:
        stack = lab.open_stack(args.stack, lab.workspace_env(), create=args.command in ("up", "preview"))
        try:
            on_aws = lab.settings_from_config(stack.get_all_config()).platform == "aws"
        except SettingsError:
            on_aws = True
        reason = lab.preconditions(opt_in=False, passphrase=lab.needs_passphrase(backend)) if on_aws else None
        if reason:
            print(f"cannot run: {reason}", file=sys.stderr)
            return 2
        if args.region or "aws:region" not in stack.get_all_config():
            lab.configure(stack, {}, region=args.region or lab.region_from_env())
        echo(f"{args.command} stack {args.stack} (backend {backend}, program {lab.PROJECT_DIR})")
        return RUN[args.command](stack, args, log)
    except auto.StackNotFoundError:
        print(f"no stack {args.stack!r} in {backend}: run `up` first", file=sys.stderr)
        return 1
    except (auto.CommandError, SettingsError, lab.PlatformSwitchRefused) as exc:
        tail = str(exc).strip().splitlines()[-25:]
        print(f"{args.command} failed:\n" + "\n".join(tail), file=sys.stderr)
        return 1


def console() -> int:
    """The ``cilium-lab-driver`` console command."""
    return main(prog="cilium-lab-driver")


if __name__ == "__main__":
    sys.exit(main())
