"""Scenario: one scenario pack on the cluster - its workloads (and secrets), then the objects of the
configured stage: Envoy configs first, then the policies that name their listeners (a CNP whose
listener does not exist yet drops redirected traffic until policies regenerate, DESIGN.md §5a).

Switching the stage changes only the stage's policy resources: the workloads are the same objects in
every stage. Names come from the ``static`` rendering (placeholder addresses), content from ``live``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import pulumi
import pulumi_kubernetes as k8s

from .k8s_objects import declare, resource_name

ENVOY_KINDS = ("CiliumEnvoyConfig", "CiliumClusterwideEnvoyConfig")


@dataclass
class ScenarioArgs:
    workloads: Sequence[dict]                       # Namespaces, workloads, Services (never change)
    stage_objects: Sequence[dict]                   # the stage's objects, static rendering
    stage_objects_live: pulumi.Output[list]         # the same objects with the real addresses
    provider: k8s.Provider
    secrets: Sequence[dict] = ()                    # static renderings (placeholders)
    secrets_live: Sequence[pulumi.Output[dict]] = ()  # the real ones (secret)
    after: Sequence[pulumi.Resource] = field(default_factory=list)  # Cilium, its CRDs


class Scenario(pulumi.ComponentResource):
    workload_resources: list[pulumi.CustomResource]
    policies: list[pulumi.CustomResource]           # the stage's objects (probes wait for them)

    def __init__(self, name: str, args: ScenarioArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cilium-egress-lab:scenarios:Scenario", name, None, opts)
        k8s_opts = lambda deps: pulumi.ResourceOptions(  # noqa: E731
            parent=self, provider=args.provider, depends_on=[*args.after, *deps])
        namespaces = [declare(name, o, k8s_opts([])) for o in args.workloads if o["kind"] == "Namespace"]
        self.workload_resources = namespaces + [
            declare(name, o, k8s_opts(namespaces)) for o in args.workloads if o["kind"] != "Namespace"]
        secrets = [declare(name, s, k8s_opts([]), live=live) for s, live in zip(args.secrets, args.secrets_live)]
        by_name = {resource_name(name, o): i for i, o in enumerate(args.stage_objects)}

        def live(i: int) -> pulumi.Output[dict]:
            static = args.stage_objects[i]
            return args.stage_objects_live.apply(lambda objs: next(
                o for o in objs if resource_name(name, o) == resource_name(name, static)))
        ready = [*self.workload_resources, *secrets]
        envoy = [declare(name, o, k8s_opts(ready), live=live(by_name[resource_name(name, o)]))
                 for o in args.stage_objects if o["kind"] in ENVOY_KINDS]
        self.policies = envoy + [declare(name, o, k8s_opts([*ready, *envoy]), live=live(by_name[resource_name(name, o)]))
                                 for o in args.stage_objects if o["kind"] not in ENVOY_KINDS]
        self.register_outputs({})
