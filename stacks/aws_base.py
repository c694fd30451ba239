"""What every aws composition builds first (stacks/lab.py, stacks/fleet.py, stacks/aws_mesh.py): the
network, the SSH key, the host image, and the arguments every host takes; for the one-kind-host
compositions also both Elastic IPs and both lockable security groups."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.ec2 import HostArgs
from components.network import Network, NetworkArgs
from components.security_group import LockableSecurityGroup, LockableSecurityGroupArgs
from components.ssh_key import SshKey
from model import network
from model import security_groups as sg
from model.settings import PROJECT, Settings


@dataclass
class AwsBase:
    settings: Settings
    tags: dict[str, str]
    net: Network
    key: SshKey
    ami_id: pulumi.Input[str]
    eip_opts: pulumi.ResourceOptions   # Elastic IPs exist once the internet gateway does

    def host_args(self, eip: aws.ec2.Eip, group: LockableSecurityGroup, instance_type: str,
                  user_data: pulumi.Input[str]) -> HostArgs:
        s = self.settings
        return HostArgs(ami_id=self.ami_id, keep_ami=s.ami_id == "auto", subnet_id=self.net.subnet_id,
                        security_group_id=group.security_group_id, key_name=self.key.key_name,
                        private_key=self.key.private_key_openssh, eip=eip, instance_type=instance_type,
                        root_volume_gb=s.root_volume_gb, user_data=user_data, tags=self.tags,
                        after=[self.net.route_table_association, *group.egress_rules])

    def eip(self, settings: Settings, role: str) -> aws.ec2.Eip:
        return aws.ec2.Eip(settings.name(f"{role}-eip"), domain="vpc",
                           tags={**self.tags, "Name": settings.name(role)}, opts=self.eip_opts)


def aws_base(settings: Settings) -> AwsBase:
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
    return AwsBase(settings, tags, net, key, ami_id, pulumi.ResourceOptions(depends_on=[net.internet_gateway]))


@dataclass
class TwoHosts:
    kind_eip: aws.ec2.Eip
    proxy_eip: aws.ec2.Eip
    kind_cidr: Any        # Output[str]: the kind host's EIP /32
    proxy_cidr: Any
    kind_sg: LockableSecurityGroup
    proxy_sg: LockableSecurityGroup


def two_hosts(base: AwsBase) -> TwoHosts:
    """Both Elastic IPs exist before either host boots: each host's user-data and security group name
    the other's address, with no cycle and no serial boot."""
    settings, net, tags = base.settings, base.net, base.tags
    kind_eip, proxy_eip = base.eip(settings, "kind"), base.eip(settings, "proxy")
    kind_cidr = kind_eip.public_ip.apply(network.host_cidr)
    proxy_cidr = proxy_eip.public_ip.apply(network.host_cidr)
    kind_sg = LockableSecurityGroup(settings.name("kind") + "-sg", LockableSecurityGroupArgs(
        vpc_id=net.vpc_id, description="cilium-egress-lab kind host", tags=tags,
        ingress=sg.kind_ingress(settings), egress=sg.kind_egress_base(settings, proxy_cidr)))
    proxy_sg = LockableSecurityGroup(settings.name("proxy") + "-sg", LockableSecurityGroupArgs(
        vpc_id=net.vpc_id, description="cilium-egress-lab proxy host", tags=tags,
        ingress=sg.proxy_ingress(settings, kind_cidr), egress=sg.proxy_egress(settings)))
    return TwoHosts(kind_eip, proxy_eip, kind_cidr, proxy_cidr, kind_sg, proxy_sg)


def host_outputs(kind: Any, proxy: Any, key: SshKey) -> dict[str, Any]:
    """The outputs every one-kind-host composition exports about its two hosts."""
    def ssh(ip: str) -> str:
        return f"ssh -i lab.key {network.SSH_USER}@{ip}"
    return {"kindPublicIp": kind.public_ip, "proxyPublicIp": proxy.public_ip,
            "sshKind": kind.public_ip.apply(ssh), "sshProxy": proxy.public_ip.apply(ssh),
            "sshPrivateKey": key.private_key_openssh}
