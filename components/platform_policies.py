"""PlatformPolicies: the policy objects the platform installs with Cilium, for every scenario
(scenarios.platform_objects - the egress proxy's guard). Names come from the ``static``
rendering (placeholder address), content from ``live`` (the proxy's real address)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import pulumi
import pulumi_kubernetes as k8s

from .k8s_objects import declare


@dataclass
class PlatformPoliciesArgs:
    objects: Sequence[dict]                  # static rendering
    objects_live: pulumi.Output[list]        # the same objects, same order, real addresses
    provider: k8s.Provider
    after: Sequence[pulumi.Resource] = field(default_factory=list)  # Cilium, its CRDs


class PlatformPolicies(pulumi.ComponentResource):
    policies: list[pulumi.CustomResource]

    def __init__(self, name: str, args: PlatformPoliciesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cilium-egress-lab:kubernetes:PlatformPolicies", name, None, opts)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(args.after))
        self.policies = [declare(name, o, k8s_opts, live=args.objects_live.apply(lambda objs, i=i: objs[i]))
                         for i, o in enumerate(args.objects)]
        self.register_outputs({})
