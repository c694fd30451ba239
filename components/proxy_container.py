"""ProxyContainer: the egress proxy (squid, model.local.proxy_install_script) as a container on kind's
network, started and removed by local commands; its address there is what the scenarios get as the
proxy's address."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import pulumi
from pulumi_command import local


@dataclass
class ProxyContainerArgs:
    create: str                          # model.local.proxy_create_command (reads the script on stdin)
    delete: str                          # model.local.proxy_delete_command
    install_script: pulumi.Input[str]    # model.local.proxy_install_script (names the node's address)
    address: str                         # model.local.address_command(engine, proxy container)
    triggers: Sequence[pulumi.Input[str]] = ()
    after: Sequence[pulumi.Resource] = field(default_factory=list)


class ProxyContainer(pulumi.ComponentResource):
    ready: local.Command
    address: pulumi.Output[str]

    def __init__(self, name: str, args: ProxyContainerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cilium-egress-lab:hosts:ProxyContainer", name, None, opts)
        self.ready = local.Command(
            f"{name}-container", create=args.create, delete=args.delete, stdin=args.install_script,
            triggers=list(args.triggers), opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)))
        address = local.Command(f"{name}-address", create=args.address, triggers=[self.ready.id],
                                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.ready]))
        self.address = address.stdout.apply(lambda s: s.strip())
        self.register_outputs({"address": self.address})
