"""The scenario architecture (issue 13): the registry, every stage of every pack valid for Cilium and
Kubernetes, the verdicts CLI per stage (the JSON contract; hoot51 reproduces the seed), and the
stack: switching a stage changes only policy resources and probes; all packs deploy together."""
from __future__ import annotations

import json

import pytest

import scenarios
from model import lint, probes
from model.__main__ import main as model_cli
from model.settings import load_settings
from scenarios import Context
from tests.validation import validate_core, validate_cr

from .harness import PROXY_IP, ok_program
from .scenarios.test_hoot51 import STAGE_NAMES as HOOT_STAGES
from .scenarios.test_hoot51 import _expected as hoot_expected

SETTINGS = load_settings({"operatorCidr": "198.51.100.7/32"}, resolve_operator_cidr=False)
CTX = Context(SETTINGS, PROXY_IP)
ALL = ["egress", "mtls", "hoot51", "eks-retail", "stars"]  # the single-cluster packs (one stack deploys them all)
MESH = ["stars-mesh"]  # packs that need two clusters (tests/unit/scenarios/test_stars_mesh.py)
CELL_KEYS = {"from", "to", "port", "protocol", "via", "request", "verdict", "egress", "ingress", "why"}


def test_the_registry_names_every_pack_and_its_stages_in_order():
    assert list(scenarios.PACKS) == ALL + MESH
    for name, pack in scenarios.PACKS.items():
        assert pack.NAME == name and [s.name for s in pack.stages(CTX)] == list(scenarios.STAGE_NAMES[name])
        assert scenarios.stage(name, CTX).name == scenarios.STAGE_NAMES[name][-1]  # default: the last
    with pytest.raises(ValueError, match="accepted: open, proxy-policy"):
        scenarios.stage("egress", CTX, "nope")


@pytest.mark.parametrize("name", ALL)
def test_every_stage_is_valid_for_cilium_and_kubernetes(name):
    pack = scenarios.PACKS[name]
    workloads = pack.workloads(CTX)
    for obj in workloads + list(getattr(pack, "secret_objects", lambda c: [])(CTX)):
        assert validate_core(obj) == [], (name, obj["kind"], obj["metadata"])
    for stage in pack.stages(CTX):
        for obj in stage.objects:
            errors = validate_cr(obj) if obj["apiVersion"].startswith("cilium.io/") else validate_core(obj)
            assert errors == [], (name, stage.name, obj["metadata"]["name"], errors)
        assert lint.check(stage.objects) == [], (name, stage.name)
        plan = probes.plan(name, CTX, stage.name)  # every probe's source can run it, names unique
        for p in plan.probes:
            probes.command(p, plan.workloads, 0)


@pytest.mark.parametrize("stage", HOOT_STAGES)
def test_verdicts_cli_reproduces_every_hoot51_stage_of_the_seed(stage, capsys):
    """`python -m model verdicts --scenario hoot51 --stage S --format json`: the exact JSON contract,
    and every cell the seed's stated outcome (tests/unit/scenarios/test_hoot51.py's table)."""
    assert model_cli(["verdicts", "--scenario", "hoot51", "--stage", stage, "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"workloads", "cells"}
    assert out["workloads"] == ["default/httpbin", "default/sleep", "sleep/notsleep", "sleep/sleep"]
    want = hoot_expected(stage)
    assert len(out["cells"]) == len(want) == 18
    for cell in out["cells"]:
        assert set(cell) == CELL_KEYS
        assert (cell["to"], cell["port"], cell["protocol"]) == ("default/httpbin", 8000, "TCP")
        assert cell["verdict"] == want[(cell["from"], cell["via"], cell["request"])][0], cell


def test_verdicts_cli_rejects_an_unknown_stage_naming_it(capsys):
    assert model_cli(["verdicts", "--scenario", "hoot51", "--stage", "nope"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "nope" in captured.err and "deny-sleep-egress" in captured.err


# ------------------------------------------------------------------ in the stack (mocks)
def test_switching_a_stage_changes_only_policy_resources_and_probes():
    """`pulumi config set --path stages.hoot51 deny-sleep-egress && pulumi up`: the workloads stay;
    the stage's policy resources are created/deleted/updated; the probes re-run."""
    a = ok_program({"scenarios": ["hoot51"], "stages": {"hoot51": "allow-ns-ingress"}})
    b = ok_program({"scenarios": ["hoot51"], "stages": {"hoot51": "deny-sleep-egress"}})
    ra, rb = ({(r.type, r.name): r.inputs for r in p.resources} for p in (a, b))
    changed = {k for k in ra.keys() & rb.keys() if ra[k] != rb[k]} | (ra.keys() ^ rb.keys())
    policy = {k for k in changed if k[0] == "kubernetes:networking.k8s.io/v1:NetworkPolicy"}
    probe_steps = {k for k in changed if k[0] == "command:remote:Command" and k[1].startswith("probes-hoot51-")}
    assert changed == policy | probe_steps
    assert {k[1] for k in rb.keys() - ra.keys()} == {"hoot51-demo-networkpolicy-default-deny-sleep-egress"}
    assert all(ra[k]["triggers"] != rb[k]["triggers"] for k in probe_steps)
    assert b.outputs["stages"] == {"hoot51": "deny-sleep-egress"}
    cells = {(c["from"], c["via"], c["request"]): c["observed"]
             for c in b.outputs["verification"]["scenarios"]["hoot51"]["cells"]}
    # seed: "If we retry the above request, it will fail" (deny-sleep-egress: no DNS, no egress)
    assert cells[("default/sleep", "service-name", "GET /headers")] == "dns-fail"
    assert cells[("default/sleep", "service-ip", "GET /headers")] == "drop"


def test_all_packs_deploy_together_and_verify():
    p = ok_program({"scenarios": ALL})
    v = p.outputs["verification"]
    assert v["ok"] is True and list(v["scenarios"]) == ALL
    assert p.outputs["stages"] == {n: scenarios.STAGE_NAMES[n][-1] for n in ALL}
    kinds = {r.type for r in p.resources}
    assert {"kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet", "kubernetes:core/v1:Service",
            "kubernetes:networking.k8s.io/v1:NetworkPolicy", "kubernetes:cilium.io/v2:CiliumNetworkPolicy",
            "kubernetes:cilium.io/v2:CiliumClusterwideEnvoyConfig"} <= kinds
    assert sum(len(s["cells"]) for s in v["scenarios"].values()) == sum(
        len(probes.plan(n, CTX).probes) for n in ALL)


def test_explain_names_the_eks_workshop_debugging_cause(capsys):
    """Seed 004: "namespaceSelector is empty, which means only the current namespace is permitted
    (orders)" - `--explain ui orders` must say so."""
    assert model_cli(["verdicts", "--scenario", "eks-retail", "--stage", "allow-order-ingress-fail-debug",
                      "--explain", "ui", "orders"]) == 0
    out = capsys.readouterr().out
    assert "drop" in out.splitlines()[0]
    assert "matches ui/ui's labels but, without a namespaceSelector, only selects pods in namespace orders" in out


def test_the_stars_final_picture_has_only_the_documented_arrows(capsys):
    """Seed 003: "client is an allowed client of frontend; frontend is an allowed client of backend;
    management-ui is an allowed client of all the services" - the graph view draws exactly those."""
    import xml.etree.ElementTree as ET
    assert model_cli(["verdicts", "--scenario", "stars", "--format", "graph"]) == 0
    svg = ET.fromstring(capsys.readouterr().out)
    edges = {(g.get("data-from"), g.get("data-to")) for g in svg.iter() if g.get("class") == "edge"}
    assert edges == {("client/client", "stars/frontend"), ("stars/frontend", "stars/backend"),
                     ("management-ui/management-ui", "client/client"),
                     ("management-ui/management-ui", "stars/frontend"),
                     ("management-ui/management-ui", "stars/backend")}
