"""The CrossGuard policy pack (issue 15), without the Pulumi CLI.

Every policy of the pack (guardrails/pack.py, wrapping guardrails/rules.py) is called the way pulumi-policy
calls it - ``policy.validate(args, report_violation)`` with ResourceValidationArgs /
StackValidationArgs whose props are the SDK's unknown-checking proxies - on every resource the program
registers under mocks (the default stack, every scenario, both lock states): nothing is reported.
Then on one deliberately bad variant per rule, made from the program's own resources: the rule
reports a message naming the resource. Finally the pack runs through pulumi-policy's own analyzer
servicer (Analyze / AnalyzeStack / Configure with wire-format requests) to pin what the SDK hands a
policy: inputs vs outputs, decrypted secrets, policy config.
"""
from __future__ import annotations

import ast
import copy
import json
import pathlib

import pytest
import yaml

if not __import__("os").environ.get("CI"):  # CI installs requirements.txt: there it must import
    pytest.importorskip("pulumi_policy", reason="pulumi-policy is not installed here: "
                        "venv/bin/pip install -r requirements-dev.txt (the README's test command)")

from google.protobuf import struct_pb2  # noqa: E402
from pulumi.runtime import proto
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)
from pulumi_policy.policy import _PolicyAnalyzerServicer
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from guardrails import pack, rules
from scenarios import ONE_CLUSTER

from .harness import OPERATOR_IP, SECRET_MARKER, Program, Res, run_program

ROOT = pathlib.Path(__file__).resolve().parents[2]
STACK_URN = "urn:pulumi:dev::cilium-egress-lab::pulumi:pulumi:Stack::cilium-egress-lab-dev"
# What the engine hands the pack for the dev stack (PULUMI_CONFIG): Pulumi.dev.yaml's keys.
DEV_STACK_CONFIG = {"aws:region": "eu-central-1", "cilium-egress-lab:envName": "demo"}
LOCK_KEY = "cilium-egress-lab:restrictEgress"
SECRET_SIG = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}


def policies(stack_config=None) -> dict:
    config = DEV_STACK_CONFIG if stack_config is None else stack_config
    return {p.name: p for p in pack.policies(lambda: config, operator_lookup)}


def operator_lookup() -> str:
    """The pack's operatorCidr auto lookup, answered like the program's (the harness's operator IP)."""
    return OPERATOR_IP


def opts(res: Res | None = None) -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [],
                                 res.parent if res else None)


def props(values: dict):
    """What pulumi-policy hands a policy: the values behind its unknown-checking proxy."""
    return unknown_checking_proxy(copy.deepcopy(values))


def stack_resources(program: Program, outputs: dict | None = None) -> list[PolicyResource]:
    by_urn = {r.urn: PolicyResource(r.type, props(r.inputs), r.urn, r.name, opts(r), None, None, [], {})
              for r in program.resources}
    for r in program.resources:  # dependencies as objects, as the SDK links them
        by_urn[r.urn].dependencies.extend(by_urn[d] for d in r.deps if d in by_urn)
    stack = PolicyResource(rules.STACK_TYPE, props(program.outputs if outputs is None else outputs), STACK_URN,
                           "cilium-egress-lab-dev", opts(), None, None, [], {})
    return [*by_urn.values(), stack]


def violations(policy, target, config: dict | None = None) -> list[tuple[str, str | None]]:
    """Run one policy like the SDK does; (message, urn) of every violation it reports."""
    found: list[tuple[str, str | None]] = []
    report = lambda message, urn=None: found.append((message, urn))  # noqa: E731
    if isinstance(policy, ResourceValidationPolicy):
        args = ResourceValidationArgs(target.type, props(target.inputs), target.urn, target.name, opts(target),
                                      None, config)
    else:
        args = StackValidationArgs(target, config)
    assert policy.validate(args, report) is None  # synchronous
    return found


def run_all(program: Program, stack_config=None, config: dict | None = None) -> dict[str, list]:
    """Every policy on the program: resource policies on each registered resource, stack policies on
    the whole stack (its outputs included). policy name -> violations."""
    if stack_config is None:  # what the engine passes: the dev stack's config plus the lock the program ran with
        stack_config = {**DEV_STACK_CONFIG, LOCK_KEY: str(bool(program.outputs.get("restrictEgress"))).lower()}
    out = {}
    for name, policy in policies(stack_config).items():
        cfg = (config or {}).get(name)
        if isinstance(policy, ResourceValidationPolicy):
            out[name] = [v for r in program.resources for v in violations(policy, r, cfg)]
        else:
            out[name] = violations(policy, stack_resources(program), cfg)
    return out


def with_inputs(res: Res, **changes) -> Res:
    inputs = copy.deepcopy(res.inputs)
    for key, value in changes.items():
        if value is None:
            inputs.pop(key, None)
        else:
            inputs[key] = value
    return Res(res.type, res.name, inputs, res.urn, res.parent, res.deps, res.provider, res.custom)


def only(program: Program, name: str, policy_name: str, res: Res, config: dict | None = None,
         stack_config=None) -> list[str]:
    """The violations of one policy on the program with ``res`` swapped in for its namesake."""
    policy = policies(stack_config)[policy_name]
    if isinstance(policy, ResourceValidationPolicy):
        return [m for m, _ in violations(policy, res, config)]
    swapped = Program([res if r.name == name else r for r in program.resources], program.outputs)
    return [m for m, _ in violations(policy, stack_resources(swapped), config)]


# ------------------------------------------------------------------ the programs
ALL_SCENARIOS = list(ONE_CLUSTER)  # a two-cluster pack is refused by the one-cluster stack


@pytest.fixture(scope="module")
def every_scenario_unlocked():
    p = run_program({"scenarios": ALL_SCENARIOS})
    assert p.error is None, p.error
    return p


@pytest.fixture(scope="module")
def every_scenario_locked():
    p = run_program({"scenarios": ALL_SCENARIOS, "restrictEgress": True})
    assert p.error is None, p.error
    return p


@pytest.fixture(params=["unlocked", "locked", "every_scenario_unlocked", "every_scenario_locked"])
def program(request):
    return request.getfixturevalue(request.param)


def test_the_pack_has_one_policy_per_rule_with_its_level():
    made = pack.policies(lambda: {})
    assert [p.name for p in made] == [r.name for r in rules.RULES]
    mandatory = {p.name for p in made if p.enforcement_level == EnforcementLevel.MANDATORY}
    assert mandatory == {"imdsv2-required", "encrypted-volumes", "no-world-ingress", "admin-ports-operator-only", "locked-egress",
                         "no-key-material-in-commands", "secret-outputs", "cost-ceiling"}
    assert {p.enforcement_level for p in made} == {EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY}
    assert all(p.description.endswith(".") for p in made)


def test_every_policy_passes_on_everything_the_program_registers(program):
    """The default stack and every scenario, unlocked and locked; operatorCidr auto (the stack's)."""
    assert run_all(program) == {r.name: [] for r in rules.RULES}
    assert sum(r.type == rules.INSTANCE for r in program.resources) == 2  # the policies saw the hosts


@pytest.mark.parametrize("locked", [False, True], ids=["unlocked", "locked"])
@pytest.mark.parametrize("scenario", ALL_SCENARIOS)
def test_every_policy_passes_on_each_scenario_alone(scenario, locked):
    p = run_program({"scenarios": [scenario], "restrictEgress": locked})
    assert p.error is None, p.error
    assert run_all(p) == {r.name: [] for r in rules.RULES}


def test_every_policy_passes_with_the_operator_cidr_and_ceiling_pinned(every_scenario_locked):
    config = {"admin-ports-operator-only": {"operatorCidr": f"{OPERATOR_IP}/32"},
              "cost-ceiling": {"maxMonthlyCostUsd": 120, "region": "eu-central-1"}}
    assert run_all(every_scenario_locked, stack_config={}, config=config) == {r.name: [] for r in rules.RULES}


def test_rule_logic_is_pure():
    """The pack runs exactly guardrails/rules.py's functions (and guardrails/shapes.py's); they import no Pulumi
    (like model/)."""
    for module in ("rules.py", "shapes.py"):
        tree = ast.parse((ROOT / "guardrails" / module).read_text())
        imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [m for m in imported if m.split(".")[0].startswith("pulumi")], module


# ------------------------------------------------------------------ bad variants, one per rule
def test_imdsv2_tokens_optional(unlocked):
    inst = unlocked.named("kind-demo-instance")
    bad = with_inputs(inst, metadataOptions={**inst.inputs["metadataOptions"], "httpTokens": "optional"})
    (msg,) = only(unlocked, inst.name, "imdsv2-required", bad)
    assert msg.startswith("kind-demo-instance: metadataOptions.httpTokens is 'optional'") and "required" in msg


def test_imdsv2_hop_limit_above_the_chosen_one(unlocked):
    inst = unlocked.named("proxy-demo-instance")
    bad = with_inputs(inst, metadataOptions={**inst.inputs["metadataOptions"], "httpPutResponseHopLimit": 2})
    (msg,) = only(unlocked, inst.name, "imdsv2-required", bad)
    assert msg.startswith("proxy-demo-instance: metadataOptions.httpPutResponseHopLimit is 2; at most 1")
    assert only(unlocked, inst.name, "imdsv2-required", bad, config={"hopLimit": 2}) == []  # chosen: 2


def test_unencrypted_root_volume(unlocked):
    inst = unlocked.named("kind-demo-instance")
    bad = with_inputs(inst, rootBlockDevice={**inst.inputs["rootBlockDevice"], "encrypted": False})
    assert only(unlocked, inst.name, "encrypted-volumes", bad) == [
        "kind-demo-instance: rootBlockDevice.encrypted is False; set encrypted: true"]
    (msg,) = only(unlocked, inst.name, "encrypted-volumes", with_inputs(inst, rootBlockDevice=None))
    assert msg.startswith("kind-demo-instance: no rootBlockDevice")


@pytest.mark.parametrize("source", [{"cidrIpv4": "0.0.0.0/0"}, {"cidrIpv4": None, "cidrIpv6": "::/0"}],
                         ids=["ipv4", "ipv6"])
def test_ingress_from_the_whole_internet(unlocked, source):
    rule = unlocked.named("proxy-demo-sg-ingress-proxy")  # port 3128: not an admin port
    bad = with_inputs(rule, **source)
    cidr = source.get("cidrIpv6") or source["cidrIpv4"]
    assert only(unlocked, rule.name, "no-world-ingress", bad) == [
        f"proxy-demo-sg-ingress-proxy: ingress from {cidr} (every address on the internet); allow named "
        "sources only (operatorCidr, a host /32)"]


def test_inline_and_legacy_ingress_shapes_are_checked_too(unlocked):
    group = unlocked.named("kind-demo-sg-group")
    inline = with_inputs(group, ingress=[{"protocol": "tcp", "fromPort": 443, "toPort": 443,
                                          "cidrBlocks": ["0.0.0.0/0"]}])
    assert len(only(unlocked, group.name, "no-world-ingress", inline)) == 1
    legacy = Res("aws:ec2/securityGroupRule:SecurityGroupRule", "legacy-ssh",
                 {"type": "ingress", "protocol": "tcp", "fromPort": 0, "toPort": 65535, "cidrBlocks": ["10.1.0.0/16"],
                  "ipv6CidrBlocks": ["::/0"]}, "urn:legacy", "", [], "", True)
    assert len(only(unlocked, legacy.name, "no-world-ingress", legacy)) == 1
    assert len(only(unlocked, legacy.name, "admin-ports-operator-only", legacy)) == 2  # both sources, 22/6443


def test_ssh_from_another_cidr_than_the_operators(unlocked):
    rule = unlocked.named("kind-demo-sg-ingress-ssh")
    bad = with_inputs(rule, cidrIpv4="203.0.113.0/24")
    pinned = {"operatorCidr": f"{OPERATOR_IP}/32"}
    assert only(unlocked, rule.name, "admin-ports-operator-only", bad, config=pinned) == [
        f"kind-demo-sg-ingress-ssh: port 22 (SSH/Kubernetes API) open to 203.0.113.0/24; only the operator CIDR "
        f"{OPERATOR_IP}/32 (policy config operatorCidr) may reach it"]
    # the stack's own operatorCidr, when it is not auto
    (msg,) = only(unlocked, rule.name, "admin-ports-operator-only", rule,
                  stack_config={"cilium-egress-lab:operatorCidr": "192.0.2.7/32"})
    assert f"open to {OPERATOR_IP}/32; only the operator CIDR 192.0.2.7/32 (stack config" in msg
    # operatorCidr auto: exactly the address the program looks up (the pack looks it up the same way)
    (msg,) = only(unlocked, rule.name, "admin-ports-operator-only", bad)
    assert msg == (f"kind-demo-sg-ingress-ssh: port 22 (SSH/Kubernetes API) open to 203.0.113.0/24; only the operator "
                   f"CIDR {OPERATOR_IP}/32 (stack config cilium-egress-lab:operatorCidr is auto: your public IPv4, "
                   "looked up as the program does) may reach it")
    api = unlocked.named("kind-demo-sg-ingress-kube-api")
    (msg,) = only(unlocked, api.name, "admin-ports-operator-only", with_inputs(api, cidrIpv4="198.51.100.0/24"),
                  config=pinned)
    assert msg.startswith("kind-demo-sg-ingress-kube-api: port 6443")


def test_a_command_trigger_with_a_private_key_in_clear(unlocked):
    cmd = unlocked.named("kind-demo-cloud-init")
    bad = with_inputs(cmd, triggers=[*cmd.inputs["triggers"], SECRET_MARKER])
    (msg,) = only(unlocked, cmd.name, "no-key-material-in-commands", bad)
    assert msg.startswith("kind-demo-cloud-init: triggers holds a private key in plain text "
                          "('-----BEGIN OPENSSH PRIVATE KEY-----'…)")
    pem = "-----BEGIN EC PRIVATE KEY-----\nMHc...\n-----END EC PRIVATE KEY-----"
    copy_step = Res("command:remote:CopyToRemote", "copy", {"triggers": [{"pem": pem}], "remotePath": "/x"},
                    "urn:copy", "", [], "", True)
    assert "copy: triggers holds a private key" in only(unlocked, "copy", "no-key-material-in-commands", copy_step)[0]
    kube = unlocked.named("kind-demo-kubeconfig")
    leaky = with_inputs(kube, create="echo 'client-key-data: c2VjcmV0a2V5' > ~/.kube/config")
    assert only(unlocked, kube.name, "no-key-material-in-commands", leaky)[0].startswith(
        "kind-demo-kubeconfig: create holds a private key")


def test_a_plain_output_with_a_private_key(unlocked):
    policy = policies()["secret-outputs"]
    bad = stack_resources(unlocked, {**unlocked.outputs, "debugKey": SECRET_MARKER})
    assert violations(policy, bad) == [(
        "stack output 'debugKey' contains private key material ('-----BEGIN OPENSSH PRIVATE KEY-----'…); only "
        "sshPrivateKey, kubeconfig, kubeconfigs, mtlsSecretMaterial may, exported as Pulumi secrets", STACK_URN)]


def test_the_outputs_allowed_key_material_are_exported_as_secrets(unlocked, every_scenario_locked):
    """The other half of secret-outputs: the pack cannot see secretness, the program's run can."""
    for p in (unlocked, every_scenario_locked):
        carrying = {n for n, v in p.outputs.items() if rules.has_key_material(v)}
        assert carrying and carrying <= set(rules.SECRET_OUTPUTS)
        assert carrying <= p.secret_outputs
    assert "mtlsSecretMaterial" in every_scenario_locked.secret_outputs


@pytest.mark.parametrize("config,needles", [
    ({"kindInstanceType": "m5.xlarge"}, ["exceeds the ceiling $150/month", "kind-demo-instance EC2 m5.xlarge $167.90"]),
    ({"rootVolumeGb": 1024}, ["exceeds the ceiling", "kind-demo-instance gp3 volume 1024 GB $97.48"]),
    ({"kindInstanceType": "c7i.large"}, ["kind-demo-instance: instance type 'c7i.large' is not in the price table"]),
], ids=["instance-type", "volume-size", "unpriced-type"])
def test_a_stack_beyond_the_cost_ceiling(config, needles):
    """Built by the program itself from the config, then judged by the pack."""
    p = run_program(config)
    assert p.error is None, p.error
    found = run_all(p)
    assert {k for k, v in found.items() if v} == {"cost-ceiling"}
    (message, urn), = found["cost-ceiling"]
    assert all(n in message for n in needles), message
    if "exceeds" in message:
        assert urn == p.named("kind-demo-instance").urn  # attributed to the most expensive resource


def test_the_ceiling_comes_from_policy_config_then_stack_config_then_the_default(unlocked):
    policy = policies()["cost-ceiling"]
    resources = stack_resources(unlocked)
    (msg, _), = violations(policy, resources, {"maxMonthlyCostUsd": 100})
    assert "exceeds the ceiling $100/month ($0.1370/h, policy config maxMonthlyCostUsd)" in msg
    stack = {**DEV_STACK_CONFIG, "cilium-egress-lab:maxMonthlyCostUsd": "110"}
    (msg, _), = violations(policies(stack)["cost-ceiling"], resources)
    assert "$110/month ($0.1507/h, stack config cilium-egress-lab:maxMonthlyCostUsd)" in msg
    # the pack's ceiling caps the stack's: a stack may lower it, never raise it
    (msg, _), = violations(policies(stack)["cost-ceiling"], resources, {"maxMonthlyCostUsd": 200})
    assert "exceeds the ceiling $110/month ($0.1507/h, stack config cilium-egress-lab:maxMonthlyCostUsd)" in msg
    raised = {**DEV_STACK_CONFIG, "cilium-egress-lab:maxMonthlyCostUsd": "100000"}
    (msg, _), = violations(policies(raised)["cost-ceiling"], resources, {"maxMonthlyCostUsd": 100})
    assert ("exceeds the ceiling $100/month ($0.1370/h, policy config maxMonthlyCostUsd; the stack's own "
            "cilium-egress-lab:maxMonthlyCostUsd 100000 is capped by it)") in msg
    (msg, _), = violations(policies({**raised, "cilium-egress-lab:maxMonthlyCostUsd": "100"})["cost-ceiling"],
                           resources)
    assert "exceeds the ceiling $100/month" in msg  # the stack lowers the default 150
    assert violations(policies(raised)["cost-ceiling"], resources) == []  # 118.68 <= min(150, 100000)
    (msg, _), = violations(policies({"aws:region": "ap-south-1"})["cost-ceiling"], resources)
    assert msg.startswith("aws:region: 'ap-south-1' is not in the price table") and "stack config aws:region" in msg
    (msg, _), = violations(policies({**DEV_STACK_CONFIG, "cilium-egress-lab:maxMonthlyCostUsd": "lots"})["cost-ceiling"],
                           resources)
    assert msg.startswith("cannot check the cost ceiling: maxMonthlyCostUsd: 'lots' is not accepted")


def test_advisory_tags(unlocked):
    vpc = unlocked.named("net-demo-vpc")
    assert only(unlocked, vpc.name, "required-tags", with_inputs(vpc, tags={"Name": "x"})) == [
        "net-demo-vpc: no project / env tag: its cost cannot be attributed to the lab"]


def test_advisory_log_retention(unlocked):
    (group,) = unlocked.of_type(rules.LOG_GROUP)
    assert only(unlocked, group.name, "log-retention", with_inputs(group, retentionInDays=None)) == [
        f"{group.name}: retentionInDays is not set: the log group keeps (and bills) its logs forever"]


def test_advisory_volumes_outliving_the_instance(unlocked):
    inst = unlocked.named("kind-demo-instance")
    bad = with_inputs(inst, rootBlockDevice={**inst.inputs["rootBlockDevice"], "deleteOnTermination": False})
    assert only(unlocked, inst.name, "volumes-deleted-with-instance", bad) == [
        "kind-demo-instance: rootBlockDevice.deleteOnTermination is false: the volume outlives the instance and "
        "keeps costing"]


def test_advisory_flow_logs():
    p = run_program({"flowLogs": False})
    found = run_all(p)
    assert {k for k, v in found.items() if v} == {"vpc-flow-logs"}
    assert found["vpc-flow-logs"] == [(
        "net-demo-vpc: no VPC flow log (AWS FSBP EC2.6): rejected traffic leaves no trace (flowLogs: true)",
        p.named("net-demo-vpc").urn)]


def test_advisory_default_security_group(unlocked):
    group = unlocked.named("net-demo-default-sg")
    ruled = with_inputs(group, ingress=[{"protocol": "-1", "fromPort": 0, "toPort": 0, "self": True}])
    assert only(unlocked, group.name, "default-sg-no-rules", ruled) == [
        "net-demo-default-sg: the default security group has rules (AWS FSBP EC2.2): leave it without any"]
    unmanaged = Program([r for r in unlocked.resources if r.name != group.name], unlocked.outputs)
    (message, _), = violations(policies()["default-sg-no-rules"], stack_resources(unmanaged))
    assert message.startswith("net-demo-vpc: its default security group is not managed")


# ------------------------------------------------------------------ through pulumi-policy's own servicer
def _struct(values: dict) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(values)
    return s


@pytest.fixture
def servicer():
    return _PolicyAnalyzerServicer(pack.PACK_NAME, "0.1.0", pack.policies(lambda: DEV_STACK_CONFIG, operator_lookup),
                                   EnforcementLevel.ADVISORY)


def test_the_sdk_hands_policies_secrets_decrypted(servicer, unlocked):
    """A trigger that is a Pulumi secret arrives as plain text: the pack judges the text, not the flag."""
    cmd = unlocked.named("kind-demo-cloud-init")
    wire = {**json.loads(json.dumps(cmd.inputs)), "triggers": [{**SECRET_SIG, "value": SECRET_MARKER}]}
    response = servicer.Analyze(proto.AnalyzeRequest(urn=cmd.urn, type=cmd.type, name=cmd.name,
                                                     properties=_struct(wire)), None)
    (diag,) = response.diagnostics
    assert (diag.policyName, diag.enforcementLevel, diag.urn) == ("no-key-material-in-commands", proto.MANDATORY, "")
    assert diag.message.startswith("No command's triggers, scripts, environment or copied file holds a private key "
                                   "in plain text.\nkind-demo-cloud-init: triggers holds a private key")
    good = servicer.Analyze(proto.AnalyzeRequest(urn=cmd.urn, type=cmd.type, name=cmd.name,
                                                 properties=_struct(json.loads(json.dumps(cmd.inputs)))), None)
    assert list(good.diagnostics) == []


def test_values_unknown_during_preview_are_not_violations(servicer, unlocked):
    rule = unlocked.named("kind-demo-sg-ingress-ssh")
    wire = {**json.loads(json.dumps(rule.inputs)), "cidrIpv4": UNKNOWN_STRING_VALUE}
    response = servicer.Analyze(proto.AnalyzeRequest(urn=rule.urn, type=rule.type, name=rule.name,
                                                     properties=_struct(wire)), None)
    assert [d.enforcementLevel for d in response.diagnostics] == [proto.ADVISORY] * 2  # can't run during preview
    assert all("can't run policy" in d.message for d in response.diagnostics)


def test_stack_policies_through_the_servicer_with_policy_config(servicer, unlocked):
    def resource(r: Res) -> proto.AnalyzerResource:
        return proto.AnalyzerResource(urn=r.urn, type=r.type, name=r.name, dependencies=r.deps,
                                      properties=_struct(json.loads(json.dumps(r.inputs))))
    outputs = {**json.loads(json.dumps(unlocked.outputs)),
               "sshPrivateKey": {**SECRET_SIG, "value": SECRET_MARKER},  # a secret output, as the engine sends it
               "leak": SECRET_MARKER}
    stack = proto.AnalyzerResource(urn=STACK_URN, type=rules.STACK_TYPE, name="cilium-egress-lab-dev",
                                   properties=_struct(outputs))
    request = proto.AnalyzeStackRequest(resources=[*map(resource, unlocked.resources), stack])
    servicer.Configure(proto.ConfigureAnalyzerRequest(policyConfig={
        "cost-ceiling": proto.PolicyConfig(enforcementLevel=proto.MANDATORY,
                                           properties=_struct({"maxMonthlyCostUsd": 100}))}), None)
    diags = {d.policyName: d for d in servicer.AnalyzeStack(request, None).diagnostics}
    assert set(diags) == {"secret-outputs", "cost-ceiling"}
    assert "stack output 'leak' contains private key material" in diags["secret-outputs"].message
    assert diags["secret-outputs"].urn == STACK_URN
    assert "exceeds the ceiling $100/month" in diags["cost-ceiling"].message
    assert diags["cost-ceiling"].urn == unlocked.named("kind-demo-instance").urn


def test_the_pack_reads_the_stack_config_the_engine_passes(monkeypatch):
    """The engine starts the pack with the stack's config in PULUMI_CONFIG (pulumi's
    analyzer_plugin.go, constructEnv); the pack reads the keys its rules use."""
    import pulumi.runtime
    pulumi.runtime.set_all_config({})  # nothing left over from a mocked program run
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({
        "aws:region": "us-east-1", "cilium-egress-lab:maxMonthlyCostUsd": "90",
        "cilium-egress-lab:operatorCidr": "auto", "cilium-egress-lab:envName": "demo"}))
    assert pack.read_stack_config() == {"aws:region": "us-east-1", "cilium-egress-lab:maxMonthlyCostUsd": "90",
                                        "cilium-egress-lab:operatorCidr": "auto", "cilium-egress-lab:envName": "demo"}
    ctx = pack.context({}, pack.read_stack_config)
    assert rules.ceiling(ctx) == (90.0, "stack config cilium-egress-lab:maxMonthlyCostUsd")
    assert rules.region(ctx) == ("us-east-1", "stack config aws:region")


# ------------------------------------------------------------------ the pack's files
def test_the_entry_point_builds_the_pack_from_the_pack_directory(tmp_path):
    """What `pulumi up --policy-pack guardrails` runs: pulumi's Python analyzer shim (python -m pulumi.policy)
    runs the pack directory with runpy from that directory - a fresh process whose sys.path holds the
    pack directory, not the project root. PolicyPack (which would serve gRPC forever) is replaced."""
    import subprocess
    import sys
    script = ("import json, runpy, sys, pulumi_policy\n"
              "pulumi_policy.PolicyPack = lambda **kw: print(json.dumps([kw['name'], [p.name for p in kw['policies']],"
              " [p.enforcement_level.value for p in kw['policies']]]))\n"
              "sys.path[:] = [p for p in sys.path if p not in ('', sys.argv[1])]\n"
              "runpy.run_path('.', run_name='__main__')\n")
    done = subprocess.run([sys.executable, "-c", script, str(ROOT)], cwd=ROOT / "guardrails", capture_output=True,
                          text=True, timeout=120, env={**__import__("os").environ, "PYTHONPATH": ""})
    assert done.returncode == 0, done.stderr
    name, names, levels = json.loads(done.stdout)
    assert name == "cilium-egress-lab-guardrails" and names == [r.name for r in rules.RULES]
    assert levels == [r.level for r in rules.RULES]


def test_the_example_policy_config_names_only_real_policies_and_their_keys():
    example = json.loads((ROOT / "guardrails" / "config.example.json").read_text())
    for name, value in example.items():
        rule = rules.RULES_BY_NAME[name]
        if isinstance(value, dict):
            assert set(value) <= set(rule.config), name
        else:
            assert value in ("advisory", "mandatory", "disabled"), name


def test_pulumi_policy_yaml_and_the_pinned_sdk():
    spec = yaml.safe_load((ROOT / "guardrails" / "PulumiPolicy.yaml").read_text())
    assert spec["runtime"]["name"] == "python" and spec["runtime"]["options"]["virtualenv"] == "../venv"
    assert spec["version"] and spec["description"]
    import tomllib
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "pulumi-policy==1.21.0" in pins
    assert (ROOT / "requirements.txt").read_text().splitlines()[-1] == "-e ."  # the program's venv installs it
    import pulumi_policy.version
    assert pulumi_policy.version.VERSION == "1.21.0"


# ------------------------------------------------------------------ issue 20: the harm, not one spelling
# Each variant is built from the program's own resources (``with_inputs``, or a new resource made from
# one of them with ``like``), judged by one policy exactly as the SDK calls it, and must fail with the
# rule's message naming the resource. The security review's 35 changes are among them.
import base64 as _b64  # noqa: E402

import pulumi  # noqa: E402

PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow...\n-----END RSA PRIVATE KEY-----\n"
PEM_B64 = _b64.b64encode(PEM.encode()).decode()
PGP = "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF...\n-----END PGP PRIVATE KEY BLOCK-----"
JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEyMyJ9.eyJpc3MiOiJrdWJlcm5ldGVzL3NlcnZpY2VhY2NvdW50In0.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWc"
LOCKED_STACK = {**DEV_STACK_CONFIG, LOCK_KEY: "true"}
OTHER_IP = "203.0.113.99"


def like(res: Res, typ: str, name: str, **inputs) -> Res:
    """A new resource in the program, next to ``res`` (same parent and dependencies)."""
    return Res(typ, name, {k: v for k, v in inputs.items() if v is not None},
               f"urn:pulumi:dev::cilium-egress-lab::{typ}::{name}", res.parent, list(res.deps), res.provider, True)


def judge(program: Program, policy_name: str, changed: list[Res], config: dict | None = None,
          stack_config=None) -> list[tuple[str, str | None]]:
    """(message, urn) of one policy: a resource policy on each changed/added resource, a stack policy
    on the program with the changed resources swapped in (by name) or added."""
    policy = policies(stack_config)[policy_name]
    if isinstance(policy, ResourceValidationPolicy):
        return [(m, r.urn) for r in changed for m, _ in violations(policy, r, config)]
    names = {r.name: r for r in changed}
    swapped = [names.pop(r.name, r) for r in program.resources]
    return violations(policy, stack_resources(Program([*swapped, *names.values()], program.outputs)), config)


def _instance_like(p: Program, typ: str, name: str, **changes) -> Res:
    inst = p.named("kind-demo-instance")
    keep = {k: inst.inputs[k] for k in ("metadataOptions", "rootBlockDevice", "instanceType", "ami")
            if k in inst.inputs}
    return like(inst, typ, name, **{**keep, **changes})


def _template(p: Program, typ: str, name: str, **inputs) -> Res:
    return like(p.named("kind-demo-instance"), typ, name, **inputs)


GOOD_MD = {"httpTokens": "required", "httpPutResponseHopLimit": 1, "httpEndpoint": "enabled"}
GOOD_BDM = [{"deviceName": "/dev/sda1", "ebs": {"volumeSize": 30, "volumeType": "gp3", "encrypted": "true"}}]
NATIVE_BDM = [{"deviceName": "/dev/sda1", "ebs": {"volumeSize": 30, "volumeType": "gp3", "encrypted": True}}]


def _ingress(p: Program, **changes) -> Res:
    return with_inputs(p.named("proxy-demo-sg-ingress-proxy"), **changes)  # squid's port 3128


def _cmd(p: Program, field: str, value) -> Res:
    cmd = p.named("kind-demo-cloud-init")
    return with_inputs(cmd, **{field: value})


def _copy(p: Program, remote_path: str, text: str) -> Res:
    cmd = p.named("kind-demo-cloud-init")
    return like(cmd, "command:remote:CopyToRemote", "leaky-copy", source=pulumi.StringAsset(text),
                remotePath=remote_path, triggers=["x"])


def _kind_egress(p: Program, typ: str, name: str, **inputs) -> Res:
    rule = p.named("kind-demo-sg-egress-proxy")
    return Res(typ, name, inputs, f"urn:pulumi:dev::cilium-egress-lab::{typ}::{name}", rule.parent,
               list(rule.deps), rule.provider, True)


# (id, program fixture, policy, build(program) -> changed/added resources, the resource the message
#  must name, a needle of the rule's message, policy config, stack config)
HARM = [
    # ingress wider than the operator limit, prefix lists, other groups - on any port (squid's 3128)
    ("ingress-0.0.0.0/1", "unlocked", "no-world-ingress", lambda p: [_ingress(p, cidrIpv4="0.0.0.0/1")],
     "proxy-demo-sg-ingress-proxy", "ingress from 0.0.0.0/1 (2,147,483,648 addresses), wider than /16", None, None),
    ("ingress-128.0.0.0/1", "unlocked", "no-world-ingress", lambda p: [_ingress(p, cidrIpv4="128.0.0.0/1")],
     "proxy-demo-sg-ingress-proxy", "128.0.0.0/1", None, None),
    ("ingress-::/1", "unlocked", "no-world-ingress",
     lambda p: [_ingress(p, cidrIpv4=None, cidrIpv6="::/1")], "proxy-demo-sg-ingress-proxy", "::/1", None, None),
    ("ingress-10/8-to-squid", "unlocked", "no-world-ingress", lambda p: [_ingress(p, cidrIpv4="10.0.0.0/8")],
     "proxy-demo-sg-ingress-proxy", "wider than /16", None, None),
    ("ingress-/15", "unlocked", "no-world-ingress", lambda p: [_ingress(p, cidrIpv4="198.50.0.0/15")],
     "proxy-demo-sg-ingress-proxy", "198.50.0.0/15 (131,072 addresses)", None, None),
    ("ingress-prefix-list", "unlocked", "no-world-ingress",
     lambda p: [_ingress(p, cidrIpv4=None, prefixListId="pl-0123456789abcdef0")],
     "proxy-demo-sg-ingress-proxy", "ingress from prefixListId pl-0123456789abcdef0", None, None),
    ("ingress-other-group", "unlocked", "no-world-ingress",
     lambda p: [_ingress(p, cidrIpv4=None, referencedSecurityGroupId="sg-0badbadbadbadbad0")],
     "proxy-demo-sg-ingress-proxy", "referencedSecurityGroupId sg-0badbadbadbadbad0", None, None),
    ("ingress-inline-group-ref", "unlocked", "no-world-ingress",
     lambda p: [with_inputs(p.named("kind-demo-sg-group"), ingress=[
         {"protocol": "tcp", "fromPort": 443, "toPort": 443, "securityGroups": ["sg-0badbadbadbadbad0"]}])],
     "kind-demo-sg-group", "securityGroups sg-0badbadbadbadbad0", None, None),
    ("ingress-legacy-prefix-list", "unlocked", "no-world-ingress",
     lambda p: [like(p.named("proxy-demo-sg-ingress-proxy"), rules.SG_RULE, "legacy-squid", type="ingress",
                     protocol="tcp", fromPort=3128, toPort=3128, prefixListIds=["pl-0123456789abcdef0"])],
     "legacy-squid", "prefixListIds pl-0123456789abcdef0", None, None),
    ("ingress-native-world", "unlocked", "no-world-ingress",
     lambda p: [like(p.named("proxy-demo-sg-ingress-proxy"), "aws-native:ec2:SecurityGroupIngress", "native-squid",
                     ipProtocol="tcp", fromPort=3128, toPort=3128, cidrIp="0.0.0.0/0", groupId="sg-1")],
     "native-squid", "ingress from 0.0.0.0/0 (every address on the internet)", None, None),
    ("ingress-native-inline-v6", "unlocked", "no-world-ingress",
     lambda p: [like(p.named("kind-demo-sg-group"), "aws-native:ec2:SecurityGroup", "native-group",
                     groupDescription="x", securityGroupIngress=[{"ipProtocol": "tcp", "fromPort": 8080,
                                                                   "toPort": 8080, "cidrIpv6": "2001:db8::/32"}])],
     "native-group", "2001:db8::/32", None, None),
    ("ingress-not-a-cidr", "unlocked", "no-world-ingress", lambda p: [_ingress(p, cidrIpv4="anywhere")],
     "proxy-demo-sg-ingress-proxy", "'anywhere', which is not a CIDR", None, None),
    # SSH and the API: exactly the operator CIDR, also with operatorCidr auto
    ("ssh-another-/32-auto", "unlocked", "admin-ports-operator-only",
     lambda p: [with_inputs(p.named("kind-demo-sg-ingress-ssh"), cidrIpv4=f"{OTHER_IP}/32")],
     "kind-demo-sg-ingress-ssh", f"open to {OTHER_IP}/32; only the operator CIDR {OPERATOR_IP}/32", None, None),
    ("api-operator-/24-auto", "unlocked", "admin-ports-operator-only",
     lambda p: [with_inputs(p.named("kind-demo-sg-ingress-kube-api"), cidrIpv4="198.51.100.0/24")],
     "kind-demo-sg-ingress-kube-api", "port 6443 (SSH/Kubernetes API) open to 198.51.100.0/24", None, None),
    ("ssh-from-a-group", "unlocked", "admin-ports-operator-only",
     lambda p: [with_inputs(p.named("proxy-demo-sg-ingress-ssh"), cidrIpv4=None,
                            referencedSecurityGroupId="sg-0badbadbadbadbad0")],
     "proxy-demo-sg-ingress-ssh", "open to referencedSecurityGroupId sg-0badbadbadbadbad0", None, None),
    ("all-traffic-from-the-kind-host", "unlocked", "admin-ports-operator-only",
     lambda p: [_ingress(p, ipProtocol="-1", fromPort=None, toPort=None)],
     "proxy-demo-sg-ingress-proxy", "port 22/6443/6444 (SSH/Kubernetes API) open to 203.0.113.10/32", None, None),
    ("every-tcp-port-from-the-kind-host", "unlocked", "admin-ports-operator-only",
     lambda p: [_ingress(p, fromPort=0, toPort=65535)], "proxy-demo-sg-ingress-proxy", "port 22/6443", None, None),
    ("ssh-from-the-group-itself", "unlocked", "admin-ports-operator-only",
     lambda p: [with_inputs(p.named("kind-demo-sg-group"), ingress=[
         {"protocol": "tcp", "fromPort": 22, "toPort": 22, "self": True}])],
     "kind-demo-sg-group", "port 22 (SSH/Kubernetes API) open to the group itself", None, None),
    # egress, locked: nothing wider than the proxy /32
    ("locked-egress-0.0.0.0/0", "locked", "locked-egress",
     lambda p: [with_inputs(p.named("kind-demo-sg-lock-egress-internet"), cidrIpv4="0.0.0.0/0")],
     "kind-demo-sg-lock-egress-internet", "yet it allows 0.0.0.0/0, wider than the proxy's /32", None, LOCKED_STACK),
    ("locked-egress-/24", "locked", "locked-egress",
     lambda p: [with_inputs(p.named("kind-demo-sg-egress-proxy"), cidrIpv4="203.0.113.0/24")],
     "kind-demo-sg-egress-proxy", "203.0.113.0/24, wider than the proxy's /32", None, LOCKED_STACK),
    ("locked-egress-dns-side-door", "locked", "locked-egress",
     lambda p: [_kind_egress(p, rules.SG_EGRESS, "kind-demo-sg-egress-dns", ipProtocol="udp", fromPort=53, toPort=53,
                             cidrIpv4="8.8.8.8/32", securityGroupId="kind-demo-sg-group-id")],
     "kind-demo-sg-egress-dns", "allows 8.8.8.8/32 besides 203.0.113.20/32", None, LOCKED_STACK),
    ("locked-egress-inline", "locked", "locked-egress",
     lambda p: [with_inputs(p.named("kind-demo-sg-group"), egress=[
         {"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}])],
     "kind-demo-sg-group", "yet it allows 0.0.0.0/0", None, LOCKED_STACK),
    ("locked-egress-legacy-prefix-list", "locked", "locked-egress",
     lambda p: [_kind_egress(p, rules.SG_RULE, "kind-demo-legacy-egress", type="egress", protocol="tcp",
                             fromPort=443, toPort=443, prefixListIds=["pl-0123456789abcdef0"])],
     "kind-demo-legacy-egress", "allows prefixListIds pl-0123456789abcdef0", None, LOCKED_STACK),
    ("locked-egress-to-a-group", "locked", "locked-egress",
     lambda p: [with_inputs(p.named("kind-demo-sg-egress-proxy"), cidrIpv4=None,
                            referencedSecurityGroupId="sg-0badbadbadbadbad0")],
     "kind-demo-sg-egress-proxy", "allows referencedSecurityGroupId sg-0badbadbadbadbad0", None, LOCKED_STACK),
    ("locked-egress-not-the-proxy", "locked", "locked-egress",
     lambda p: [with_inputs(p.named("proxy-eip-demo"), publicIp="203.0.113.20"),
                with_inputs(p.named("kind-demo-sg-egress-proxy"), cidrIpv4=f"{OTHER_IP}/32")],
     "kind-demo-sg-egress-proxy", f"to {OTHER_IP}/32, which is not the proxy's address 203.0.113.20", None,
     LOCKED_STACK),
    # every type that launches or templates an instance: IMDSv2 + hop limit
    ("instance-without-metadata-options", "unlocked", "imdsv2-required",
     lambda p: [with_inputs(p.named("kind-demo-instance"), metadataOptions=None)],
     "kind-demo-instance", "metadataOptions.httpTokens is None", None, None),
    ("spot-instance-imdsv1", "unlocked", "imdsv2-required",
     lambda p: [_instance_like(p, "aws:ec2/spotInstanceRequest:SpotInstanceRequest", "spot",
                               metadataOptions={**GOOD_MD, "httpTokens": "optional"})],
     "spot", "metadataOptions.httpTokens is 'optional'", None, None),
    ("launch-template-hop-limit-3", "unlocked", "imdsv2-required",
     lambda p: [_template(p, rules.LAUNCH_TEMPLATE, "lt", metadataOptions={**GOOD_MD, "httpPutResponseHopLimit": 3},
                          blockDeviceMappings=GOOD_BDM)],
     "lt", "metadataOptions.httpPutResponseHopLimit is 3; at most 1", None, None),
    ("launch-configuration-no-metadata-options", "unlocked", "imdsv2-required",
     lambda p: [_instance_like(p, "aws:ec2/launchConfiguration:LaunchConfiguration", "lc", metadataOptions=None)],
     "lc", "metadataOptions.httpTokens is None", None, None),
    ("native-instance-no-imds-settings", "unlocked", "imdsv2-required",
     lambda p: [_template(p, "aws-native:ec2:Instance", "native-instance", imageId="ami-1", instanceType="t3.small",
                          blockDeviceMappings=NATIVE_BDM)],
     "native-instance", "metadataOptions.httpTokens is None", None, None),
    ("native-instance-options-only-in-a-template", "unlocked", "imdsv2-required",
     lambda p: [_template(p, "aws-native:ec2:Instance", "native-instance", imageId="ami-1", instanceType="t3.small",
                          launchTemplate={"launchTemplateId": "lt-0123456789abcdef0", "version": "1"},
                          blockDeviceMappings=NATIVE_BDM)],
     "native-instance", "metadataOptions.httpTokens is None", None, None),
    ("native-launch-template-imdsv1", "unlocked", "imdsv2-required",
     lambda p: [_template(p, "aws-native:ec2:LaunchTemplate", "native-lt", launchTemplateData={
         "metadataOptions": {"httpTokens": "optional", "httpPutResponseHopLimit": 1},
         "blockDeviceMappings": NATIVE_BDM})],
     "native-lt", "launchTemplateData.metadataOptions.httpTokens is 'optional'", None, None),
    # ...and encrypted volumes
    ("instance-unencrypted-data-volume", "unlocked", "encrypted-volumes",
     lambda p: [with_inputs(p.named("kind-demo-instance"), ebsBlockDevices=[
         {"deviceName": "/dev/sdf", "volumeSize": 10, "volumeType": "gp3", "encrypted": False}])],
     "kind-demo-instance", "ebsBlockDevices[0] (/dev/sdf).encrypted is False", None, None),
    ("spot-unencrypted-root", "unlocked", "encrypted-volumes",
     lambda p: [_instance_like(p, "aws:ec2/spotInstanceRequest:SpotInstanceRequest", "spot",
                               rootBlockDevice={"volumeSize": 30, "volumeType": "gp3", "encrypted": False})],
     "spot", "rootBlockDevice.encrypted is False", None, None),
    ("launch-template-unencrypted", "unlocked", "encrypted-volumes",
     lambda p: [_template(p, rules.LAUNCH_TEMPLATE, "lt", metadataOptions=GOOD_MD, blockDeviceMappings=[
         {"deviceName": "/dev/sda1", "ebs": {"volumeSize": 30, "encrypted": "false"}}])],
     "lt", "blockDeviceMappings[0] (/dev/sda1).ebs.encrypted is 'false'", None, None),
    ("launch-template-image-default-volume", "unlocked", "encrypted-volumes",
     lambda p: [_template(p, rules.LAUNCH_TEMPLATE, "lt", metadataOptions=GOOD_MD)],
     "lt", "no blockDeviceMappings: the root volume is encrypted only if the account's default", None, None),
    ("launch-configuration-unencrypted-root", "unlocked", "encrypted-volumes",
     lambda p: [_instance_like(p, "aws:ec2/launchConfiguration:LaunchConfiguration", "lc",
                               rootBlockDevice={"volumeSize": 30, "encrypted": False})],
     "lc", "rootBlockDevice.encrypted is False", None, None),
    ("native-instance-unencrypted", "unlocked", "encrypted-volumes",
     lambda p: [_template(p, "aws-native:ec2:Instance", "native-instance", metadataOptions=GOOD_MD,
                          blockDeviceMappings=[{"deviceName": "/dev/sda1", "ebs": {"volumeSize": 30}}])],
     "native-instance", "blockDeviceMappings[0] (/dev/sda1).ebs.encrypted is None", None, None),
    # key material in any form, in command text, triggers and copied files
    ("base64-pem-in-a-command", "unlocked", "no-key-material-in-commands",
     lambda p: [_cmd(p, "create", f"echo {PEM_B64} | base64 -d > /tmp/k")],
     "kind-demo-cloud-init", "create holds a private key in plain text ('base64 of -----BEGIN RSA", None, None),
    ("double-base64-pem-in-triggers", "unlocked", "no-key-material-in-commands",
     lambda p: [_cmd(p, "triggers", [_b64.b64encode(PEM_B64.encode()).decode()])],
     "kind-demo-cloud-init", "triggers holds a private key", None, None),
    ("json-client-key-data-on-stdin", "unlocked", "no-key-material-in-commands",
     lambda p: [_cmd(p, "stdin", json.dumps({"users": [{"user": {"client-key-data": "c2VjcmV0a2V5ZGF0YQ=="}}]}))],
     "kind-demo-cloud-init", "stdin holds a private key in plain text ('client-key-data\": \"c2VjcmV0", None, None),
    ("quoted-client-key-data-in-triggers", "unlocked", "no-key-material-in-commands",
     lambda p: [_cmd(p, "triggers", ['client-key-data: "c2VjcmV0a2V5ZGF0YQ=="'])],
     "kind-demo-cloud-init", "triggers holds a private key in plain text ('client-key-data: \"c2Vj", None, None),
    ("bearer-token-in-a-command", "unlocked", "no-key-material-in-commands",
     lambda p: [_cmd(p, "create", "curl -H 'Authorization: Bearer sk_live_0123456789abcdefghij' https://x")],
     "kind-demo-cloud-init", "create holds a private key in plain text ('Bearer sk_live_0123456789", None, None),
    ("service-account-jwt-in-triggers", "unlocked", "no-key-material-in-commands",
     lambda p: [_cmd(p, "triggers", [f"token={JWT}"])], "kind-demo-cloud-init", "triggers holds a private key in plain text ('eyJ",
     None, None),
    ("pgp-private-key-in-environment", "unlocked", "no-key-material-in-commands",
     lambda p: [_cmd(p, "environment", {"GPG_KEY": PGP})],
     "kind-demo-cloud-init", "environment holds a private key in plain text ('-----BEGIN PGP PRIVATE KEY BLOCK", None, None),
    ("private-key-in-a-copied-file", "unlocked", "no-key-material-in-commands",
     lambda p: [_copy(p, "/home/ubuntu/.ssh/id_rsa", PEM)],
     "leaky-copy", "the file it copies (source) holds a private key ('-----BEGIN RSA", None, None),
    ("kubeconfig-in-a-copied-file", "unlocked", "no-key-material-in-commands",
     lambda p: [_copy(p, "/home/ubuntu/.kube/config", "users:\n- user:\n    client-key-data: c2VjcmV0a2V5ZGF0YQ==\n")],
     "leaky-copy", "the file it copies (source) holds a private key ('client-key-data", None, None),
    # cost: unknown types fail closed, the pack's ceiling caps the stack's
    ("unknown-type-is-not-free", "unlocked", "cost-ceiling",
     lambda p: [like(p.named("kind-demo-instance"), "aws:rds/cluster:Cluster", "db", engine="aurora-postgresql")],
     "db", "db: resource type aws:rds/cluster:Cluster is neither priced nor listed as free", None, None),
    ("spot-instances-are-not-free", "unlocked", "cost-ceiling",
     lambda p: [_instance_like(p, "aws:ec2/spotInstanceRequest:SpotInstanceRequest", "spot")],
     "spot", "spot: resource type aws:ec2/spotInstanceRequest:SpotInstanceRequest is neither priced", None, None),
    ("stack-raises-its-own-ceiling", "unlocked", "cost-ceiling",
     lambda p: [with_inputs(p.named("kind-demo-instance"), instanceType="m7i.2xlarge")],
     "kind-demo-instance", "exceeds the ceiling $150/month ($0.2055/h, policy config maxMonthlyCostUsd; the stack's own "
     "cilium-egress-lab:maxMonthlyCostUsd 100000 is capped by it)", {"maxMonthlyCostUsd": 150},
     {**DEV_STACK_CONFIG, "cilium-egress-lab:maxMonthlyCostUsd": "100000"}),
]


def test_the_harm_table_is_at_least_the_reviews_35_changes():
    assert len(HARM) >= 35 and len({h[0] for h in HARM}) == len(HARM)
    assert {h[2] for h in HARM} >= {r.name for r in rules.RULES if r.level == rules.MANDATORY} - {"secret-outputs"}


@pytest.mark.parametrize("case", HARM, ids=[h[0] for h in HARM])
def test_each_harmful_variant_fails_naming_the_resource(case, request):
    _, fixture, policy_name, build, resource, needle, config, stack_config = case
    program = request.getfixturevalue(fixture)
    changed = build(program)
    found = judge(program, policy_name, changed, config, stack_config)
    assert found, f"{case[0]} passed {policy_name}"
    urns = {r.name: r.urn for r in [*changed, *program.resources]}
    # the message names the resource first, or (the cost ceiling) is attributed to it and names it
    assert any(needle in m and (m.startswith(f"{resource}: ") or (u == urns[resource] and resource in m))
               for m, u in found), found


SECRET_LEAKS = [("base64-pem", PEM_B64, "base64 of -----BEGIN RSA PRIVATE KEY"),
                ("json-kubeconfig", json.dumps({"client-key-data": "c2VjcmV0a2V5ZGF0YQ=="}), "client-key-data"),
                ("bearer", "Authorization: Bearer 0123456789abcdefghijkl", "Bearer 0123456789"),
                ("pgp", PGP, "-----BEGIN PGP PRIVATE KEY BLOCK")]


@pytest.mark.parametrize("what,value,needle", SECRET_LEAKS, ids=[s[0] for s in SECRET_LEAKS])
def test_a_plain_output_with_key_material_in_any_form(unlocked, what, value, needle):
    (message, urn), = violations(policies()["secret-outputs"],
                                 stack_resources(unlocked, {**unlocked.outputs, "debug": value}))
    assert message.startswith("stack output 'debug' contains private key material") and needle in message
    assert urn == STACK_URN


def test_what_the_harm_rules_leave_alone(unlocked, every_scenario_locked):
    """The allowances stay allowances: an allow-listed group, an unlocked 0.0.0.0/0 egress, the mTLS
    server.pem copy (a Pulumi secret in the program) and a template held to the rules."""
    ref = _ingress(unlocked, cidrIpv4=None, referencedSecurityGroupId="sg-0a11owed0a11owed0")
    assert judge(unlocked, "no-world-ingress", [ref], {"allowedSources": ["sg-0a11owed0a11owed0"]}) == []
    assert judge(unlocked, "locked-egress", [with_inputs(unlocked.named("kind-demo-sg-lock-egress-internet"),
                                                         cidrIpv4="0.0.0.0/0")]) == []
    copies = [r for r in every_scenario_locked.resources if r.type == "command:remote:CopyToRemote"]
    carrying = [r for r in copies if rules.has_key_material(r.inputs["source"])]
    assert [r.inputs["remotePath"].rsplit("/", 1)[-1] for r in carrying] == list(rules.KEY_COPY_FILES)
    assert all("source" in r.secret_inputs for r in carrying)  # passed as a Pulumi secret
    assert judge(every_scenario_locked, "no-key-material-in-commands", carrying) == []
    good = _template(unlocked, rules.LAUNCH_TEMPLATE, "lt", metadataOptions=GOOD_MD, blockDeviceMappings=GOOD_BDM)
    assert judge(unlocked, "imdsv2-required", [good]) == judge(unlocked, "encrypted-volumes", [good]) == []
