"""RemoteKindCluster: one kind cluster of a two-cluster pack on the aws kind host (model/mesh_aws.py; the
host's boot creates it): its kubeconfig read over SSH (the server: the Elastic IP and the cluster's own
API port) as a secret, and its node's address on the host's ``kind`` network (what the other cluster's
agents dial), both re-read when the host is replaced."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import pulumi
from pulumi_command import remote


@dataclass
class RemoteKindClusterArgs:
    connection: remote.ConnectionArgs     # the kind host (SSH, pinned host key)
    kubeconfig: pulumi.Input[str]         # model.mesh_aws.kubeconfig_command
    node_address: str                     # model.mesh_aws.address_command
    host_id: pulumi.Input[str]
    after: Sequence[pulumi.Resource] = field(default_factory=list)   # the host's boot finished


class RemoteKindCluster(pulumi.ComponentResource):
    kubeconfig: pulumi.Output[str]      # secret: carries the cluster-admin client key
    node_ip: pulumi.Output[str]

    def __init__(self, name: str, args: RemoteKindClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cilium-egress-lab:hosts:RemoteKindCluster", name, None, opts)
        after = pulumi.ResourceOptions(parent=self, depends_on=list(args.after))
        kubeconfig = remote.Command(
            f"{name}-kubeconfig", connection=args.connection, create=args.kubeconfig, triggers=[args.host_id],
            # never logged, kept secret (pulumi-command #260, #773)
            logging=remote.Logging.NONE,
            opts=pulumi.ResourceOptions.merge(after, pulumi.ResourceOptions(additional_secret_outputs=["stdout"])))
        node = remote.Command(f"{name}-node-address", connection=args.connection, create=args.node_address,
                              triggers=[args.host_id], opts=after)
        self.kubeconfig = pulumi.Output.secret(kubeconfig.stdout)
        self.node_ip = node.stdout.apply(lambda s: s.strip())
        self.register_outputs({"node_ip": self.node_ip})
