"""LockableSecurityGroup: a security group plus one standalone rule resource per model rule;
EgressLock (components/egress_lock.py) adds the rules the lock swaps, later in the graph.

The rule *set* comes from ``model.security_groups``; this component only materialises it. Rules
are never inline, so toggling the egress lock creates and deletes rule resources and never
replaces or updates the group (or the instances using it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
import pulumi_aws as aws

from model.security_groups import ALL, Rule


@dataclass
class LockableSecurityGroupArgs:
    vpc_id: pulumi.Input[str]
    description: str
    ingress: Sequence[Rule]
    egress: Sequence[Rule]
    tags: dict[str, str]


def declare_rule(resource: type, name: str, security_group_id: pulumi.Input[str], rule: Rule,
                 opts: pulumi.ResourceOptions):
    """One standalone ingress/egress rule resource for one model rule, named ``<name>-<rule.key>``."""
    ports = ({"ip_protocol": ALL} if rule.protocol == ALL else
             {"ip_protocol": rule.protocol, "from_port": rule.from_port, "to_port": rule.to_port})
    return resource(f"{name}-{rule.key}", security_group_id=security_group_id, cidr_ipv4=rule.cidr,
                    description=rule.description, **ports, opts=opts)


class LockableSecurityGroup(pulumi.ComponentResource):
    security_group_id: pulumi.Output[str]
    egress_rules: list[aws.vpc.SecurityGroupEgressRule]  # the boot-time egress (hosts wait for it)

    def __init__(self, name: str, args: LockableSecurityGroupArgs,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("cilium-egress-lab:network:LockableSecurityGroup", name, None, opts)
        group = aws.ec2.SecurityGroup(
            f"{name}-group", vpc_id=args.vpc_id, description=args.description,
            tags={**args.tags, "Name": name}, opts=pulumi.ResourceOptions(parent=self))
        child = pulumi.ResourceOptions(parent=self)
        for rule in args.ingress:
            declare_rule(aws.vpc.SecurityGroupIngressRule, name, group.id, rule, child)
        self.egress_rules = [declare_rule(aws.vpc.SecurityGroupEgressRule, name, group.id, rule, child)
                             for rule in args.egress]
        self.security_group_id = group.id
        self.register_outputs({"security_group_id": self.security_group_id})
