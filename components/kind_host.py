"""KindHost: the EC2 host running a kind cluster (no default CNI, API on the EIP), and its
kubeconfig, read over SSH once cloud-init has finished, as a secret."""
from __future__ import annotations

import pulumi
from pulumi_command import remote

from model import userdata

from .ec2 import HostArgs, declare_host


class KindHost(pulumi.ComponentResource):
    public_ip: pulumi.Output[str]
    instance_id: pulumi.Output[str]
    ami_id: pulumi.Output[str]           # the image the host runs (recorded, see HostArgs.keep_ami)
    kubeconfig: pulumi.Output[str]
    ready: remote.Command
    connection: remote.ConnectionArgs  # SSH with the pinned host key

    def __init__(self, name: str, args: HostArgs, opts: pulumi.ResourceOptions | None = None,
                 lab_cluster: bool = True):
        """``lab_cluster`` False: the host runs a two-cluster pack's clusters (each one's kubeconfig:
        components/remote_kind_cluster.py), not the lab's one cluster."""
        super().__init__("cilium-egress-lab:hosts:KindHost", name, None, opts)
        instance, self.ready, self.connection = declare_host(self, name, args)
        self.public_ip = args.eip.public_ip
        self.instance_id = instance.id
        self.ami_id = instance.ami
        if not lab_cluster:
            self.register_outputs({"public_ip": self.public_ip, "ami_id": self.ami_id})
            return
        kubeconfig = remote.Command(
            f"{name}-kubeconfig", connection=self.connection,
            create=args.eip.public_ip.apply(userdata.kubeconfig_command),
            triggers=[instance.id],
            # The kubeconfig carries the cluster-admin client key: never log it, keep it secret
            # (pulumi-command #260, #773).
            logging=remote.Logging.NONE,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.ready],
                                        additional_secret_outputs=["stdout"]))
        self.kubeconfig = pulumi.Output.secret(kubeconfig.stdout)
        self.register_outputs({"public_ip": self.public_ip, "ami_id": self.ami_id, "kubeconfig": self.kubeconfig})
