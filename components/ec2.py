"""Shared pieces of the two hosts: the instance, its Elastic IP association, the SSH connection
and the first remote step (wait for cloud-init). Used by KindHost and ProxyHost."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import pulumi
import pulumi_aws as aws
import pulumi_tls as tls
from pulumi_command import remote

from model import network, userdata


@dataclass
class HostArgs:
    ami_id: pulumi.Input[str]
    subnet_id: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    key_name: pulumi.Input[str]
    private_key: pulumi.Input[str]  # OpenSSH private key (secret)
    eip: aws.ec2.Eip                # allocated by the composition so both hosts know both addresses
    instance_type: str
    root_volume_gb: int
    user_data: pulumi.Input[str]
    tags: dict[str, str]
    # the instance's path to the internet (route, boot-time egress rules): user-data starts at
    # launch, so these must exist first (DESIGN.md §5b)
    after: Sequence[pulumi.Resource] = field(default_factory=list)
    keep_ami: bool = False  # True: the image a host was created with is kept (ignore_changes)


def connection(host: pulumi.Input[str], private_key: pulumi.Input[str],
               host_key: pulumi.Input[str]) -> remote.ConnectionArgs:
    # EC2 boot outlasts pulumi-command's default ~8 s of dial retries (pulumi-command #1238):
    # allow ~10 minutes of retries. host_key: never talk to a host whose key is not the pinned one.
    return remote.ConnectionArgs(host=host, user=network.SSH_USER, private_key=private_key,
                                 host_key=host_key, dial_error_limit=60, per_dial_timeout=10)


def declare_host(parent: pulumi.Resource, name: str, args: HostArgs):
    """Host key + instance + EIP association + cloud-init wait; returns (instance, ready command,
    the SSH connection every later remote step of this host uses)."""
    child = pulumi.ResourceOptions(parent=parent)
    host_key = tls.PrivateKey(f"{name}-host-key", algorithm="ED25519", opts=child)
    user_data = pulumi.Output.secret(pulumi.Output.all(
        args.user_data, host_key.private_key_openssh, host_key.public_key_openssh).apply(
        lambda p: userdata.with_host_key(*p)))
    instance = aws.ec2.Instance(
        f"{name}-instance", ami=args.ami_id, instance_type=args.instance_type,
        subnet_id=args.subnet_id, vpc_security_group_ids=[args.security_group_id],
        key_name=args.key_name, user_data=user_data, user_data_replace_on_change=True,
        # IMDSv2 only, and hop limit 1: the token answer does not reach a container on the host
        # (kind's node, the pods), only the host itself (AWS FSBP EC2.8; docs "Instance metadata options")
        metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
            http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=network.IMDS_HOP_LIMIT),
        root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
            volume_type="gp3", volume_size=args.root_volume_gb, encrypted=True,
            delete_on_termination=True),
        tags={**args.tags, "Name": name}, opts=pulumi.ResourceOptions(
            parent=parent, depends_on=list(args.after), ignore_changes=["ami"] if args.keep_ami else None))
    association = aws.ec2.EipAssociation(
        f"{name}-eip-assoc", allocation_id=args.eip.allocation_id, instance_id=instance.id, opts=child)
    ssh = connection(args.eip.public_ip, args.private_key, host_key.public_key_openssh)
    ready = remote.Command(
        f"{name}-cloud-init", connection=ssh, create=userdata.ready_command(), triggers=[instance.id],
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[association]))
    return instance, ready, ssh
