"""The fleet (``edgeClusters`` = N) under mocks: N kind hosts, each with its own lockable security group and
kubeconfig, locked to one shared proxy whose ingress admits exactly the N hosts; restrictEgress changes
only the N lock rules; probes per cluster; per-cluster results and one fleet summary line; the cost
estimate counts N hosts. N = 1 is the one-cluster stack, resource for resource."""
from __future__ import annotations

import re

import pytest

from model import cost
from model.settings import SettingsError, load_settings

from .harness import OPERATOR_IP, PROXY_IP, edge_ip, run_program

SG_IN = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_OUT = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
SG = "aws:ec2/securityGroup:SecurityGroup"
INSTANCE = "aws:ec2/instance:Instance"
EDGES = ["demo-e01", "demo-e02", "demo-e03"]
N3 = {"edgeClusters": 3, "maxMonthlyCostUsd": 1000}   # 3 x m7i.large is above the default ceiling


@pytest.fixture(scope="module")
def fleet_unlocked():
    p = run_program(N3)
    assert p.error is None, p.error
    return p


@pytest.fixture(scope="module")
def fleet_locked():
    p = run_program({**N3, "restrictEgress": True})
    assert p.error is None, p.error
    return p


def test_n1_is_the_one_cluster_stack():
    one, default = run_program({"edgeClusters": 1}), run_program({})
    assert one.error is None and default.error is None
    assert sorted((r.type, r.name) for r in one.resources) == sorted((r.type, r.name) for r in default.resources)
    assert one.outputs.keys() == default.outputs.keys() and "fleetSummary" not in one.outputs
    assert [b.resource for b in cost.billables(load_settings({"edgeClusters": 1}, resolve_operator_cidr=False))] \
        == ["kind-demo-instance", "kind-demo-instance", "proxy-demo-instance", "proxy-demo-instance",
            "kind-eip-demo", "proxy-eip-demo"]


def test_n3_resource_graph(fleet_unlocked):
    p = fleet_unlocked
    assert sorted(r.name for r in p.of_type(INSTANCE)) == [f"kind-{e}-instance" for e in EDGES] + ["proxy-demo-instance"]
    assert sorted(r.name for r in p.of_type(SG)) == sorted([f"kind-{e}-sg-group" for e in EDGES] + ["proxy-demo-sg-group"])
    assert len(p.of_type("kubernetes:helm.sh/v3:Release")) == 3
    assert len(p.of_type("pulumi:providers:kubernetes")) == 3
    assert sorted(r.name for r in p.of_type("aws:ec2/vpc:Vpc")) == ["net-demo-vpc"]          # one network
    for e in EDGES:  # each kind host's SG egress goes to the shared proxy only (boot path)
        base = p.named(f"kind-{e}-sg-egress-proxy").inputs
        assert (base["ipProtocol"], base["cidrIpv4"]) == ("-1", f"{PROXY_IP}/32")
        assert p.named(f"kind-{e}-sg-ingress-ssh").inputs["cidrIpv4"] == f"{OPERATOR_IP}/32"
    names = [r.name for r in p.resources]
    assert len(names) == len(set(names))  # no two resources (hence no two clusters) share a name


def test_shared_proxy_ingress_admits_exactly_the_n_hosts(fleet_unlocked):
    p = fleet_unlocked
    ingress = [r for r in p.of_type(SG_IN) if r.name.startswith("proxy-demo-sg-")]
    proxy_port = [r for r in ingress if r.inputs.get("fromPort") == 3128]
    assert sorted(r.inputs["cidrIpv4"] for r in proxy_port) == sorted(f"{edge_ip(e)}/32" for e in EDGES)
    others = [r for r in ingress if r not in proxy_port]
    assert [(r.inputs["fromPort"], r.inputs["cidrIpv4"]) for r in others] == [(22, f"{OPERATOR_IP}/32")]
    squid = p.named("proxy-demo-instance").inputs["userData"]
    for e in EDGES:
        assert f"{edge_ip(e)}/32" in squid
    assert len(set(re.findall(r"203\.0\.113\.1\d/32", squid))) == 3


def test_each_cluster_has_its_own_kubeconfig_secret_and_probes(fleet_unlocked):
    p = fleet_unlocked
    assert "kubeconfigs" in p.secret_outputs and sorted(p.outputs["kubeconfigs"]) == EDGES
    assert p.outputs["kindPublicIps"] == {e: edge_ip(e) for e in EDGES}
    for e in EDGES:
        assert p.named(f"kind-{e}-kubeconfig").type == "command:remote:Command"
        probes = [r for r in p.resources if r.name.startswith(f"probes-egress-{e}-")]
        hosts = {r.name: r.inputs["connection"]["host"] for r in probes
                 if r.type == "command:remote:Command" and "connection" in r.inputs}
        assert hosts and all(h == (PROXY_IP if n.endswith("-proxy-log") else edge_ip(e)) for n, h in hosts.items()), hosts
        assert any(h == edge_ip(e) for h in hosts.values())
    v = p.outputs["verification"]
    assert v["ok"] is True and sorted(v["clusters"]) == EDGES
    cells = {e: len(v["clusters"][e]["scenarios"]["egress"]["cells"]) for e in EDGES}
    assert len(set(cells.values())) == 1
    total = sum(cells.values())
    assert p.outputs["fleetSummary"] == f"fleet: 3/3 clusters verified, {total}/{total} probes as expected"


def test_toggle_changes_only_the_n_lock_rules(fleet_unlocked, fleet_locked):
    def by_name(p):
        return {(r.type, r.name): r.inputs for r in p.resources}
    a, b = by_name(fleet_unlocked), by_name(fleet_locked)
    assert a.keys() == b.keys()  # locking neither creates nor deletes
    changed = {n for n in a.keys() & b.keys() if a[n] != b[n]}
    probes = {n for n in changed if n[1].startswith("probes-")}
    for n in probes:
        assert {k for k in a[n] if a[n][k] != b[n][k]} <= {"triggers", "create"}, n
    rest = changed - probes
    assert len(rest) == 3 and {t for t, _ in rest} == {SG_OUT}, sorted(rest)
    assert {n for _, n in rest} == {f"kind-{e}-sg-lock-egress-internet" for e in EDGES}
    for e in EDGES:
        locked = b[(SG_OUT, f"kind-{e}-sg-lock-egress-internet")]
        assert (locked["ipProtocol"], locked["fromPort"], locked["cidrIpv4"]) == ("tcp", 3128, f"{PROXY_IP}/32")
    assert fleet_locked.outputs["fleetSummary"].startswith("fleet: 3/3 clusters verified")


def test_a_failing_cluster_shows_in_the_summary():
    p = run_program({**N3, "strictVerification": False, "restrictEgress": True},
                    world={"egress-test-deny-control": ("200", 0)})
    assert p.error is None, p.error
    assert "failing: demo-e01, demo-e02, demo-e03" in p.outputs["fleetSummary"]
    assert p.outputs["verification"]["ok"] is False


def test_cost_counts_n_hosts():
    s = load_settings({"edgeClusters": 3}, resolve_operator_cidr=False)
    kinds = [b for b in cost.billables(s) if b.kind == "instance" and b.resource.startswith("kind-")]
    assert [b.resource for b in kinds] == [f"kind-{e}-instance" for e in EDGES]
    assert len([b for b in cost.billables(s) if b.kind == "public-ipv4"]) == 4
    one = cost.estimate(load_settings({}, resolve_operator_cidr=False), "eu-central-1")
    three = cost.estimate(s, "eu-central-1")
    assert three.monthly > one.monthly * 2


@pytest.mark.parametrize("raw, message", [
    ({"edgeClusters": 0}, "edgeClusters: 0 is not accepted; accepted: an integer from 1 to 20"),
    ({"edgeClusters": 21}, "accepted: an integer from 1 to 20"),
    ({"edgeClusters": 2, "scenarios": ["egress", "mtls"]}, "edgeClusters: 2 with scenario mtls"),
])
def test_edge_clusters_is_validated(raw, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        load_settings(raw, resolve_operator_cidr=False)
    p = run_program(raw)
    assert p.error is not None and p.resources == []


@pytest.mark.parametrize("locked", [False, True], ids=["unlocked", "locked"])
def test_the_policy_pack_passes_on_the_fleet(locked, fleet_unlocked, fleet_locked):
    """Every guardrail (guardrails/) holds for N = 3 as for one cluster; the fleet's ``kubeconfigs`` output
    carries key material on purpose and is a Pulumi secret."""
    from .test_policy_pack import DEV_STACK_CONFIG, run_all
    program = fleet_locked if locked else fleet_unlocked
    config = {**DEV_STACK_CONFIG, **{f"cilium-egress-lab:{k}": str(v) for k, v in N3.items()},
              "cilium-egress-lab:restrictEgress": str(locked).lower()}
    # a fleet of 3 costs more than the pack's default ceiling; the operator raises the pack's ceiling
    # (the stack's own maxMonthlyCostUsd can only lower it)
    pack_config = {"cost-ceiling": {"maxMonthlyCostUsd": N3["maxMonthlyCostUsd"]}}
    assert {name: v for name, v in run_all(program, config, pack_config).items() if v} == {}
