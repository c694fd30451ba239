"""The AWS part of the program under mocks: inventory, exact rule sets, the lock toggle, invariants."""
from __future__ import annotations

import yaml

from .harness import (
    FAKE_KUBECONFIG,
    KIND_IP,
    OPERATOR_IP,
    PROXY_IP,
    SECRET_MARKER,
    run_program,
)

SG_IN = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_OUT = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
INSTANCE = "aws:ec2/instance:Instance"


def rules(program, typ, group):
    """{rule key: (protocol, from, to, cidr)} of one group's rules of one direction."""
    out = {}
    for r in program.of_type(typ):
        owner = r.name.split("-ingress-")[0].split("-egress-")[0]
        if owner == group:
            key = r.name[len(group) + 1:]
            out[key] = (r.inputs["ipProtocol"], r.inputs.get("fromPort"), r.inputs.get("toPort"),
                        r.inputs["cidrIpv4"])
    return out


def test_inventory_of_the_default_stack(unlocked):
    counts = {}
    for r in unlocked.resources:
        counts[r.type] = counts.get(r.type, 0) + 1
    assert counts == {
        "cilium-egress-lab:network:Network": 1,
        "cilium-egress-lab:access:SshKey": 1,
        "cilium-egress-lab:network:LockableSecurityGroup": 2,
        "cilium-egress-lab:network:EgressLock": 1,
        "cilium-egress-lab:hosts:KindHost": 1,
        "cilium-egress-lab:hosts:ProxyHost": 1,
        "aws:ec2/vpc:Vpc": 1, "aws:ec2/subnet:Subnet": 1,
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": 1, "aws:ec2/flowLog:FlowLog": 1,
        "aws:cloudwatch/logGroup:LogGroup": 1, "aws:iam/role:Role": 1, "aws:iam/rolePolicy:RolePolicy": 1,
        "aws:ec2/internetGateway:InternetGateway": 1, "aws:ec2/routeTable:RouteTable": 1,
        "aws:ec2/routeTableAssociation:RouteTableAssociation": 1,
        "tls:index/privateKey:PrivateKey": 3, "aws:ec2/keyPair:KeyPair": 1,  # the SSH key + 2 host keys
        "aws:ec2/securityGroup:SecurityGroup": 2, SG_IN: 4, SG_OUT: 3,
        "aws:ec2/eip:Eip": 2, "aws:ec2/eipAssociation:EipAssociation": 2, INSTANCE: 2,
        "command:remote:Command": 11, "cilium-egress-lab:verify:Probes": 1,
        "cilium-egress-lab:cilium:CiliumRelease": 1, "cilium-egress-lab:scenarios:Scenario": 1,
        "pulumi:providers:kubernetes": 1,
        "kubernetes:helm.sh/v3:Release": 1, "kubernetes:core/v1:Namespace": 2,
        "kubernetes:core/v1:Pod": 2, "kubernetes:cilium.io/v2:CiliumEnvoyConfig": 1,
        "kubernetes:cilium.io/v2:CiliumNetworkPolicy": 1,
        "cilium-egress-lab:kubernetes:PlatformPolicies": 1, "kubernetes:cilium.io/v2:CiliumClusterwideNetworkPolicy": 1,
    }
    vpc = unlocked.named("net-demo-vpc")
    assert vpc.inputs["cidrBlock"] == "10.0.0.0/16"
    assert unlocked.named("net-demo-public").inputs["cidrBlock"] == "10.0.100.0/24"
    route = unlocked.named("net-demo-public-rt").inputs["routes"]
    assert [r["cidrBlock"] for r in route] == ["0.0.0.0/0"] and "gatewayId" in route[0]
    assert not unlocked.of_type("aws:ec2/natGateway:NatGateway")


def test_exact_rule_sets_unlocked(unlocked):
    op = f"{OPERATOR_IP}/32"
    assert rules(unlocked, SG_IN, "kind-demo-sg") == {
        "ingress-ssh": ("tcp", 22, 22, op), "ingress-kube-api": ("tcp", 6443, 6443, op)}
    assert rules(unlocked, SG_IN, "proxy-demo-sg") == {
        "ingress-ssh": ("tcp", 22, 22, op), "ingress-proxy": ("tcp", 3128, 3128, f"{KIND_IP}/32")}
    assert rules(unlocked, SG_OUT, "proxy-demo-sg") == {"egress-all": ("-1", None, None, "0.0.0.0/0")}
    kind_egress = rules(unlocked, SG_OUT, "kind-demo-sg") | rules(unlocked, SG_OUT, "kind-demo-sg-lock")
    assert kind_egress == {"egress-proxy": ("-1", None, None, f"{PROXY_IP}/32"),
                           "egress-internet": ("-1", None, None, "0.0.0.0/0")}


def test_exact_rule_sets_locked(locked):
    """Locked means locked: nothing but the proxy /32. DNS goes to the VPC resolver and NTP to the
    Amazon Time Sync Service, which security groups do not filter (AWS VPC user guide), so no
    world rule for tcp/udp 53 or udp 123 - those were a way out to any server on those ports."""
    kind_egress = rules(locked, SG_OUT, "kind-demo-sg") | rules(locked, SG_OUT, "kind-demo-sg-lock")
    assert kind_egress == {
        "egress-proxy": ("-1", None, None, f"{PROXY_IP}/32"),
        # narrowed in place to the proxy port (inside egress-proxy): locking is an in-place update
        "egress-internet": ("tcp", 3128, 3128, f"{PROXY_IP}/32"),
    }
    assert all(cidr.endswith("/32") for *_, cidr in kind_egress.values())
    assert [k for k, (proto, *_rest) in kind_egress.items() if proto == "-1"] == ["egress-proxy"]
    assert [r["key"] for r in locked.outputs["kindEgressRules"]] == ["egress-proxy", "egress-internet"]
    assert locked.outputs["kindEgressRules"][0]["cidr"] == f"{PROXY_IP}/32"


def test_custom_proxy_port_reaches_rules_and_user_data():
    p = run_program({"proxyPort": 8888, "operatorCidr": "192.0.2.0/24"})
    assert rules(p, SG_IN, "proxy-demo-sg")["ingress-proxy"] == ("tcp", 8888, 8888, f"{KIND_IP}/32")
    assert rules(p, SG_IN, "kind-demo-sg")["ingress-ssh"][3] == "192.0.2.0/24"
    assert f"http://{PROXY_IP}:8888" in p.named("kind-demo-instance").inputs["userData"]
    assert "http_port 8888" in p.named("proxy-demo-instance").inputs["userData"]


def test_toggle_changes_only_egress_rules(unlocked, locked):
    def by_name(p):
        return {(r.type, r.name): r.inputs for r in p.resources}
    a, b = by_name(unlocked), by_name(locked)
    changed = {n for n in a.keys() & b.keys() if a[n] != b[n]}
    # the probes re-run (their triggers carry the lock state); a probe whose expected outcome flips
    # also waits for the new one (its command names it); nothing else about them changes
    probes = {n for n in changed if n[1].startswith("probes-egress-demo-")}
    assert len(probes) == 7
    for n in probes:
        assert {k for k in a[n] if a[n][k] != b[n][k]} in ({"triggers"}, {"triggers", "create"}), n
    assert {n[1] for n in probes if a[n]["create"] != b[n]["create"]} == {
        "probes-egress-demo-egress-test-deny-allowed", "probes-egress-demo-egress-test-deny-control"}
    # the one rule narrowed in place (everything -> DNS/TCP), so the lock is in force before the
    # probes run (Pulumi deletes only at the end of an update)
    assert changed - probes == {(SG_OUT, "kind-demo-sg-lock-egress-internet")}, sorted(changed)
    assert a[(SG_OUT, "kind-demo-sg-lock-egress-internet")]["securityGroupId"] == \
        b[(SG_OUT, "kind-demo-sg-lock-egress-internet")]["securityGroupId"]
    assert a.keys() == b.keys()  # locking neither creates nor deletes: one in-place update


def test_lock_rules_wait_for_the_cluster_but_the_boot_path_does_not(locked):
    ready = locked.named("kind-demo-cloud-init").urn
    for r in locked.of_type(SG_OUT):
        if r.name.startswith("kind-demo-sg-lock-"):
            assert ready in r.deps, f"{r.name} does not wait for the kind host"
    boot_path = locked.named("kind-demo-sg-egress-proxy")
    assert ready not in boot_path.deps  # the host needs this rule to boot at all


def test_no_ingress_open_to_the_world(unlocked, locked):
    for p in (unlocked, locked):
        for r in p.of_type(SG_IN):
            assert r.inputs["cidrIpv4"] not in ("0.0.0.0/0",) and "cidrIpv6" not in r.inputs, r.name
            assert r.inputs["cidrIpv4"].endswith("/32") or r.inputs["cidrIpv4"] == f"{OPERATOR_IP}/32"


def test_security_groups_have_no_inline_rules(unlocked):
    for g in unlocked.of_type("aws:ec2/securityGroup:SecurityGroup"):
        assert not g.inputs.get("ingress") and not g.inputs.get("egress"), g.name


def test_instances_are_hardened(unlocked):
    instances = unlocked.of_type(INSTANCE)
    assert {i.name for i in instances} == {"kind-demo-instance", "proxy-demo-instance"}
    for i in instances:
        assert i.inputs["metadataOptions"]["httpTokens"] == "required"
        root = i.inputs["rootBlockDevice"]
        assert root["encrypted"] is True and root["volumeType"] == "gp3" and root["volumeSize"] == 30
        assert i.inputs["userDataReplaceOnChange"] is True
        assert i.inputs["ami"] == "ami-0123456789abcdef0"
        assert "associatePublicIpAddress" not in i.inputs or not i.inputs["associatePublicIpAddress"]
    assert unlocked.named("kind-demo-instance").inputs["instanceType"] == "m7i.large"


def test_both_eips_exist_before_either_instance(unlocked):
    kind_eip, proxy_eip = unlocked.named("kind-eip-demo").urn, unlocked.named("proxy-eip-demo").urn
    # user-data names the other host's address: both are allocated before either instance boots
    assert {kind_eip, proxy_eip} <= set(unlocked.named("kind-demo-instance").deps)
    assert kind_eip in unlocked.named("proxy-demo-instance").deps
    for host in ("kind", "proxy"):  # and neither instance waits for the other instance
        other = "proxy" if host == "kind" else "kind"
        assert unlocked.named(f"{other}-demo-instance").urn not in unlocked.named(f"{host}-demo-instance").deps
    for e in unlocked.of_type("aws:ec2/eip:Eip"):
        assert e.inputs["domain"] == "vpc"
        assert unlocked.named("net-demo-igw").urn in e.deps


def test_readiness_commands_wait_for_cloud_init_with_generous_retries(unlocked):
    for host in ("kind-demo", "proxy-demo"):
        cmd = unlocked.named(f"{host}-cloud-init")
        assert cmd.inputs["create"].startswith("cloud-init status --wait")
        assert "test $? -eq 2" in cmd.inputs["create"]
        assert cmd.inputs["connection"]["dialErrorLimit"] >= 30
        assert "connection" in cmd.secret_inputs  # it carries the private key
        assert cmd.inputs["triggers"] == [f"{host}-instance-id"]
        assert unlocked.named(f"{host}-eip-assoc").urn in cmd.deps
    kube = unlocked.named("kind-demo-kubeconfig")
    assert unlocked.named("kind-demo-cloud-init").urn in kube.deps
    assert kube.inputs["logging"] == "none"
    assert f"server: https://{KIND_IP}:6443" in kube.inputs["create"]


def test_secrets_stay_secret(unlocked):
    assert {"sshPrivateKey", "kubeconfig"} <= unlocked.secret_outputs
    assert unlocked.outputs["kubeconfig"] == FAKE_KUBECONFIG
    assert unlocked.outputs["sshPrivateKey"] == SECRET_MARKER
    for name, value in unlocked.outputs.items():
        if name not in unlocked.secret_outputs:
            assert "PRIVATE KEY" not in str(value) and "client-key-data" not in str(value), name


def test_plain_outputs(unlocked):
    o = unlocked.outputs
    assert (o["kindPublicIp"], o["proxyPublicIp"]) == (KIND_IP, PROXY_IP)
    assert o["sshKind"] == f"ssh -i lab.key ubuntu@{KIND_IP}"
    assert o["restrictEgress"] is False
    assert isinstance(o["kindEgressRules"], list) and "kindEgressRules" not in unlocked.secret_outputs


def test_every_child_has_a_component_parent_and_derived_name(unlocked):
    components = {r.urn: r for r in unlocked.resources if not r.custom}
    for r in unlocked.resources:
        if r.custom and r.type not in ("aws:ec2/eip:Eip", "pulumi:providers:kubernetes"):
            parent = components.get(r.parent)
            assert parent is not None, f"{r.name} has no component parent"
            assert r.name.startswith(parent.name + "-"), (r.name, parent.name)


def test_the_entry_point_declares_the_same_program(unlocked):
    """__main__.py (what `pulumi up` runs) only wires settings -> stacks.program.main -> exports."""
    import runpy

    import pulumi
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from .harness import ROOT_DIR, LabMocks, RecordingMonitor
    mocks = LabMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="cilium-egress-lab", stack="dev", preview=False, monitor=monitor)
    pulumi.runtime.set_all_config({"cilium-egress-lab:operatorCidr": f"{OPERATOR_IP}/32"})
    _sync_await(run_pulumi_func(lambda: runpy.run_path(str(ROOT_DIR / "__main__.py"))))
    assert sorted((r.type, r.name) for r in monitor.records) == sorted(
        (r.type, r.name) for r in unlocked.resources)


def test_instances_boot_after_their_internet_path_exists(unlocked, locked):
    """User-data starts at launch: the route to the internet gateway and the host's boot-time egress
    rules must exist before the instance does (the lock rules come later, by design)."""
    for p in (unlocked, locked):
        rta = p.named("net-demo-public-rta").urn
        for host, boot_rules in (("kind", ["egress-proxy"]), ("proxy", ["egress-all"])):
            deps = set(p.named(f"{host}-demo-instance").deps)
            assert rta in deps, f"{host} instance does not wait for its route to the internet gateway"
            for rule in boot_rules:
                assert p.named(f"{host}-demo-sg-{rule}").urn in deps, (host, rule)
            assert not any(p.by_urn(d).name.startswith(f"{host}-demo-sg-lock-") for d in deps)


def test_a_newer_ubuntu_image_replaces_nothing(unlocked):
    """amiId auto: the newest Canonical image is resolved at create time and then kept - a newer
    "most recent" image between two runs changes no input outside the resources' ignoreChanges."""
    newer = run_program({}, ami="ami-0fedcba9876543210")
    assert newer.error is None, newer.error
    a = {(r.type, r.name): r for r in unlocked.resources}
    b = {(r.type, r.name): r for r in newer.resources}
    assert a.keys() == b.keys()
    for key, old in a.items():
        diff = {k for k in old.inputs.keys() | b[key].inputs.keys() if old.inputs.get(k) != b[key].inputs.get(k)}
        assert diff <= set(b[key].ignore_changes), (key, diff)
    assert newer.named("kind-demo-instance").inputs["ami"] == "ami-0fedcba9876543210"  # a new host would use it


def test_an_explicit_ami_is_pinned_and_moving_it_replaces_the_hosts_on_purpose():
    p = run_program({"amiId": "ami-0a1b2c3d4e5f60718"})
    assert p.error is None, p.error
    for host in ("kind", "proxy"):
        inst = p.named(f"{host}-demo-instance")
        assert inst.inputs["ami"] == "ami-0a1b2c3d4e5f60718" and "ami" not in inst.ignore_changes
    assert p.outputs["amiId"] == "ami-0a1b2c3d4e5f60718"


def test_hosts_are_pinned_by_their_ssh_host_keys_and_keep_metadata_on_the_host(unlocked):
    """Every remote step verifies the host's SSH key (generated by pulumi-tls, installed by
    cloud-init from user-data before sshd first starts); no container on a host gets instance
    metadata tokens (IMDSv2 hop limit 1)."""
    import email
    keys = {host: unlocked.named(f"{host}-demo-host-key") for host in ("kind", "proxy")}
    for host, key in keys.items():
        assert key.inputs["algorithm"] == "ED25519"
        inst = unlocked.named(f"{host}-demo-instance")
        assert inst.inputs["metadataOptions"]["httpPutResponseHopLimit"] == 1
        assert "userData" in inst.secret_inputs  # it carries the host's private key
        parts = {p.get_content_type(): p.get_payload() for p in email.message_from_string(
            inst.inputs["userData"]).walk() if not p.is_multipart()}
        cloud_config = yaml.safe_load(parts["text/cloud-config"])
        assert cloud_config["ssh_keys"]["ed25519_public"] == f"ssh-ed25519 AAAA{host}-demo-host-key"
        assert cloud_config["ssh_keys"]["ed25519_private"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
        assert cloud_config["ssh_genkeytypes"] == [] and cloud_config["ssh_deletekeys"] is True
        assert parts["text/x-shellscript"].startswith("#!/bin/bash")
    remote_steps = unlocked.of_type("command:remote:Command") + unlocked.of_type("command:remote:CopyToRemote")
    assert remote_steps
    for step in remote_steps:
        host = "proxy" if step.inputs["connection"]["host"] == PROXY_IP else "kind"
        assert step.inputs["connection"].get("hostKey") == f"ssh-ed25519 AAAA{host}-demo-host-key", step.name


def test_aws_foundational_controls_default_sg_and_flow_logs(unlocked):
    """FSBP EC2.2: the VPC's default security group is managed with no rules. EC2.6: VPC flow logs
    of rejected traffic go to CloudWatch Logs (kept 7 days) - where a locked host's direct attempts
    show up as REJECT."""
    import json as _json
    (default_sg,) = unlocked.of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert default_sg.inputs["vpcId"] == unlocked.named("net-demo-vpc").urn.rsplit("::", 1)[1] + "-id"
    assert not default_sg.inputs.get("ingress") and not default_sg.inputs.get("egress")
    (flow,) = unlocked.of_type("aws:ec2/flowLog:FlowLog")
    assert (flow.inputs["trafficType"], flow.inputs["logDestinationType"]) == ("REJECT", "cloud-watch-logs")
    (group,) = unlocked.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert group.inputs["retentionInDays"] == 7 and flow.inputs["logDestination"] == f"arn:mock:{group.name}"
    (role,) = unlocked.of_type("aws:iam/role:Role")
    trust = _json.loads(role.inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert flow.inputs["iamRoleArn"] == f"arn:mock:{role.name}"
    assert unlocked.outputs["flowLogGroup"] == "net-demo-flow-logs"  # where to look for REJECTs
    (policy,) = unlocked.of_type("aws:iam/rolePolicy:RolePolicy")
    statement = _json.loads(policy.inputs["policy"])["Statement"][0]
    assert set(statement["Action"]) == {"logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups",
                                        "logs:DescribeLogStreams"}
    assert statement["Resource"] == [f"arn:mock:{group.name}", f"arn:mock:{group.name}:*"]  # only its own group
    off = run_program({"flowLogs": False})
    assert off.error is None and not off.of_type("aws:ec2/flowLog:FlowLog") and not off.of_type("aws:iam/role:Role")
    assert off.of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")  # EC2.2 is not optional


def test_the_proxy_guard_names_the_real_proxy_and_is_in_force_before_the_lock_and_the_probes(locked):
    """The guard (scenarios.cilium.proxy_guard_policy) is declared with the proxy's live address, under
    its own component, and both the lock and every probe wait for it."""
    (guard,) = locked.of_type("kubernetes:cilium.io/v2:CiliumClusterwideNetworkPolicy")
    spec = guard.inputs["spec"]
    assert spec["egressDeny"][0]["toCIDR"] == [f"{PROXY_IP}/32"]
    assert spec["egressDeny"][0]["toPorts"][0]["ports"] == [{"port": "3128", "protocol": "TCP"}]
    assert spec["enableDefaultDeny"] == {"egress": False, "ingress": False}
    waiting = [r for r in locked.resources if r.type in (SG_OUT, "command:remote:Command") and
               r.name.startswith(("kind-demo-sg-lock-", "probes-egress-demo-egress-"))]
    assert len(waiting) >= 8
    for r in waiting:
        assert guard.urn in r.deps, r.name
