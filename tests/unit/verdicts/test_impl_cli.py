"""``python -m model verdicts``: JSON shape, table grid, --explain, --scenario hook, exit-2 cases."""
from __future__ import annotations

import json
import re
import textwrap

import pytest

from cilium_verdicts import Probe
from cilium_verdicts.cli import main
from model.__main__ import main as model_main

CELL_KEYS = {"from", "to", "port", "protocol", "via", "request", "verdict", "egress", "ingress", "why"}
APPS = """\
apiVersion: v1
kind: Pod
metadata: {name: a, labels: {app: a}}
spec: {containers: [{name: c, image: x, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b, labels: {app: b}}
spec:
  containers:
  - name: c
    image: x
    ports: [{containerPort: 80}, {containerPort: 53, protocol: UDP, name: dns}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: b-ingress}
spec:
  podSelector: {matchLabels: {app: b}}
  ingress: [{from: [{podSelector: {matchLabels: {app: nobody}}}]}]
"""


@pytest.fixture
def apps(tmp_path):
    path = tmp_path / "apps.yaml"
    path.write_text(APPS)
    return path


def run(capsys, *argv, **kwargs):
    code = main(list(argv), **kwargs)
    out, err = capsys.readouterr()
    return code, out, err


def test_json_shape_is_exact(capsys, apps):
    code, out, err = run(capsys, "-f", str(apps), "--format", "json")
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert set(doc) == {"workloads", "cells"}
    assert doc["workloads"] == ["default/a", "default/b"]
    assert all(set(c) == CELL_KEYS for c in doc["cells"])
    assert [(c["from"], c["to"], c["port"], c["protocol"], c["via"], c["request"], c["verdict"], c["egress"],
             c["ingress"]) for c in doc["cells"]] == [
        ("default/a", "default/b", 53, "UDP", "pod-ip", None, "drop", "allow", "drop:default-deny"),
        ("default/a", "default/b", 80, "TCP", "pod-ip", None, "drop", "allow", "drop:default-deny"),
        ("default/b", "default/a", 80, "TCP", "pod-ip", None, "allow", "allow", "allow")]
    assert all(isinstance(c["why"], list) and c["why"] for c in doc["cells"])


def test_table_is_a_from_by_to_grid(capsys, apps):
    code, out, _ = run(capsys, "-f", str(apps))
    assert code == 0
    assert out == textwrap.dedent("""\
                     1  2
        1 default/a  -  XX
        2 default/b  .  -

        columns: 1 default/a  2 default/b
        legend: . allow  X drop  L l7-deny  D dns-fail  - self or not probed (one symbol per probe, ports ascending)
        3 probes: 1 allow, 2 drop, 0 l7-deny, 0 dns-fail
        """)


def test_explain_prints_the_chain_of_every_probe_of_a_pair_or_one_port(capsys, apps):
    code, out, _ = run(capsys, "-f", str(apps), "--explain", "a", "default/b")
    assert code == 0
    assert out.splitlines()[0] == "default/a->default/b:53/UDP via pod-ip: drop (egress allow, ingress drop:default-deny)"
    assert "  3. ingress default/a -> default/b:53/UDP: no rule allows it: dropped (default deny)" in out.splitlines()
    assert "default/a->default/b:80/TCP via pod-ip" in out
    code, out, _ = run(capsys, "-f", str(apps), "--explain", "a", "b:80")
    assert "53/UDP" not in out and out.startswith("default/a->default/b:80/TCP via pod-ip: drop")
    code, out, _ = run(capsys, "-f", str(apps), "--explain", "b", "a:8080")  # not declared: evaluated anyway
    assert out.startswith("default/b->default/a:8080/TCP via pod-ip: allow")
    code, out, _ = run(capsys, "-f", str(apps), "--explain", "a", "world:example.com:443", "--format", "json")
    cell, = json.loads(out)["cells"]
    assert (cell["to"], cell["via"], cell["port"], cell["verdict"]) == ("world:example.com", "fqdn", 443, "allow")


def test_the_model_cli_forwards_verdicts(capsys, apps):
    assert model_main(["verdicts", "-f", str(apps), "--format", "json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"workloads", "cells"}


def test_warnings_go_to_stderr(capsys, apps, tmp_path):
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    code, out, err = run(capsys, "-f", str(tmp_path), "--format", "json")
    assert code == 0 and json.loads(out)
    assert err == "warning: ConfigMap default/x: kind not evaluated (no effect on connectivity)\n"


def test_scenario_needs_the_packs(capsys, monkeypatch):
    """Without the lab's packs registered (cilium-verdicts installed alone), --scenario says what to do."""
    from cilium_verdicts import cli
    monkeypatch.setattr(cli, "installed_scenario_loader", lambda: None)
    assert run(capsys, "--scenario", "hoot51", "--stage", "l7") == (
        2, "", "error: --scenario needs the lab's scenario packs: install cilium-egress-lab (pip install .) "
               "or run python -m model verdicts in the lab\n")


def test_scenario_loader_supplies_objects_and_probes(capsys):
    def loader(name, stage):
        assert (name, stage) == ("demo", "one")
        objects = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": n, "labels": {"app": n}}} for n in "xy"]
        return objects, [Probe("default/x", "default/y", 8080, request="GET /")]
    code, out, _ = run(capsys, "--scenario", "demo", "--stage", "one", "--format", "json", scenario_loader=loader)
    cell, = json.loads(out)["cells"]
    assert (code, cell["port"], cell["request"], cell["verdict"]) == (0, 8080, "GET /", "allow")


@pytest.mark.parametrize("content, message", [
    ("kind: Pod\nmetadata: {name: x\n", r"bad\.yaml:\d+: YAML syntax error"),
    ("- just\n- a list\n", r"bad\.yaml: document 1 is not a Kubernetes object"),
    ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np}\n"
     "spec: {podSelector: {matchExpressions: [{key: app, operator: Like}]}}\n",
     r"bad\.yaml: NetworkPolicy default/np: matchExpressions entry"),
])
def test_bad_input_exits_2_naming_file_and_object(capsys, tmp_path, content, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    code, out, err = run(capsys, "-f", str(bad))
    assert (code, out) == (2, "")
    assert err.startswith("error: ") and re.search(message, err), err
    assert str(bad) in err


def test_unknown_workload_in_explain_exits_2(capsys, apps):
    code, out, err = run(capsys, "-f", str(apps), "--explain", "nope", "b")
    assert (code, out) == (2, "")
    assert err == "error: unknown workload 'nope'\n"


def test_missing_file_and_no_input_exit_2(capsys, tmp_path):
    code, out, err = run(capsys, "-f", str(tmp_path / "missing.yaml"))
    assert (code, out) == (2, "") and "missing.yaml: no such file or directory" in err
    code, out, err = run(capsys)
    assert (code, out) == (2, "") and err.startswith("error: give -f PATH")
