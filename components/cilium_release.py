"""CiliumRelease: the Cilium Helm release on the kind cluster, and a wait for its CRDs.

``helm.v3.Release`` (not ``helm.v4.Chart``): the chart generates certificates at render time, so a
client-side render would show a diff on every update (STYLE.md). The operator registers Cilium's
CRDs only once it runs, so CRs must wait for ``crds_ready``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi_command import local, remote

from model import helm
from model import remote as cmds


@dataclass
class CiliumReleaseArgs:
    version: str
    values: dict[str, Any]
    provider: k8s.Provider
    connection: remote.ConnectionArgs | None  # to the kind host (kubectl runs there); None: this machine
    host_id: pulumi.Input[str]         # re-run the CRD wait when the host (or the local cluster) is replaced
    kubectl: str = cmds.KUBECTL        # the kubectl command prefix where the wait runs


class CiliumRelease(pulumi.ComponentResource):
    release: k8s.helm.v3.Release
    crds_ready: remote.Command | local.Command
    status: pulumi.Output[str]

    def __init__(self, name: str, args: CiliumReleaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cilium-egress-lab:cilium:CiliumRelease", name, None, opts)
        self.release = k8s.helm.v3.Release(
            f"{name}-release", chart="cilium", version=args.version, namespace="kube-system",
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=helm.HELM_REPO),
            values=args.values, timeout=900, skip_await=False,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider))
        wait = dict(create=cmds.wait_for_crds(kubectl=args.kubectl), triggers=[args.host_id, args.version],
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]))
        self.crds_ready = (local.Command(f"{name}-crds", **wait) if args.connection is None else
                           remote.Command(f"{name}-crds", connection=args.connection, **wait))
        self.status = self.release.status.apply(lambda s: s.status if s else "unknown")
        self.register_outputs({"status": self.status})
