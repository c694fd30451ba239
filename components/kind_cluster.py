"""KindCluster: a kind cluster on the user's Docker or Podman, created and deleted by local commands
(pulumi-command local.Command) from the kind config model (model.local / model.userdata), its
kubeconfig (secret) and the node's address on kind's network."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_command import local


@dataclass
class KindClusterArgs:
    config_yaml: str      # model.local.cluster_config_yaml (fed on stdin: kind create cluster --config -)
    create: str           # model.local.create_cluster_command
    delete: str           # model.local.delete_cluster_command
    kubeconfig: str       # model.local.kubeconfig_command
    node_address: str     # model.local.address_command(engine, node container)


class KindCluster(pulumi.ComponentResource):
    cluster: local.Command
    cluster_id: pulumi.Output[str]      # changes when the cluster is created again
    kubeconfig: pulumi.Output[str]      # secret: carries the cluster-admin client key
    node_ip: pulumi.Output[str]         # what squid sees Envoy's tunnel come from

    def __init__(self, name: str, args: KindClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cilium-egress-lab:hosts:KindCluster", name, None, opts)
        self.cluster = local.Command(
            f"{name}-cluster", create=args.create, delete=args.delete, stdin=args.config_yaml,
            triggers=[args.config_yaml], opts=pulumi.ResourceOptions(parent=self))
        kubeconfig = local.Command(
            f"{name}-kubeconfig", create=args.kubeconfig, triggers=[self.cluster.id],
            logging=local.Logging.NONE,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.cluster], additional_secret_outputs=["stdout"]))
        node = local.Command(f"{name}-node-address", create=args.node_address, triggers=[self.cluster.id],
                             opts=pulumi.ResourceOptions(parent=self, depends_on=[self.cluster]))
        self.cluster_id = self.cluster.id
        self.kubeconfig = pulumi.Output.secret(kubeconfig.stdout)
        self.node_ip = node.stdout.apply(lambda s: s.strip())
        self.register_outputs({"node_ip": self.node_ip})
