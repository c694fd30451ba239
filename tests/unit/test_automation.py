"""The pure helpers of stacks/automation.py, fed with engine events and outputs built here (no CLI)."""
from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import pytest
from pulumi.automation import ConfigValue, PreviewResult
from pulumi.automation.events import (
    DiagnosticEvent,
    EngineEvent,
    OpType,
    ResOpFailedEvent,
    ResourcePreEvent,
    ResOutputsEvent,
    StepEventMetadata,
    SummaryEvent,
)

from model import probes
from model.platforms import PlatformSwitchRefused
from model.settings import load_settings
from stacks import automation as lab

RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"  # the contract, not the constant
INSTANCE = "aws:ec2/instance:Instance"
COMMAND = "command:remote:Command"
LOCK = "cilium-egress-lab:network:EgressLock"
_seq = itertools.count()


def urn(type_: str, name: str, parents: str = "", stack: str = "dev") -> str:
    qualified = f"{parents}${type_}" if parents else type_
    return f"urn:pulumi:{stack}::cilium-egress-lab::{qualified}::{name}"


def meta(op, type_, name, parents="", stack="dev") -> StepEventMetadata:
    return StepEventMetadata(op=OpType(op), urn=urn(type_, name, parents, stack), type=type_, provider="")


def pre(op, type_, name, parents="", planning=True, stack="dev") -> EngineEvent:
    return EngineEvent(next(_seq), 0, resource_pre_event=ResourcePreEvent(meta(op, type_, name, parents, stack),
                                                                          planning=planning))


def replace(type_, name, parents="") -> list[EngineEvent]:
    return [pre(op, type_, name, parents) for op in ("create-replacement", "replace", "delete-replaced")]


def lock_flip_events(locked: bool = True) -> list[EngineEvent]:
    """What a preview of flipping restrictEgress reports for this program: egress-internet narrowed
    (or widened) in place, DNS/UDP and NTP created (or deleted), the probes re-run, the rest same."""
    probes = "cilium-egress-lab:verify:Probes"
    return [pre("same", "pulumi:pulumi:Stack", "cilium-egress-lab-dev"),
            pre("same", INSTANCE, "kind-demo-instance"),
            pre("same", LOCK, "kind-demo-sg-lock"),
            pre("update", RULE, "kind-demo-sg-lock-egress-internet", LOCK),
            pre("create" if locked else "delete", RULE, "kind-demo-sg-lock-egress-dns-udp", LOCK),
            pre("create" if locked else "delete", RULE, "kind-demo-sg-lock-egress-ntp", LOCK),
            *replace(COMMAND, "probes-demo-test-deny-control", probes),
            *replace(COMMAND, "probes-demo-proxy-log", probes)]


# ------------------------------------------------------------------ check_lock_change
@pytest.mark.parametrize("locked", [True, False])
def test_the_programs_rule_swap_and_probe_reruns_are_accepted(locked):
    summary = {"update": 1, "create" if locked else "delete": 2, "replace": 2, "same": 3}
    assert lab.check_lock_change(summary, lock_flip_events(locked)) == []
    assert lab.check_lock_change(PreviewResult("", "", summary), lock_flip_events(locked)) == []


def test_an_update_of_an_instance_is_a_violation():
    events = lock_flip_events() + [pre("update", INSTANCE, "proxy-demo-instance")]
    violations = lab.check_lock_change({"create": 2, "update": 2, "replace": 2}, events)
    assert len(violations) == 1
    assert "update" in violations[0] and INSTANCE in violations[0] and "proxy-demo-instance" in violations[0]


def test_a_replace_of_an_instance_is_a_violation():
    events = lock_flip_events() + replace(INSTANCE, "kind-demo-instance")
    [violation] = lab.check_lock_change(None, events)
    assert violation.startswith("create-replacement+replace+delete-replaced of aws:ec2/instance:Instance")


def test_egress_rules_may_not_be_replaced():
    events = lock_flip_events() + replace(RULE, "kind-demo-sg-egress-proxy")
    [violation] = lab.check_lock_change(None, events)
    assert "kind-demo-sg-egress-proxy" in violation and violation.startswith("create-replacement+replace")


def test_other_egress_like_types_do_not_count_as_rules():
    events = [pre("create", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "kind-demo-sg-ingress-x")]
    violations = lab.check_lock_change(None, events)
    assert any("ingress-x" in v for v in violations)
    assert any("changes nothing" in v for v in violations)


def test_same_and_read_steps_are_fine_but_no_change_at_all_is_reported():
    events = [pre("same", INSTANCE, "kind-demo-instance"), pre("read", "aws:ec2/vpc:Vpc", "default")]
    assert lab.check_lock_change({"same": 2}, events) == [
        "no egress-rule resource would be created, updated or deleted: the lock flip changes nothing"]
    assert lab.check_lock_change({"same": 2}, events, expect_change=False) == []


def test_probe_commands_may_rerun_other_commands_may_not():
    probes = "cilium-egress-lab:verify:Probes"
    ok = lock_flip_events() + [pre("update", COMMAND, "probes-demo-test-allow-allowed", probes)]
    assert lab.check_lock_change(None, ok) == []
    bad = lock_flip_events() + replace(COMMAND, "kind-demo-kubeconfig", "cilium-egress-lab:hosts:KindHost")
    [violation] = lab.check_lock_change(None, bad)
    assert "kind-demo-kubeconfig" in violation


def test_a_stack_name_does_not_make_a_command_a_probe():
    assert not lab.is_probe(COMMAND, urn(COMMAND, "kind-demo-kubeconfig", stack="verify-probes"))
    assert lab.is_probe(COMMAND, urn(COMMAND, "x", "cilium-egress-lab:verify:Probes"))
    assert not lab.is_probe(INSTANCE, urn(INSTANCE, "probe-host"))


def test_summary_alone_flags_anything_but_creates_and_deletes_even_rule_updates():
    assert lab.check_lock_change({OpType.CREATE: 2, OpType.DELETE: 1, OpType.SAME: 40}) == []
    violations = lab.check_lock_change({"create": 2, "update": 1, "replace": 2, "same": 40})
    assert violations == ["2 x replace in the change summary (no engine events to attribute it)",
                          "1 x update in the change summary (no engine events to attribute it)"]


def test_summary_reporting_more_than_the_events_is_a_violation():
    violations = lab.check_lock_change({"create": 3, "update": 1}, lock_flip_events())
    assert violations == ["change summary reports 3 x create, the engine events only 2"]


def test_events_as_the_engine_writes_them_in_its_event_log():
    """Camel-case JSON lines, parsed by the SDK's own EngineEvent.from_json."""
    lines = [
        {"sequence": 1, "timestamp": 1, "preludeEvent": {"config": {}}},
        {"sequence": 2, "timestamp": 1, "resourcePreEvent": {"planning": True, "metadata": {
            "op": "delete", "urn": urn(RULE, "kind-demo-sg-lock-egress-dns-udp", LOCK), "type": RULE, "provider": ""}}},
        {"sequence": 3, "timestamp": 1, "resourcePreEvent": {"planning": True, "metadata": {
            "op": "update", "urn": urn("aws:ec2/eip:Eip", "kind-demo-eip"), "type": "aws:ec2/eip:Eip",
            "provider": "", "diffs": ["tags"]}}},
        {"sequence": 4, "timestamp": 2, "summaryEvent": {"maybeCorrupt": False, "durationSeconds": 3,
                                                         "resourceChanges": {"delete": 1, "update": 1, "same": 30}}},
    ]
    events = [EngineEvent.from_json(json.loads(json.dumps(line))) for line in lines]
    summary = events[-1].summary_event.resource_changes
    assert lab.check_lock_change(summary, events) == [
        f"update of aws:ec2/eip:Eip kind-demo-eip ({urn('aws:ec2/eip:Eip', 'kind-demo-eip')})"]
    assert lab.summarise_event(events[-1]) == "summary: 1 delete, 30 same, 1 update in 3 s"


# ------------------------------------------------------------------ compare_verification
SETTINGS = load_settings({"envName": "demo"}, resolve_operator_cidr=False)
MTLS_SETTINGS = load_settings({"envName": "demo", "scenarios": "egress,mtls"}, resolve_operator_cidr=False)
CURL = {"allow": ("200", 0), "drop": ("000", 28), "dns-fail": ("000", 6), "refused": ("000", 56)}


def verification(locked: bool, *, settings=SETTINGS, observe_as: bool | None = None, proxy_ok=True):
    """What the program exports (model.probes.report over the model's plan); ``observe_as`` fakes
    what the network did (the other lock state's outcomes)."""
    seen = dataclasses.replace(settings, restrict_egress=locked if observe_as is None else observe_as)
    plans = lab.expected_plans(dataclasses.replace(settings, restrict_egress=locked))
    stdouts = {}
    for name, plan in lab.expected_plans(seen).items():
        for p in plan.probes:
            code, rc = CURL[p.expected]
            body = json.dumps({"headers": {"x-ssl-client-cn": settings.mtls_client_cn, "x-ssl-client-verify": "0"}})
            stdouts[p.name] = json.dumps({"http_code": code, "curl_exit": rc, "remote_ip": "93.184.215.14",
                                          "body": body if p.check == "mtls-echo" else ""})
    proxy = {p.name: json.dumps({"targets": ["www.roche.com:443"], "connects": ["www.roche.com:443"] if proxy_ok else []})
             for plan in plans.values() for p in plan.probes if p.check == "proxy-log"}
    return probes.report(plans, stdouts, proxy, dataclasses.replace(settings, restrict_egress=locked))


@pytest.mark.parametrize("locked", [False, True])
def test_a_matching_verification_has_no_problems(locked):
    assert lab.compare_verification(verification(locked), locked, SETTINGS) == []


def test_unlocked_results_judged_as_locked_name_the_test_deny_probes():
    problems = lab.compare_verification(verification(False), True, SETTINGS)
    assert problems[0].startswith("verification.locked is False, expected True")
    assert [p.split(":")[0] for p in problems[1:]] == ["egress-test-deny-allowed", "egress-test-deny-control"]
    assert "expected drop (locked)" in problems[1] and "observed allow" in problems[1]


def test_an_open_security_group_while_locked_is_caught():
    """The program says locked, but test-deny still gets out (the egress rules did not apply)."""
    problems = lab.compare_verification(verification(True, observe_as=False), True, SETTINGS)
    assert len(problems) == 2 and all(p.startswith("egress-test-deny-") for p in problems)
    assert "curl exit 0" in problems[0]


def test_missing_cells_proxy_failure_stage_and_no_output_are_problems():
    v = verification(False, proxy_ok=False)
    cells = v["scenarios"]["egress"]["cells"]
    v["scenarios"]["egress"]["cells"] = [c for c in cells if c["probe"] != "egress-test-allow-control"]
    problems = lab.compare_verification(v, False, SETTINGS)
    assert problems[0] == "egress-test-allow-control: missing (expected dns-fail, unlocked)"
    assert problems[1].startswith("egress: proxy: proxy logged no CONNECT www.roche.com:443")
    v["scenarios"]["egress"]["stage"] = "open"
    assert "egress: probed at stage 'open', expected 'proxy-policy'" in lab.compare_verification(v, False, SETTINGS)
    assert lab.compare_verification(None, False, SETTINGS)[0].startswith("no `verification` output")


def test_every_selected_scenario_must_be_reported_and_ok():
    assert lab.compare_verification(verification(True, settings=MTLS_SETTINGS), True, MTLS_SETTINGS) == []
    assert lab.compare_verification(verification(True), True, MTLS_SETTINGS) == [
        "mtls: no verification reported (expected stage mtls-injection)"]
    v = verification(True, settings=MTLS_SETTINGS)
    plain = next(c for c in v["scenarios"]["mtls"]["cells"] if c["probe"] == "mtls-inject-plain")
    plain.update(observed="refused", curl_exit=56, ok=False, message="certificate required")
    [problem] = lab.compare_verification(v, True, MTLS_SETTINGS)
    assert problem.startswith("mtls-inject-plain: expected allow (locked), observed refused")


# ------------------------------------------------------------------ summarise_event, probe_table, EventLog
def test_summarise_resource_steps():
    assert lab.summarise_event(pre("create", INSTANCE, "kind-demo-instance", planning=False)) == \
        "creating kind-demo-instance (aws:ec2/instance:Instance)"
    assert lab.summarise_event(pre("create", INSTANCE, "kind-demo-instance")) == \
        "would create kind-demo-instance (aws:ec2/instance:Instance)"
    assert lab.summarise_event(pre("same", INSTANCE, "kind-demo-instance", planning=False)) is None
    step = meta("delete", RULE, "kind-demo-sg-lock-egress-dns-udp")
    done = EngineEvent(1, 0, res_outputs_event=ResOutputsEvent(step))
    assert lab.summarise_event(done) == "deleted kind-demo-sg-lock-egress-dns-udp"
    step = meta("create", INSTANCE, "kind-demo-instance")
    failed = EngineEvent(2, 0, res_op_failed_event=ResOpFailedEvent(step, 1, 1))
    assert lab.summarise_event(failed) == "FAILED create kind-demo-instance (aws:ec2/instance:Instance)"


def test_summarise_diagnostics_and_summary():
    error = DiagnosticEvent("<{%fg 1%}>probe test-deny->control: expected blocked<{%reset%}>\n\n  observed reachable\n",
                            "never", "error", urn=urn(COMMAND, "kind-demo-probes"))
    assert lab.summarise_event(EngineEvent(1, 0, diagnostic_event=error)) == \
        "error: kind-demo-probes: probe test-deny->control: expected blocked | observed reachable"
    info = DiagnosticEvent("downloading plugin", "never", "info")
    assert lab.summarise_event(EngineEvent(2, 0, diagnostic_event=info)) is None
    summary = SummaryEvent(False, 754, {OpType.CREATE: 41, OpType.SAME: 0}, {})
    assert lab.summarise_event(EngineEvent(3, 0, summary_event=summary)) == "summary: 41 create in 754 s"
    corrupt = SummaryEvent(True, 1, {}, {})
    assert lab.summarise_event(EngineEvent(4, 0, summary_event=corrupt)) == \
        "summary: no changes in 1 s (state may be corrupt!)"


def test_probe_table_is_aligned_and_shows_failures():
    v = verification(True, observe_as=False)
    lines = lab.probe_table(v).splitlines()
    assert lines[0] == "== egress (stage proxy-policy): FAIL"
    assert lines[1].split() == ["PROBE", "EXPECTED", "OBSERVED", "HTTP", "EXIT", "TRIES", "RESULT"]
    column = lambda name: [ln[lines[1].index(name):].split()[0] for ln in lines[2:6]]  # noqa: E731
    assert column("EXPECTED") == ["allow", "dns-fail", "drop", "drop"]
    assert column("OBSERVED") == ["allow", "dns-fail", "allow", "allow"]
    assert lines[4].split()[-1] == "FAIL" and lines[2].split()[-1] == "ok"
    assert sum(ln.startswith("  ! egress-test-deny-") for ln in lines) == 2
    assert lines[-2].startswith("proxy: ok") and lines[-1].endswith("overall: FAIL")
    assert lab.probe_table(None) == "(no verification output)"


def test_the_picture_input_is_the_verdicts_contract_with_observed():
    v = verification(True, observe_as=False)
    pic = lab.picture_input(v, "egress")
    assert pic["workloads"] == ["test-allow/curl", "test-deny/curl"]
    assert set(pic["cells"][0]) == {"from", "to", "port", "protocol", "via", "request", "verdict", "egress",
                                    "ingress", "why", "observed"}
    assert [(c["verdict"], c["observed"]) for c in pic["cells"]] == [
        ("allow", "allow"), ("dns-fail", "dns-fail"), ("allow", "allow"), ("allow", "allow"), ("drop", "drop"),
        ("drop", "drop")]


def test_event_log_keeps_the_last_events_and_echoes_lines():
    echoed = []
    log = lab.EventLog(keep=2, echo=echoed.append)
    for name in ("a", "b", "c"):
        log(pre("create", RULE, name, planning=False))
    log(pre("same", RULE, "d", planning=False))
    assert [e.resource_pre_event.metadata.urn.rsplit("::", 1)[1] for e in log.events] == ["c", "d"]
    assert len(echoed) == 3 and log.tail() == [f"creating c ({RULE})"]


# ------------------------------------------------------------------ preconditions, config, environment
def test_preconditions_name_the_first_blocker_and_what_to_do(tmp_path):
    no_cli = lab.preconditions(env={}, home=tmp_path, which=lambda _: None)
    assert no_cli.startswith("no `pulumi` CLI on PATH: install it") and "(also: no AWS credentials" in no_cli
    assert "LAB_ACCEPTANCE=1" in no_cli
    cli = lambda _: "/usr/bin/pulumi"  # noqa: E731
    assert lab.preconditions(env={}, home=tmp_path, which=cli).startswith("no AWS credentials: set AWS_PROFILE")
    only_opt_in = lab.preconditions(env={"AWS_PROFILE": "lab"}, home=tmp_path, which=cli)
    assert only_opt_in.startswith("not opted in: set LAB_ACCEPTANCE=1") and "(also" not in only_opt_in
    assert lab.preconditions(env={"AWS_PROFILE": "lab", "LAB_ACCEPTANCE": "1"}, home=tmp_path, which=cli) is None
    assert lab.preconditions(env={"LAB_ACCEPTANCE": "yes", "AWS_PROFILE": "x"}, home=tmp_path, which=cli) \
        .startswith("not opted in")


def test_credentials_files_count_and_the_driver_needs_a_passphrase_not_an_opt_in(tmp_path):
    cli = lambda _: "/usr/bin/pulumi"  # noqa: E731
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "config").write_text("[default]\nregion = eu-central-1\n")
    assert lab.preconditions(opt_in=False, env={}, home=tmp_path, which=cli) is None
    assert lab.preconditions(opt_in=False, passphrase=True, env={}, home=tmp_path, which=cli) \
        .startswith("no PULUMI_CONFIG_PASSPHRASE")
    assert lab.preconditions(opt_in=False, passphrase=True, env={"PULUMI_CONFIG_PASSPHRASE": ""},
                             home=tmp_path, which=cli) is None


def test_settings_from_a_stack_config_map():
    s = lab.settings_from_config({"aws:region": ConfigValue("eu-central-1"),
                                  "cilium-egress-lab:restrictEgress": ConfigValue("true"),
                                  "cilium-egress-lab:envName": "acc-1234"})
    assert (s.restrict_egress, s.env_name, s.operator_cidr) == (True, "acc-1234", "auto")


def test_workspace_environment_and_backend(tmp_path):
    env = lab.workspace_env(tmp_path / "state", tmp_path / "passphrase")
    assert env["PULUMI_BACKEND_URL"] == f"file://{(tmp_path / 'state').resolve()}"
    assert env["PULUMI_CONFIG_PASSPHRASE_FILE"] == str(tmp_path / "passphrase")
    assert "PULUMI_CONFIG_PASSPHRASE" not in env
    assert "PULUMI_BACKEND_URL" not in lab.workspace_env()
    assert lab.backend_url({}) == "file://~"  # Pulumi.yaml's
    assert lab.backend_url({"PULUMI_BACKEND_URL": "s3://bucket"}) == "s3://bucket"
    assert lab.needs_passphrase("file://~") and not lab.needs_passphrase("https://api.pulumi.com")
    assert lab.region_from_env({}) == "eu-central-1"
    assert lab.region_from_env({"AWS_DEFAULT_REGION": "eu-west-1", "AWS_REGION": "us-east-2"}) == "us-east-2"
    hint = lab.manual_cleanup_hint("acc-1", env, Path("/tmp/x/passphrase"))
    assert "pulumi destroy --stack acc-1" in hint and env["PULUMI_BACKEND_URL"] in hint


# ------------------------------------------------------------------ the cleanup guarantee and the driver's lock guard
class FakeWorkspace:
    def __init__(self):
        self.removed = []

    def remove_stack(self, name, preserve_config=None):
        self.removed.append((name, preserve_config))


class FakeStack:
    """Just enough of auto.Stack: records calls, fails ``destroy`` ``failures`` times."""

    def __init__(self, failures=0, outputs=None, preview_events=()):
        self.name, self.workspace, self.failures = "acc-1", FakeWorkspace(), failures
        self.destroys, self.config, self.ups = [], {}, 0
        self._outputs, self._preview_events = outputs or {}, list(preview_events)

    def destroy(self, on_event=None, refresh=None, color=None):
        self.destroys.append(refresh)
        if len(self.destroys) <= self.failures:
            raise lab.auto.CommandError(lab.auto.CommandResult("", "error: DependencyViolation", 255))

    def set_all_config(self, config):
        self.config.update({k: v.value for k, v in config.items()})

    def preview(self, on_event=None, expect_no_changes=None, color=None):
        for event in self._preview_events:
            on_event(event)
        return PreviewResult("", "", {})

    def outputs(self):
        return self._outputs

    def get_all_config(self):
        return dict(self.config)

    def up(self, **kwargs):
        self.ups += 1


def test_destroy_retries_with_refresh_then_removes_the_stack():
    stack = FakeStack(failures=1)
    lab.destroy_and_remove(stack)
    assert stack.destroys == [None, True] and stack.workspace.removed == [("acc-1", False)]


def test_a_failing_destroy_keeps_the_stack_so_nothing_is_orphaned():
    stack = FakeStack(failures=2)
    with pytest.raises(lab.auto.CommandError):
        lab.destroy_and_remove(stack)
    assert stack.destroys == [None, True] and stack.workspace.removed == []


def test_driver_refuses_a_lock_that_would_touch_an_instance_and_restores_the_config(capsys):
    from pulumi.automation import OutputValue

    from stacks import driver
    stack = FakeStack(outputs={"restrictEgress": OutputValue(False, False)},
                      preview_events=lock_flip_events() + [pre("update", INSTANCE, "kind-demo-instance")])
    args = driver.parse_args(["lock"])
    assert driver.cmd_lock(stack, args, lab.EventLog()) == 1
    assert stack.ups == 0 and stack.config["cilium-egress-lab:restrictEgress"] == "false"
    assert "refused" in capsys.readouterr().err


def test_driver_destroy_keeps_the_stack_config_file():
    from stacks import driver
    stack = FakeStack()
    assert driver.cmd_destroy(stack, driver.parse_args(["destroy"]), lab.EventLog()) == 0
    assert stack.workspace.removed == [("acc-1", True)]


def test_an_up_that_should_be_a_no_op_reports_every_change():
    assert lab.unexpected_changes({"same": 60, "read": 1}) == []
    assert lab.unexpected_changes({"same": 58, "update": 1, "replace": 1}) == ["1 x replace", "1 x update"]


def test_probes_must_report_attempts_and_stay_inside_the_window(locked):
    v = locked.outputs["verification"]
    assert lab.convergence_problems(v, 180) == []
    cells = v["scenarios"]["egress"]["cells"]
    slow = {**v, "scenarios": {"egress": {**v["scenarios"]["egress"], "cells": [
        {**cells[0], "elapsed_s": 200.5}, {**cells[1], "attempts": None}]}}}
    assert lab.convergence_problems(slow, 180) == [
        "egress-test-allow-control: no attempts reported", "egress-test-allow-allowed: 200.5 s is beyond the 180 s window"]


class TourStack(FakeStack):
    """A stack whose `up` 'deploys' the configured stage: its outputs are what the program would
    export if every probe saw what the model expects (so the tour's bookkeeping is what is tested)."""

    def __init__(self, config):
        super().__init__()
        self.config = dict(config)

    def get_all_config(self):
        return {k: ConfigValue(v) for k, v in self.config.items()}

    def set_config(self, key, value, path=False):
        if path and ":stages." not in key:
            raise AssertionError(key)
        if path:
            stages = json.loads(self.config.get("cilium-egress-lab:stages", "{}"))
            stages[key.split("stages.", 1)[1]] = value.value
            self.config["cilium-egress-lab:stages"] = json.dumps(stages)
        else:
            self.config[key] = value.value

    def remove_config(self, key, path=False):
        stages = json.loads(self.config.get("cilium-egress-lab:stages", "{}"))
        if stages.pop(key.split("stages.", 1)[1], None) is None:
            raise lab.auto.CommandError(lab.auto.CommandResult("", "error: configuration key not found", 255))
        self.config["cilium-egress-lab:stages"] = json.dumps(stages)

    def up(self, **kwargs):
        from pulumi.automation import OutputValue
        self.ups += 1
        settings = lab.settings_from_config(self.get_all_config())
        self._outputs = {"verification": OutputValue(verification(settings.restrict_egress, settings=settings), False),
                         "restrictEgress": OutputValue(settings.restrict_egress, False)}


def test_driver_tour_walks_every_stage_writes_a_report_and_an_svg_each_and_restores(tmp_path, capsys):
    import xml.etree.ElementTree as ET

    from stacks import driver
    stack = TourStack({"cilium-egress-lab:scenarios": '["egress"]'})
    args = driver.parse_args(["tour", "stars", "--out", str(tmp_path), "--yes"])
    assert driver.cmd_tour(stack, args, lab.EventLog()) == 0
    names = ["open", "default-deny", "backend-policy", "allow-ui", "frontend-policy"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{i:02d}-{n}.{ext}" for i, n in enumerate(names, 1) for ext in ("svg", "txt"))
    final = ET.parse(tmp_path / "05-frontend-policy.svg").getroot()
    probes_drawn = [e for e in final.iter() if e.get("class") == "probe"]
    assert len(probes_drawn) == 9 and all(e.get("data-observed") == e.get("data-verdict") for e in probes_drawn)
    assert "== stars (stage frontend-policy): ok" in (tmp_path / "05-frontend-policy.txt").read_text()
    out = capsys.readouterr().out
    assert "[1/5] stars: stage open: pulumi up" in out and "[5/5] stars: stage frontend-policy: 9/9 probes" in out
    # restored: stars was not selected before the tour, and no stage was set
    assert json.loads(stack.config["cilium-egress-lab:scenarios"]) == ["egress"]
    assert json.loads(stack.config["cilium-egress-lab:stages"]) == {}
    assert stack.ups == 6  # five stages and the restore


# ------------------------------------------------------------------ the driver asks before it spends (issue 15)
class CostStack(FakeStack):
    """FakeStack with a stack config (Pulumi.<stack>.yaml as the automation API returns it)."""

    def __init__(self, config=None):
        super().__init__()
        self._config = {"aws:region": ConfigValue("eu-central-1"),
                        "cilium-egress-lab:envName": ConfigValue("demo"), **(config or {})}

    def get_all_config(self):
        return self._config

    def set_config(self, key, value, path=False):
        self.config[key] = value.value


def answering(monkeypatch, answer):
    asked = []

    def fake_input(prompt):
        asked.append(prompt)
        if isinstance(answer, BaseException):
            raise answer
        return answer
    monkeypatch.setattr("builtins.input", fake_input)
    return asked


def test_driver_up_prints_the_cost_and_stops_unless_confirmed(capsys, monkeypatch):
    from stacks import driver
    asked = answering(monkeypatch, "n")
    stack = CostStack()
    assert driver.cmd_up(stack, driver.parse_args(["up", "--scenarios", "egress,mtls"]), lab.EventLog()) == 1
    out, err = capsys.readouterr()
    assert stack.ups == 0 and asked == ["Proceed? [y/N] "]
    assert out.startswith("Cost estimate (stack acc-1, region eu-central-1, on-demand USD")
    assert "total" in out and "118.68" in out and "ceiling: within maxMonthlyCostUsd 150" in out
    assert "not confirmed: nothing was changed" in err
    assert "cilium-egress-lab:scenarios" not in stack.config  # declined: the config is untouched too


@pytest.mark.parametrize("answer", ["y", "YES "])
def test_driver_up_proceeds_when_confirmed(capsys, monkeypatch, answer):
    from stacks import driver
    answering(monkeypatch, answer)
    stack = CostStack()
    driver.cmd_up(stack, driver.parse_args(["up", "--scenarios", "egress,mtls"]), lab.EventLog())
    assert stack.ups == 1 and json.loads(stack.config["cilium-egress-lab:scenarios"]) == ["egress", "mtls"]


def test_driver_yes_skips_the_question_and_no_terminal_is_a_no(capsys, monkeypatch):
    from stacks import driver
    asked = answering(monkeypatch, EOFError())
    stack = CostStack()
    assert driver.cmd_up(stack, driver.parse_args(["up"]), lab.EventLog()) == 1 and stack.ups == 0
    driver.cmd_up(stack, driver.parse_args(["up", "--yes"]), lab.EventLog())
    assert stack.ups == 1 and len(asked) == 1
    assert capsys.readouterr().out.count("Cost estimate") == 2  # printed either way


def test_driver_says_what_it_cannot_price_and_still_asks(capsys, monkeypatch):
    from stacks import driver
    answering(monkeypatch, "n")
    stack = CostStack({"cilium-egress-lab:kindInstanceType": ConfigValue("c7i.large")})
    assert driver.cmd_up(stack, driver.parse_args(["up"]), lab.EventLog()) == 1
    assert "cost: cannot estimate the cost:\n  - kindInstanceType: 'c7i.large' is not in the price table" in \
        capsys.readouterr().out


def test_driver_tour_asks_too(capsys, monkeypatch):
    from stacks import driver
    answering(monkeypatch, "")
    stack = CostStack()
    assert driver.cmd_tour(stack, driver.parse_args(["tour", "hoot51"]), lab.EventLog()) == 1
    assert stack.ups == 0 and stack.config == {}


# ------------------------------------------------------------------ a stack keeps its platform
@pytest.mark.parametrize("outputs,config,refused", [
    ({}, {"cilium-egress-lab:platform": "local"}, None),                         # a new stack: any platform
    ({"platform": "local"}, {"cilium-egress-lab:platform": "local"}, None),
    ({"platform": "aws", "kubeconfig": "x"}, {"cilium-egress-lab:platform": "local"}, ("aws", "local")),
    ({"kubeconfig": "x"}, {"cilium-egress-lab:platform": "existing",            # deployed before platforms: aws
                           "cilium-egress-lab:kubeconfigPath": "/k", "cilium-egress-lab:scenarios": '["stars"]'},
     ("aws", "existing")),
    ({"platform": "local"}, {}, ("local", "aws")),                               # unset: the default, aws
])
def test_switching_platform_is_refused_before_preview_or_up(outputs, config, refused):
    from pulumi.automation import OutputValue
    stack = FakeStack(outputs={k: OutputValue(v, False) for k, v in outputs.items()})
    stack.config = {**config}
    if refused is None:
        lab.up(stack)
        assert stack.ups == 1
        return
    for op in (lab.up, lab.preview):
        with pytest.raises(PlatformSwitchRefused) as exc:
            op(stack)
        assert f"deployed with platform {refused[0]!r}" in str(exc.value)
        assert f"switching it to {refused[1]!r}" in str(exc.value)
    assert stack.ups == 0


def _acceptance(platform, env, which):
    from model.platforms import acceptance_problems
    return acceptance_problems(platform, env, which)


def test_platform_acceptance_runs_skip_naming_what_is_missing():
    which = lambda tools: (lambda t: f"/bin/{t}" if t in tools else None)  # noqa: E731
    assert _acceptance("local", {}, which({"pulumi", "docker", "kind", "kubectl", "helm"})) is None
    assert _acceptance("local", {}, which({"pulumi", "podman", "kind", "kubectl", "helm"})) is None
    reason = _acceptance("local", {}, which({"pulumi", "docker", "kubectl"}))
    assert reason.startswith("kind is not on PATH") and "helm is not on PATH" in reason
    assert "no `pulumi` CLI" in _acceptance("local", {}, which({"docker", "kind", "kubectl", "helm"}))
    assert "LAB_EXISTING_KUBECONFIG" in _acceptance("existing", {}, which({"pulumi", "kubectl"}))
    assert _acceptance("existing", {"LAB_EXISTING_KUBECONFIG": "/k"}, which({"pulumi", "kubectl"})) is None
    # no AWS credentials needed off aws
    assert lab.preconditions(opt_in=True, env={}, home=__import__("pathlib").Path("/nonexistent"),
                             which=which({"pulumi"}), aws=False) is None
