"""The lab through Pulumi's automation API: one module for the acceptance suite and the driver.

Pure helpers: ``preconditions`` and ``settings_from_config`` here; what the engine reports is
interpreted in stacks/engine_output.py (``check_lock_change``, ``compare_verification``,
``summarise_event``, ``probe_table``). Workflow functions drive a
LocalWorkspace over this project directory (a local program, not an inline copy): ``workspace_env``,
``open_stack``, ``configure``, ``set_lock``, ``up``, ``preview``, ``preview_lock_change``,
``verify``, ``destroy_and_remove``. Expected verdicts come from the model's plan (model.probes) only.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from pulumi import automation as auto
from pulumi.automation.events import EngineEvent

from model.platforms import refuse_stack_switch
from model.settings import PROJECT, Settings, load_settings

from .engine_output import (  # noqa: F401 - read as automation.<name> by the driver and the tests
    EGRESS_RULE_TYPE,
    NO_OPS,
    PROJECT_DIR,
    RULE_OPS,
    EventLog,
    check_lock_change,
    compare_verification,
    convergence_problems,
    expected_plans,
    is_probe,
    manual_cleanup_hint,
    on_host,
    probe_table,
    summarise_event,
    unexpected_changes,
    urn_name,
)

DEFAULT_REGION = "eu-central-1"
OPT_IN_VAR = "LAB_ACCEPTANCE"



# ------------------------------------------------------------------ preconditions (pure)
def has_aws_credentials(env: Mapping[str, str], home: Path) -> bool:
    keys = ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE")
    return any(env.get(k) for k in keys) or any((home / ".aws" / f).is_file() for f in ("credentials", "config"))


def preconditions(*, opt_in: bool = True, passphrase: bool = False, env: Mapping[str, str] | None = None,
                  home: Path | None = None, which: Callable[[str], str | None] = shutil.which, aws: bool = True) -> str | None:
    """None when the lab can run here, else why not, first blocker first (``aws`` False: no AWS needed)."""
    env = os.environ if env is None else env
    home = Path.home() if home is None else home
    reasons = []
    if not which("pulumi"):
        reasons.append("no `pulumi` CLI on PATH: install it (https://www.pulumi.com/docs/iac/download-install/) "
                       "so that `pulumi version` works")
    if aws and not has_aws_credentials(env, home):
        reasons.append("no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY, or "
                       "AWS_WEB_IDENTITY_TOKEN_FILE, or run `aws configure` (~/.aws/credentials)")
    if passphrase and "PULUMI_CONFIG_PASSPHRASE" not in env and not env.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
        reasons.append("no PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE): export the passphrase "
                       "that encrypts this stack's secrets")
    if aws and opt_in and env.get(OPT_IN_VAR) != "1":
        reasons.append(f"not opted in: set {OPT_IN_VAR}=1 to run it; it creates billable AWS resources "
                       "(two EC2 instances, two EIPs, two gp3 volumes) for about 30 minutes")
    if not reasons:
        return None
    return reasons[0] + (f" (also: {'; '.join(reasons[1:])})" if len(reasons) > 1 else "")


def settings_from_config(config: Mapping[str, Any]) -> Settings:
    """Settings from a stack's config map (``project:key`` -> ConfigValue or str); ``auto`` left as is."""
    prefix = f"{PROJECT}:"
    raw = {k[len(prefix):]: getattr(v, "value", v) for k, v in config.items() if k.startswith(prefix)}
    return load_settings(raw, resolve_operator_cidr=False)


# ------------------------------------------------------------------ workflow (needs the CLI)
def region_from_env(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def backend_url(env: Mapping[str, str] | None = None) -> str:
    """The backend the CLI will use: PULUMI_BACKEND_URL if set, else Pulumi.yaml's ``backend.url``."""
    env = os.environ if env is None else env
    if env.get("PULUMI_BACKEND_URL"):
        return env["PULUMI_BACKEND_URL"]
    import yaml
    project = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())
    return (project.get("backend") or {}).get("url", "(the CLI's login)")


def needs_passphrase(url: str) -> bool:
    """Self-managed backends (file://, s3://, ...) default to the passphrase secrets provider."""
    return not url.startswith(("https://", "http://", "("))


def workspace_env(backend_dir: str | Path | None = None, passphrase_file: str | Path | None = None) -> dict[str, str]:
    """Extra environment for the workspace. Without ``backend_dir`` the CLI's own precedence applies:
    PULUMI_BACKEND_URL if set, else Pulumi.yaml's ``backend.url`` (file://~). The passphrase is only
    ever named by its file (PULUMI_CONFIG_PASSPHRASE_FILE): this dict travels through tracebacks."""
    env = {"PULUMI_SKIP_UPDATE_CHECK": "true"}
    if backend_dir is not None:
        env["PULUMI_BACKEND_URL"] = f"file://{Path(backend_dir).resolve()}"
    if passphrase_file is not None:
        env["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(Path(passphrase_file).resolve())
    return env


def open_stack(stack_name: str, env: Mapping[str, str], work_dir: Path = PROJECT_DIR,
               secrets_provider: str | None = None, create: bool = True) -> auto.Stack:
    """The stack of the local program in ``work_dir``; ``create=False`` raises StackNotFoundError."""
    opts = auto.LocalWorkspaceOptions(work_dir=str(work_dir), env_vars=dict(env), secrets_provider=secrets_provider)
    open_ = auto.create_or_select_stack if create else auto.select_stack
    return open_(stack_name=stack_name, work_dir=str(work_dir), opts=opts)


def configure(stack: auto.Stack, values: Mapping[str, Any], region: str | None = None) -> None:
    """Set project config keys (camelCase, as in Pulumi.yaml) and, if given, ``aws:region``."""
    text = lambda v: str(v).lower() if isinstance(v, bool) else str(v)  # noqa: E731
    config = {f"{PROJECT}:{k}": auto.ConfigValue(text(v)) for k, v in values.items()}
    if region:
        config["aws:region"] = auto.ConfigValue(region)
    stack.set_all_config(config)


def set_lock(stack: auto.Stack, locked: bool) -> None:
    configure(stack, {"restrictEgress": locked})


def set_stage(stack: auto.Stack, scenario: str, stage: str | None) -> None:
    """``pulumi config set --path stages.<scenario> <stage>`` (None: back to the last stage)."""
    key = f"{PROJECT}:stages.{scenario}"
    if stage is None:
        try:
            stack.remove_config(key, path=True)
        except auto.CommandError:
            pass  # not set: nothing to remove
    else:
        stack.set_config(key, auto.ConfigValue(stage), path=True)


def set_scenarios(stack: auto.Stack, names: Iterable[str]) -> None:
    stack.set_config(f"{PROJECT}:scenarios", auto.ConfigValue(json.dumps(list(names))))


def picture_input(verification: Any, scenario: str) -> dict[str, Any]:
    """One scenario's cells of the ``verification`` output in the verdicts JSON contract (with
    ``observed``), for cilium_verdicts.picture."""
    sc = ((verification or {}).get("scenarios") or {}).get(scenario) or {}
    keys = ("from", "to", "port", "protocol", "via", "request", "verdict", "egress", "ingress", "why")
    cells = [{**{k: c.get(k) for k in keys}, "observed": c.get("observed")}
             for c in sc.get("cells") or [] if isinstance(c, Mapping)]
    workloads = sorted({c[k] for c in cells for k in ("from", "to") if c[k] and not c[k].startswith("world:")})
    return {"workloads": workloads, "cells": cells}


def up(stack: auto.Stack, on_event: Callable[[EngineEvent], None] | None = None) -> auto.UpResult:
    refuse_stack_switch(stack, PROJECT)  # a stack keeps its platform (PlatformSwitchRefused)
    return stack.up(on_event=on_event, color="never")


def preview(stack: auto.Stack, on_event: Callable[[EngineEvent], None] | None = None,
            expect_no_changes: bool = False) -> tuple[auto.PreviewResult, list[EngineEvent]]:
    """Preview; returns the result and this preview's own engine events (also passed to ``on_event``)."""
    refuse_stack_switch(stack, PROJECT)  # a stack keeps its platform (PlatformSwitchRefused)
    events: list[EngineEvent] = []

    def record(event: EngineEvent) -> None:
        events.append(event)
        if on_event:
            on_event(event)
    result = stack.preview(on_event=record, expect_no_changes=expect_no_changes or None, color="never")
    return result, events


def preview_lock_change(stack: auto.Stack, locked: bool,
                        on_event: Callable[[EngineEvent], None] | None = None) -> list[str]:
    """Set restrictEgress, preview, and return the violations of "only egress rules change"."""
    set_lock(stack, locked)
    return check_lock_change(*preview(stack, on_event))


@dataclass
class Verdict:
    verification: Any
    locked: bool
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def report(self) -> str:
        return "\n".join([probe_table(self.verification), *(f"PROBLEM: {p}" for p in self.problems)])


def verify(stack: auto.Stack, expected_locked: bool | None = None) -> Verdict:
    """Judge the stack's ``verification`` output against the matrix for ``expected_locked``
    (default: the deployed ``restrictEgress`` output)."""
    outputs = stack.outputs()
    settings = settings_from_config(stack.get_all_config())
    if expected_locked is None:
        deployed = outputs.get("restrictEgress")
        expected_locked = settings.restrict_egress if deployed is None else bool(deployed.value)
    value = outputs["verification"].value if "verification" in outputs else None
    return Verdict(value, expected_locked, compare_verification(value, expected_locked, settings))


def destroy_and_remove(stack: auto.Stack, on_event: Callable[[EngineEvent], None] | None = None,
                       preserve_config: bool = False, attempts: int = 2) -> None:
    """Destroy every resource (retrying once with a refresh), then remove the stack. Never forces:
    if the destroy keeps failing, the stack and its state stay so nothing is orphaned; raises."""
    for attempt in range(attempts):
        try:
            stack.destroy(on_event=on_event, refresh=attempt > 0 or None, color="never")
            break
        except auto.CommandError:
            if attempt == attempts - 1:
                raise
    stack.workspace.remove_stack(stack.name, preserve_config=preserve_config)
