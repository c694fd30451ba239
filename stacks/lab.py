"""The lab composition: network, key, two hosts with their security groups, the egress lock."""
from __future__ import annotations

from typing import Any, Callable

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.cilium_release import CiliumRelease, CiliumReleaseArgs
from components.ec2 import HostArgs
from components.egress_proxy_policy import EgressProxyPolicy, EnvoyPolicyArgs
from components.egress_lock import EgressLock, EgressLockArgs
from components.kind_host import KindHost
from components.network import Network, NetworkArgs
from components.probes import Probes, ProbesArgs
from components.proxy_host import ProxyHost
from components.security_group import LockableSecurityGroup, LockableSecurityGroupArgs
from components.ssh_key import SshKey
from components.test_workloads import TestWorkloads, TestWorkloadsArgs
from model import (cilium, k8s as k8s_model, matrix, network, remote as cmds, render,
                   security_groups as sg, userdata, verify)
from model.settings import PROJECT, Settings

from .mtls import declare_mtls


def declare(settings: Settings) -> dict[str, Any]:
    """Declare every resource; return the stack outputs (name -> value or Output)."""
    tags = {"project": PROJECT, "env": settings.env_name}
    net = Network(settings.name("net"), NetworkArgs(network.VPC_CIDR, network.PUBLIC_SUBNET_CIDR, tags,
                                                    flow_logs=settings.flow_logs))
    key = SshKey(settings.name("ssh"), tags)
    # amiId auto: Canonical's newest image when a host is created, then kept (a newer image must
    # not replace the hosts on a later `up`, e.g. a lock toggle); an explicit id pins it.
    if settings.ami_id == "auto":
        ami_id: pulumi.Input[str] = aws.ec2.get_ami_output(
            most_recent=True, owners=[network.UBUNTU_OWNER],
            filters=[aws.ec2.GetAmiFilterArgs(name="name", values=[network.UBUNTU_NAME_FILTER]),
                     aws.ec2.GetAmiFilterArgs(name="virtualization-type", values=["hvm"])]).id
    else:
        ami_id = settings.ami_id

    # Both Elastic IPs exist before either host boots: each host's user-data and security group
    # name the other's address, with no cycle and no serial boot.
    eip_opts = pulumi.ResourceOptions(depends_on=[net.internet_gateway])
    kind_eip = aws.ec2.Eip(settings.name("kind-eip"), domain="vpc",
                           tags={**tags, "Name": settings.name("kind")}, opts=eip_opts)
    proxy_eip = aws.ec2.Eip(settings.name("proxy-eip"), domain="vpc",
                            tags={**tags, "Name": settings.name("proxy")}, opts=eip_opts)
    kind_cidr = kind_eip.public_ip.apply(network.host_cidr)
    proxy_cidr = proxy_eip.public_ip.apply(network.host_cidr)

    kind_sg = LockableSecurityGroup(settings.name("kind") + "-sg", LockableSecurityGroupArgs(
        vpc_id=net.vpc_id, description="cilium-egress-lab kind host", tags=tags,
        ingress=sg.kind_ingress(settings), egress=sg.kind_egress_base(settings, proxy_cidr)))
    proxy_sg = LockableSecurityGroup(settings.name("proxy") + "-sg", LockableSecurityGroupArgs(
        vpc_id=net.vpc_id, description="cilium-egress-lab proxy host", tags=tags,
        ingress=sg.proxy_ingress(settings, kind_cidr), egress=sg.proxy_egress(settings)))

    def host_args(eip: aws.ec2.Eip, group: LockableSecurityGroup, instance_type: str,
                  user_data: pulumi.Input[str]) -> HostArgs:
        return HostArgs(ami_id=ami_id, keep_ami=settings.ami_id == "auto", subnet_id=net.subnet_id, security_group_id=group.security_group_id,
                        key_name=key.key_name, private_key=key.private_key_openssh, eip=eip,
                        instance_type=instance_type, root_volume_gb=settings.root_volume_gb,
                        user_data=user_data, tags=tags,
                        after=[net.route_table_association, *group.egress_rules])

    kind = KindHost(settings.name("kind"), host_args(
        kind_eip, kind_sg, settings.kind_instance_type,
        pulumi.Output.all(kind_eip.public_ip, proxy_eip.public_ip).apply(
            lambda ips: userdata.kind_host_user_data(settings, ips[0], ips[1]))))
    proxy = ProxyHost(settings.name("proxy"), host_args(
        proxy_eip, proxy_sg, settings.proxy_instance_type,
        kind_eip.public_ip.apply(lambda ip: userdata.proxy_host_user_data(settings, ip))))

    # Kubernetes: Cilium, the test workloads, the egress-via-proxy policy (model/cilium.py).
    provider = k8s.Provider(settings.name("kind-k8s"), kubeconfig=kind.kubeconfig,
                            delete_unreachable=True)
    release = CiliumRelease(settings.name("cilium"), CiliumReleaseArgs(
        version=settings.cilium_version, values=cilium.helm_values(settings), provider=provider,
        connection=kind.connection, host_id=kind.instance_id))
    workloads = TestWorkloads(settings.name("workloads"), TestWorkloadsArgs(
        objects=k8s_model.test_workloads(), provider=provider, after=[release.release]))
    cec_static = cilium.egress_envoy_config(settings, render.PLACEHOLDER_ADDRESS)
    cec_live = proxy_eip.public_ip.apply(lambda ip: cilium.egress_envoy_config(settings, ip))
    cnp_live = cec_live.apply(lambda cec: cilium.egress_network_policy(settings, cec))
    policy = EgressProxyPolicy(settings.name("egress-policy"), EnvoyPolicyArgs(
        envoy_config=cec_static, envoy_config_live=cec_live,
        network_policy=cilium.egress_network_policy(settings, cec_static),
        network_policy_live=cnp_live,
        provider=provider, after=[release.crds_ready, workloads]))

    # The lock switches only once Cilium runs and the test pods are up (images pulled), so
    # restrictEgress=true works on the very first up.
    toggle = sg.kind_egress_toggle(settings, proxy_cidr)
    lock = EgressLock(settings.name("kind") + "-sg-lock", EgressLockArgs(
        security_group_id=kind_sg.security_group_id, rules=toggle,
        after=[kind.ready, release.release, *workloads.pods]))

    proxy_connection = proxy.connection
    scenario: list[pulumi.Resource] = []
    mtls_triggers: list[pulumi.Input] = []
    extra_outputs: dict[str, Any] = {}
    if settings.mtls_injection:  # the backend lives on the proxy host (its EIP)
        scenario, mtls_triggers, extra_outputs[render.SECRET_MATERIAL_OUTPUT] = declare_mtls(
            settings, proxy_eip, proxy_connection, proxy.instance_id, proxy.ready, provider,
            after=[release.release, release.crds_ready])

    # Verification: one probe per matrix cell, re-run whenever its answer can change.
    cells = verify.lab_cells(settings, render.PLACEHOLDER_ADDRESS)
    live_cells = proxy_eip.public_ip.apply(lambda ip: verify.lab_cells(settings, ip))
    probes = Probes(settings.name("probes"), ProbesArgs(
        cells=cells, live_cells=live_cells,
        commands=[live_cells.apply(lambda cs, i=i: verify.command(settings, cs[i])) for i in range(len(cells))],
        kind=kind.connection,
        proxy=proxy_connection,
        evidence_cell=matrix.Cell(cilium.ALLOW_NAMESPACE, matrix.ALLOWED, settings.probe_url).id,
        proxy_log_command=lambda allowed_stdout: kind_eip.public_ip.apply(lambda ip: cmds.proxy_log_command(
            ip, matrix.connect_target(allowed_stdout, settings.probe_url))),
        triggers=[settings.restrict_egress, kind.instance_id, proxy.instance_id,
                  pulumi.Output.all(cec_live, cnp_live).apply(lambda objs: cilium.content_hash(*objs))],
        extra_triggers=lambda cell: mtls_triggers if cell.target in verify.MTLS_TARGETS else [],
        verify=lambda live, outs, proxy_out: verify.verification(settings, live, outs, proxy_out),
        strict=settings.strict_verification,
        after=[lock, policy, proxy.ready, *scenario]))

    effective = sg.kind_egress(settings, proxy_cidr)
    ssh = lambda ip: f"ssh -i lab.key {network.SSH_USER}@{ip}"  # noqa: E731
    return {
        "kindPublicIp": kind.public_ip,
        "proxyPublicIp": proxy.public_ip,
        "sshKind": kind.public_ip.apply(ssh),
        "sshProxy": proxy.public_ip.apply(ssh),
        "sshPrivateKey": key.private_key_openssh,
        "kubeconfig": kind.kubeconfig,
        "restrictEgress": settings.restrict_egress,
        "amiId": kind.ami_id,
        "ciliumStatus": release.status,
        "verification": probes.verification,
        "kindEgressRules": pulumi.Output.all(*[r.cidr for r in effective]).apply(
            lambda cidrs: [{**r.as_dict(), "cidr": c} for r, c in zip(effective, cidrs)]),
        **extra_outputs,
        **({"flowLogGroup": net.flow_log_group} if net.flow_log_group is not None else {}),
    }


def main(read_settings: Callable[[], Settings], export: Callable[[str, Any], None] = pulumi.export):
    """The whole program: settings first (fails before any resource), then resources, then outputs."""
    settings = read_settings()
    for name, value in declare(settings).items():
        export(name, value)
