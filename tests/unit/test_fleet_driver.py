"""stacks/fleet_driver.py: one stack per cluster group, a bounded worker pool, a progress line per stack
(fake stacks, as tests/unit/test_automation.py does; no CLI, no cloud, no timed asserts)."""
from __future__ import annotations

import threading

import pytest
from pulumi.automation import OutputValue

from stacks import automation as lab
from stacks import fleet_driver


def test_the_pool_runs_at_most_w_stacks_at_once_and_reaches_w():
    workers, lock, running, peak = 3, threading.Lock(), [0], [0]
    barrier = threading.Barrier(workers, timeout=20)  # passes only when W stacks run together

    def run_one(name):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        barrier.wait()
        with lock:
            running[0] -= 1
        return True, f"fleet: 2/2 clusters verified ({name})"
    lines = []
    results = fleet_driver.run_groups(fleet_driver.group_names("fleet", 6), run_one, workers, lines.append)
    assert peak[0] == workers
    assert [r.stack for r in results] == [f"fleet-g0{i}" for i in range(1, 7)] and all(r.ok for r in results)
    started = [ln for ln in lines if ln.endswith(": started")]
    finished = [ln for ln in lines if " done] " in ln]
    assert len(started) == 6 and len(finished) == 6
    assert {ln.split("] ")[1].split(":")[0] for ln in finished} == {r.stack for r in results}
    assert [ln.split(" done]")[0] for ln in finished] == [f"[{i}/6" for i in range(1, 7)]
    assert fleet_driver.overall(results) == "groups: 6/6 ok"


def test_a_failing_stack_is_reported_and_the_others_go_on():
    def run_one(name):
        if name == "fleet-g02":
            raise lab.auto.CommandError(lab.auto.CommandResult("", "error: quota exceeded\n", 255))
        return (name != "fleet-g03"), "fleet: 1/2 clusters verified" if name == "fleet-g03" else "ok"
    lines = []
    results = fleet_driver.run_groups(fleet_driver.group_names("fleet", 4), run_one, 2, lines.append)
    assert [r.ok for r in results] == [True, False, False, True]
    assert "quota exceeded" in results[1].summary
    assert any("fleet-g02: FAILED" in ln for ln in lines)
    assert fleet_driver.overall(results) == "groups: 2/4 ok; failed: fleet-g02, fleet-g03"


class FakeGroupStack:
    """Just enough of auto.Stack for one group: records config and ups, answers the fleet outputs."""

    def __init__(self, name, registry):
        self.name, self.config, self.ups, self.registry = name, {}, 0, registry

    def set_all_config(self, config):
        self.config.update({k: v.value for k, v in config.items()})

    def get_all_config(self):  # read by automation.up: a stack keeps its platform
        return dict(self.config)

    def up(self, **kwargs):
        self.ups += 1

    def outputs(self):
        n = int(self.config.get("cilium-egress-lab:edgeClusters", 0))
        return {"verification": OutputValue({"ok": True}, False),
                "fleetSummary": OutputValue(f"fleet: {n}/{n} clusters verified, {6 * n}/{6 * n} probes as expected",
                                            False)}


def test_driver_up_configures_each_group_stack_and_prints_a_line_per_stack(monkeypatch, capsys):
    stacks = {}

    def open_stack(name, env, create=True):
        assert create
        return stacks.setdefault(name, FakeGroupStack(name, stacks))
    monkeypatch.setattr(lab, "open_stack", open_stack)
    monkeypatch.setattr(lab, "workspace_env", lambda: {})
    runner = lambda command, clusters, region, echo: fleet_driver.stack_runner(command, clusters, "eu-central-1", echo)  # noqa: E731
    rc = fleet_driver.main(["up", "--groups", "3", "--clusters-per-group", "2", "--workers", "2", "--yes"], runner=runner)
    out = capsys.readouterr().out
    assert rc == 0
    assert sorted(stacks) == ["fleet-g01", "fleet-g02", "fleet-g03"]
    for s in stacks.values():
        assert s.ups == 1 and s.config["cilium-egress-lab:edgeClusters"] == "2"
        assert s.config["aws:region"] == "eu-central-1"
    assert out.count("fleet: 2/2 clusters verified, 12/12 probes as expected") == 3
    assert out.count(": started") == 3 and "groups: 3/3 ok" in out


@pytest.mark.parametrize("argv, message", [
    (["up", "--groups", "0"], "--groups 0: accepted: 1..999"),
    (["up", "--groups", "2", "--clusters-per-group", "21"], "accepted: 1..20"),
    (["up", "--groups", "2", "--workers", "17"], "--workers 17: accepted: 1..16"),
])
def test_driver_refuses_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        fleet_driver.main(argv, runner=lambda *a: (lambda name: (True, "")))
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_driver_up_asks_and_no_answer_is_a_no(monkeypatch, capsys):
    ran = []
    monkeypatch.setattr("builtins.input", lambda prompt: (_ for _ in ()).throw(EOFError()))
    rc = fleet_driver.main(["up", "--groups", "2"], runner=lambda *a: (lambda name: ran.append(name) or (True, "")))
    assert rc == 1 and ran == [] and "not confirmed" in capsys.readouterr().err
