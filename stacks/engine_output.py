"""What the engine reports, interpreted (pure: unit-tested in tests/unit/test_automation.py, no CLI,
no cloud): ``check_lock_change``, ``compare_verification``, ``summarise_event``, ``probe_table``, the
event log. stacks/automation.py drives the workspace and uses these."""
from __future__ import annotations

import dataclasses
import re
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from pulumi.automation.events import EngineEvent

import scenarios
from model import probes, render
from model.settings import Settings

PROJECT_DIR = Path(__file__).resolve().parent.parent  # the Pulumi project (Pulumi.yaml)
NO_OPS = {"same", "read", "refresh"}          # steps that change nothing in the cloud
RULE_OPS = {"create", "update", "delete"}     # the only steps a lock flip may take on egress rules
EGRESS_RULE_TYPE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"


# ------------------------------------------------------------------ interpreting engine output (pure)
def _op(op: Any) -> str:
    return str(getattr(op, "value", op))


def urn_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def is_probe(type_: str, urn: str) -> bool:
    """Probe commands re-run (are replaced) when the lock flips, by design (DESIGN.md §5: triggers on
    the lock state); recognised by a ``probe``/``verif`` component type or name in the URN."""
    qualified = urn.split("::", 2)[-1]  # parent types + type + name, without stack and project
    return type_.startswith("command:") and re.search(r"probe|verif", qualified, re.I) is not None


def _summary(result: Any) -> dict[str, int] | None:
    changes = getattr(result, "change_summary", result)
    return None if changes is None else {_op(k): int(n) for k, n in changes.items() if n}


def check_lock_change(result: Any = None, events: Iterable[EngineEvent] = (), *,
                      rerun_ok: Callable[[str, str], bool] = is_probe, expect_change: bool = True) -> list[str]:
    """Violations of "a lock flip only creates, deletes or updates in place egress-rule resources".

    (The lock narrows ``egress-internet`` in place, see model.security_groups.kind_egress_toggle.)
    ``result``: a PreviewResult or its ``change_summary``; ``events``: the preview's engine events
    (ResourcePreEvent metadata: op, type, urn), which attribute each step to a resource. Same/read
    steps are fine; probe commands may re-run (``rerun_ok``); anything else - a replace of anything,
    an update of a host, a group, a release - is a violation.
    """
    steps: dict[str, tuple[str, list[str]]] = {}
    for event in events:
        if event.resource_pre_event is not None:
            meta = event.resource_pre_event.metadata
            steps.setdefault(meta.urn, (meta.type, []))[1].append(_op(meta.op))
    violations, rule_changes, seen = [], 0, {}
    for urn, (type_, ops) in steps.items():
        changing = list(dict.fromkeys(o for o in ops if o not in NO_OPS))
        for op in changing:
            seen[op] = seen.get(op, 0) + 1
        if not changing:
            continue
        if type_ == EGRESS_RULE_TYPE and set(changing) <= RULE_OPS:
            rule_changes += 1
        elif not rerun_ok(type_, urn):
            violations.append(f"{'+'.join(changing)} of {type_} {urn_name(urn)} ({urn})")
    summary = _summary(result)
    if summary is not None and not steps:  # counts only: an update could be any resource's
        violations += [f"{n} x {op} in the change summary (no engine events to attribute it)"
                       for op, n in sorted(summary.items()) if op not in NO_OPS | {"create", "delete"}]
        rule_changes += summary.get("create", 0) + summary.get("delete", 0)
    elif summary is not None:
        violations += [f"change summary reports {n} x {op}, the engine events only {seen.get(op, 0)}"
                       for op, n in sorted(summary.items())
                       if op in RULE_OPS and n > seen.get(op, 0)]
    if expect_change and rule_changes == 0:
        violations.append("no egress-rule resource would be created, updated or deleted: the lock flip changes nothing")
    return violations


def expected_plans(settings: Settings) -> dict[str, probes.Plan]:
    """The model's plan of every selected scenario at its configured stage (expected outcomes do
    not depend on the platform's addresses, so a placeholder address serves)."""
    ctx = scenarios.Context(settings, render.PLACEHOLDER_ADDRESS)
    return {name: probes.plan(name, ctx, settings.stage_of(name)) for name in settings.scenarios}


def compare_verification(verification: Any, expected_locked: bool, settings: Settings) -> list[str]:
    """One line per bad cell (or missing/failed part) of the ``verification`` output, judged against
    the model's plan (model.probes) for ``expected_locked``; empty when everything is as expected."""
    if not isinstance(verification, Mapping):
        return [f"no `verification` output (got {verification!r}): did the last `up` finish?"]
    state = "locked" if expected_locked else "unlocked"
    problems = []
    if verification.get("locked") is not expected_locked:
        problems.append(f"verification.locked is {verification.get('locked')!r}, expected {expected_locked}: "
                        "the probes describe the other lock state")
    reported = verification.get("scenarios") if isinstance(verification.get("scenarios"), Mapping) else {}
    plans = expected_plans(dataclasses.replace(settings, restrict_egress=expected_locked))
    for name, plan in plans.items():
        got_scenario = reported.get(name)
        if not isinstance(got_scenario, Mapping):
            problems.append(f"{name}: no verification reported (expected stage {plan.stage.name})")
            continue
        if got_scenario.get("stage") != plan.stage.name:
            problems.append(f"{name}: probed at stage {got_scenario.get('stage')!r}, expected {plan.stage.name!r}")
        cells = {c.get("probe"): c for c in got_scenario.get("cells") or [] if isinstance(c, Mapping)}
        for p in plan.probes:
            got = cells.pop(p.name, None)
            if got is None:
                problems.append(f"{p.name}: missing (expected {p.expected}, {state})")
            elif got.get("ok") is not True or got.get("observed") != p.expected or got.get("expected") != p.expected:
                problems.append(f"{p.name}: expected {p.expected} ({state}), observed {got.get('observed')} (http "
                                f"{got.get('http_code')}, curl exit {got.get('curl_exit')}); the program expected "
                                f"{got.get('expected')}: {got.get('message', '')}".rstrip(": "))
        problems += [f"{n}: not in the model's plan for {name}" for n in cells]
        problems += [f"{name}: proxy: {x.get('message')}" for x in got_scenario.get("proxy") or []
                     if isinstance(x, Mapping) and x.get("ok") is not True]
    problems += [f"{n}: reported but not selected (scenarios: {list(settings.scenarios)})" for n in reported
                 if n not in plans]
    if verification.get("ok") is not True and not problems:
        problems.append("verification.ok is not true although every cell is as expected")
    return problems


def unexpected_changes(result: Any) -> list[str]:
    """An ``up`` that should have been a no-op (nothing changed in the program or the config):
    every operation in its change summary other than same/read, e.g. ``["1 x update"]``."""
    summary = getattr(result, "summary", result)
    changes = _summary(getattr(summary, "resource_changes", summary)) or {}
    return [f"{n} x {op}" for op, n in sorted(changes.items()) if op not in NO_OPS]


def convergence_problems(verification: Any, window_s: int) -> list[str]:
    """Probes that did not report their attempts, or needed longer than the convergence window."""
    cells = [c for sc in ((verification or {}).get("scenarios") or {}).values() if isinstance(sc, Mapping)
             for c in sc.get("cells") or [] if isinstance(c, Mapping)]
    problems = [f"{c.get('probe')}: no attempts reported" for c in cells if not c.get("attempts")]
    problems += [f"{c.get('probe')}: {c.get('elapsed_s')} s is beyond the {window_s} s window"
                 for c in cells if float(c.get("elapsed_s") or 0) > window_s]
    return problems


def on_host(host: str, private_key: str, command: str, ssh: str = "ssh", timeout: int = 120):
    """Run ``command`` on a lab host over SSH with the stack's key (acceptance only). Returns the
    CompletedProcess; the key is written to a private temporary file and removed."""
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "key"
        key.touch(mode=0o600)
        key.write_text(private_key)
        return subprocess.run([ssh, "-i", str(key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new",
                               "-o", f"UserKnownHostsFile={Path(tmp) / 'known_hosts'}", f"ubuntu@{host}", command],
                              capture_output=True, text=True, timeout=timeout)


_ING = {"create": "creating", "update": "updating", "delete": "deleting", "replace": "replacing",
        "create-replacement": "creating replacement", "delete-replaced": "deleting replaced",
        "import": "importing", "refresh": "refreshing", "read": "reading"}
_DONE = {"create": "created", "update": "updated", "delete": "deleted", "replace": "replaced",
         "create-replacement": "created replacement", "delete-replaced": "deleted replaced",
         "import": "imported", "refresh": "refreshed", "read": "read"}
_COLOR = re.compile(r"<\{%[^%]*%\}>")


def summarise_event(event: EngineEvent) -> str | None:
    """One short progress line for an engine event, or None for events not worth a line."""
    if event.resource_pre_event is not None:
        meta, planning = event.resource_pre_event.metadata, event.resource_pre_event.planning
        op = _op(meta.op)
        if op == "same":
            return None
        verb = f"would {op}" if planning else _ING.get(op, op)
        return f"{verb} {urn_name(meta.urn)} ({meta.type})"
    if event.res_outputs_event is not None:
        meta = event.res_outputs_event.metadata
        op = _op(meta.op)
        if op == "same" or event.res_outputs_event.planning:
            return None
        return f"{_DONE.get(op, op + ' done')} {urn_name(meta.urn)}"
    if event.res_op_failed_event is not None:
        meta = event.res_op_failed_event.metadata
        return f"FAILED {_op(meta.op)} {urn_name(meta.urn)} ({meta.type})"
    diag = event.diagnostic_event
    if diag is not None and diag.severity in ("error", "warning"):
        lines = [ln.strip() for ln in _COLOR.sub("", diag.message).splitlines() if ln.strip()]
        where = f"{urn_name(diag.urn)}: " if diag.urn else ""
        text = " | ".join(lines)
        return f"{diag.severity}: {where}{text[:400]}{'...' if len(text) > 400 else ''}"
    if event.summary_event is not None:
        s = event.summary_event
        changes = sorted((_summary(s.resource_changes) or {}).items())
        counts = ", ".join(f"{n} {op}" for op, n in changes) or "no changes"
        return f"summary: {counts} in {s.duration_seconds} s{' (state may be corrupt!)' if s.maybe_corrupt else ''}"
    return None


def probe_table(verification: Any) -> str:
    """The probes' results as a fixed-width table per scenario (plus the proxy checks and failing
    cells' messages)."""
    if not isinstance(verification, Mapping):
        return "(no verification output)"
    head = ("PROBE", "EXPECTED", "OBSERVED", "HTTP", "EXIT", "TRIES", "RESULT")
    lines = []
    for name, sc in (verification.get("scenarios") or {}).items():
        if not isinstance(sc, Mapping):
            continue
        cells = [c for c in sc.get("cells") or [] if isinstance(c, Mapping)]
        rows = [tuple(str(x) for x in (c.get("probe"), c.get("expected"), c.get("observed"), c.get("http_code") or "-",
                                       "-" if c.get("curl_exit") is None else c["curl_exit"], c.get("attempts", "-"),
                                       "ok" if c.get("ok") is True else "FAIL")) for c in cells]
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        lines.append(f"== {name} (stage {sc.get('stage')}): {'ok' if sc.get('ok') is True else 'FAIL'}")
        lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in [head, *rows]]
        lines += [f"  ! {c.get('message')}" for c in cells if c.get("ok") is not True]
        lines += [f"proxy: {'ok' if x.get('ok') is True else 'FAIL'}: {x.get('message', '')}"
                  for x in sc.get("proxy") or [] if isinstance(x, Mapping)]
    overall = "ok" if verification.get("ok") is True else "FAIL"
    lines.append(f"locked: {verification.get('locked')}   overall: {overall}")
    return "\n".join(lines)


class EventLog:
    """An ``on_event`` callback: keeps the last ``keep`` engine events, echoes one line per event."""

    def __init__(self, keep: int = 300, echo: Callable[[str], None] | None = None):
        self.events: deque[EngineEvent] = deque(maxlen=keep)
        self.echo = echo

    def __call__(self, event: EngineEvent) -> None:
        self.events.append(event)
        line = summarise_event(event)
        if line and self.echo:
            self.echo(line)

    def tail(self, n: int = 60) -> list[str]:
        return [ln for ln in map(summarise_event, list(self.events)) if ln][-n:]


def manual_cleanup_hint(stack_name: str, env: Mapping[str, str], passphrase_file: Path | None = None) -> str:
    """The commands that finish a cleanup that failed (the stack and its state were kept)."""
    backend = env.get("PULUMI_BACKEND_URL")
    exports = (f"export PULUMI_BACKEND_URL={backend}; " if backend else "") + (
        f"unset PULUMI_CONFIG_PASSPHRASE; export PULUMI_CONFIG_PASSPHRASE_FILE={passphrase_file}; "
        if passphrase_file else "")
    return (f"finish the cleanup by hand: cd {PROJECT_DIR}; {exports}pulumi destroy --stack {stack_name} "
            f"--refresh --yes && pulumi stack rm {stack_name} --yes")


