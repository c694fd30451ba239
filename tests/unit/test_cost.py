"""Cost (issue 15): the pinned price table, the estimate of what the program registers, the
`python -m model cost` command and the costEstimate output - all offline."""
from __future__ import annotations

import datetime
import json
import pathlib

import pytest

import model.__main__ as cli
from model import cost
from model.settings import SettingsError, load_settings
from scenarios import ONE_CLUSTER

from .harness import run_program

ROOT = pathlib.Path(__file__).resolve().parents[2]
ALL_SCENARIOS = list(ONE_CLUSTER)  # a two-cluster pack is refused by the one-cluster stack


def settings(**raw):
    return load_settings(raw, resolve_operator_cidr=False)


def run_cost(capsys, *args: str) -> tuple[int, str, str]:
    try:
        rc = cli.main(["cost", *args])
    except SystemExit as exc:  # argparse's usage errors
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def every_scenario():
    p = run_program({"scenarios": ALL_SCENARIOS})
    assert p.error is None, p.error
    return p


# ------------------------------------------------------------------ the price table
def test_the_price_table_is_pinned_dated_and_sourced():
    prices = cost.load_prices()
    datetime.date.fromisoformat(prices["pricesDate"])  # a real date
    assert prices["currency"] == "USD" and prices["hoursPerMonth"] == 730
    assert all("aws.amazon.com" in s for s in prices["sources"])
    assert {"eu-central-1", "us-east-1"} <= set(prices["regions"])
    defaults = settings()
    for region, table in prices["regions"].items():
        assert {defaults.kind_instance_type, defaults.proxy_instance_type, "m5.xlarge"} <= set(table["ec2PerHour"])
        assert table["publicIpv4PerHour"] == 0.005, region  # AWS, since 2024-02-01, every public IPv4
        assert 0 < table["gp3PerGbMonth"] < 0.2
        assert all(0 < v < 1 for v in table["ec2PerHour"].values())
    assert any("data transfer" in n for n in prices["notIncluded"])
    assert any("CloudWatch Logs" in n for n in prices["notIncluded"])


# ------------------------------------------------------------------ the estimate
def test_the_default_stack_in_eu_central_1():
    est = cost.estimate(settings(), "eu-central-1")
    assert [(ln.resource, ln.item) for ln in est.lines] == [
        ("kind-demo-instance", "EC2 m7i.large"), ("kind-demo-instance", "gp3 volume 30 GB"),
        ("proxy-demo-instance", "EC2 t3.small"), ("proxy-demo-instance", "gp3 volume 30 GB"),
        ("kind-eip-demo", "public IPv4 address"), ("proxy-eip-demo", "public IPv4 address")]
    gp3_hourly = 30 * 0.0952 / 730
    assert est.hourly == pytest.approx(0.12075 + 0.024 + 2 * gp3_hourly + 2 * 0.005)
    assert est.monthly == pytest.approx(est.hourly * 730)
    assert round(est.monthly, 2) == 118.68
    assert est.complete and est.within_ceiling is True and est.max_monthly_usd == 150


def test_the_seed_shape_is_above_the_default_ceiling():
    """Seed 000: two m5.xlarge hosts with 512 GB disks, around the clock."""
    est = cost.estimate(settings(kindInstanceType="m5.xlarge", proxyInstanceType="m5.xlarge", rootVolumeGb=512),
                        "eu-central-1")
    assert est.monthly > 400 and est.within_ceiling is False
    assert "ceiling: ABOVE maxMonthlyCostUsd 150" in cost.render_text(est)


def test_scenarios_add_no_billable_resource():
    assert cost.billables(settings(scenarios=ALL_SCENARIOS)) == cost.billables(settings())


def _shape(items):
    return [(b.resource, b.kind, b.spec, b.size_gb) for b in items]


@pytest.mark.parametrize("config", [{}, {"scenarios": ALL_SCENARIOS, "restrictEgress": True}, {"flowLogs": False},
                                    {"kindInstanceType": "m5.xlarge", "rootVolumeGb": 64, "envName": "lab2"},
                                    {"edgeClusters": 3, "maxMonthlyCostUsd": 1000}],
                         ids=["default", "every-scenario-locked", "no-flow-logs", "bigger", "fleet-of-3"])
def test_the_estimate_prices_exactly_what_the_program_registers(config):
    """billables(settings) (the CLI, the output) == billables_from_resources(registered) (the pack)."""
    p = run_program(config)
    assert p.error is None, p.error
    registered, unpriced = cost.billables_from_resources(
        {"type": r.type, "name": r.name, "props": r.inputs} for r in p.resources)
    assert unpriced == []
    s = settings(**{k: (json.dumps(v) if isinstance(v, list) else v) for k, v in config.items()})
    assert sorted(_shape(registered)) == sorted(_shape(cost.billables(s)))


def test_unknown_region_and_instance_type_name_the_key():
    with pytest.raises(cost.CostError) as exc:
        cost.estimate(settings(), "ap-south-1")
    assert exc.value.errors == ["aws:region: 'ap-south-1' is not in the price table model/prices.json; "
                                "accepted: eu-central-1, us-east-1"]
    with pytest.raises(cost.CostError) as exc:
        cost.estimate(settings(kindInstanceType="c7i.large"), "us-east-1")
    (error,) = exc.value.errors
    assert error.startswith("kindInstanceType: 'c7i.large' is not in the price table model/prices.json for us-east-1")
    assert "m7i.large" in error  # what is priced


def test_billable_resources_the_table_cannot_price_are_named():
    items, unpriced = cost.billables_from_resources([
        {"type": "aws:ec2/natGateway:NatGateway", "name": "nat", "props": {}},
        {"type": "aws:ec2/instance:Instance", "name": "bare", "props": {"instanceType": "t3.small"}},
        {"type": "aws:ebs/volume:Volume", "name": "data", "props": {"type": "io2", "size": 100}}])
    assert unpriced[0].startswith("nat: a NAT gateway") and unpriced[1].startswith("bare: no rootBlockDevice")
    est = cost.price(items, "eu-central-1")
    assert est.problems == ["data: a io2 volume is not in the price table model/prices.json (gp3 only)"]
    assert est.within_ceiling is None and not est.complete


# ------------------------------------------------------------------ the stack output
def test_the_cost_estimate_output_is_the_models(unlocked, every_scenario):
    for p in (unlocked, every_scenario):
        out = p.outputs["costEstimate"]
        assert "costEstimate" not in p.secret_outputs
        assert out == cost.estimate(settings(), "eu-central-1").as_dict()
        assert (out["region"], out["monthly"], out["withinCeiling"], out["pricesDate"]) == (
            "eu-central-1", 118.68, True, cost.load_prices()["pricesDate"])


def test_the_output_never_fails_the_update():
    # us-east-1 needs quay.io's in-region S3 host allowed (model/registries.py)
    from model.registries import QUAY_IN_REGION_HOST
    from model.settings import DEFAULT_BOOTSTRAP_DOMAINS
    p = run_program({"kindInstanceType": "c7i.large",
                     "bootstrapDomains": [*DEFAULT_BOOTSTRAP_DOMAINS, QUAY_IN_REGION_HOST]}, region="us-east-1")
    assert p.error is None, p.error
    out = p.outputs["costEstimate"]
    assert out["complete"] is False and out["withinCeiling"] is False and out["region"] == "us-east-1"
    assert out["problems"][0].startswith("kindInstanceType: 'c7i.large' is not in the price table")
    assert run_program({}, region="ap-south-1").outputs["costEstimate"]["problems"][0].startswith("aws:region:")


# ------------------------------------------------------------------ python -m model cost
def test_the_command_prints_every_billable_resource(capsys):
    rc, out, err = run_cost(capsys, "--stack", "dev")
    assert rc == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == (f"Cost estimate (stack dev, region eu-central-1, on-demand USD, prices of "
                        f"{cost.load_prices()['pricesDate']} from model/prices.json)")
    assert lines[1].split() == ["RESOURCE", "ITEM", "USD/HOUR", "USD/MONTH", "(730", "h)"]
    assert lines[2].split() == ["kind-demo-instance", "EC2", "m7i.large", "0.12075", "88.15"]
    assert lines[8].split() == ["total", "0.16257", "118.68"]
    assert lines[9] == "ceiling: within maxMonthlyCostUsd 150 ($0.2055/hour)"
    assert lines[10].startswith("not included: data transfer")


def test_the_command_json_and_overrides(capsys, monkeypatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    rc, out, _ = run_cost(capsys, "--format", "json", "--set", "rootVolumeGb=100")  # no stack: the environment
    data = json.loads(out)
    assert rc == 0 and data["region"] == "us-east-1"
    assert [ln["item"] for ln in data["lines"]].count("gp3 volume 100 GB") == 2
    rc, out, _ = run_cost(capsys, "--stack", "dev", "--region", "us-east-1", "--format", "json")
    assert rc == 0 and json.loads(out)["hourly"] == pytest.approx(0.1008 + 0.0208 + 60 * 0.08 / 730 + 0.01, abs=1e-5)


@pytest.mark.parametrize("args,needle", [
    (["--set", "kindInstanceType=c7i.large"], "kindInstanceType: 'c7i.large' is not in the price table"),
    (["--region", "ap-south-1"], "aws:region: 'ap-south-1' is not in the price table"),
    (["--set", "maxMonthlyCostUsd=0"], "maxMonthlyCostUsd: '0' is not accepted; accepted: an integer from 1"),
    (["--stack", "nope"], "--stack: Pulumi.nope.yaml not found"),
])
def test_the_command_refuses_what_it_cannot_price(capsys, args, needle):
    rc, out, err = run_cost(capsys, *args)
    assert rc == 2 and out == "" and needle in err


def test_the_ceiling_is_a_validated_config_key():
    assert settings().max_monthly_cost_usd == 150
    assert settings(maxMonthlyCostUsd="90").max_monthly_cost_usd == 90
    for bad in ("0", "-5", "1.5", "lots", True):
        with pytest.raises(SettingsError) as exc:
            settings(maxMonthlyCostUsd=bad)
        assert exc.value.errors[0].startswith("maxMonthlyCostUsd: "), bad


def _readme_block(after: str) -> str:
    text = (ROOT / "README.md").read_text()
    assert after in text, f"README.md has no {after.strip()!r} block"
    return text.split(after, 1)[1].split("```", 1)[0]


@pytest.mark.parametrize("command", [
    "venv/bin/cilium-lab cost --stack dev",
    "venv/bin/cilium-lab cost --stack dev --set scenarios=egress,mtls,hoot51,eks-retail,stars"])
def test_the_readme_shows_what_the_command_prints(capsys, command):
    rc, out, _ = run_cost(capsys, *command.split()[2:])
    assert rc == 0
    assert _readme_block(f"$ {command}\n") == out
