"""EgressLock: the egress rules that ``restrictEgress`` swaps, attached to a LockableSecurityGroup.

A separate component because these rules must come *after* the cluster they lock down (Cilium
and the test pods are up and their images pulled), while the group itself must exist before
the instance boots. Same rule-to-resource mapping as LockableSecurityGroup.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import pulumi
import pulumi_aws as aws

from model.security_groups import Rule

from .security_group import declare_rule


@dataclass
class EgressLockArgs:
    security_group_id: pulumi.Input[str]
    rules: Sequence[Rule]
    after: Sequence[pulumi.Resource] = field(default_factory=list)


class EgressLock(pulumi.ComponentResource):
    def __init__(self, name: str, args: EgressLockArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cilium-egress-lab:network:EgressLock", name, None, opts)
        opts_ = pulumi.ResourceOptions(parent=self, depends_on=list(args.after))
        for rule in args.rules:
            declare_rule(aws.vpc.SecurityGroupEgressRule, name, args.security_group_id, rule, opts_)
        self.register_outputs({})
