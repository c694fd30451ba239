"""ProxyHost: the EC2 host running the HTTP forward proxy (squid) the egress policy tunnels to."""
from __future__ import annotations

import pulumi
from pulumi_command import remote

from .ec2 import HostArgs, declare_host


class ProxyHost(pulumi.ComponentResource):
    public_ip: pulumi.Output[str]
    instance_id: pulumi.Output[str]
    ready: remote.Command
    connection: remote.ConnectionArgs  # SSH with the pinned host key

    def __init__(self, name: str, args: HostArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cilium-egress-lab:hosts:ProxyHost", name, None, opts)
        instance, self.ready, self.connection = declare_host(self, name, args)
        self.public_ip = args.eip.public_ip
        self.instance_id = instance.id
        self.register_outputs({"public_ip": self.public_ip})
