"""TestWorkloads: namespaces with a long-running curl pod each (model.k8s), after Cilium (the CNI)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import pulumi
import pulumi_kubernetes as k8s

from .k8s_objects import declare


@dataclass
class TestWorkloadsArgs:
    objects: Sequence[dict]  # namespaces first, then pods (model.k8s.test_workloads())
    provider: k8s.Provider
    after: Sequence[pulumi.Resource] = field(default_factory=list)


class TestWorkloads(pulumi.ComponentResource):
    pods: list[pulumi.CustomResource]

    def __init__(self, name: str, args: TestWorkloadsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cilium-egress-lab:cilium:TestWorkloads", name, None, opts)
        namespaces: list[pulumi.CustomResource] = []
        self.pods = []
        for obj in args.objects:
            first = obj["kind"] == "Namespace"
            res = declare(name, obj, pulumi.ResourceOptions(
                parent=self, provider=args.provider,
                depends_on=list(args.after) + ([] if first else namespaces)))
            (namespaces if first else self.pods).append(res)
        self.register_outputs({})
