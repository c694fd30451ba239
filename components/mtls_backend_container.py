"""MtlsBackendContainer (local platform): the mTLS backend (haproxy ``verify required`` + the echo
server, model.local.mtls_backend_script) in a container sharing the proxy container's network
namespace, started and removed by local commands. The script carries the server key: a secret input."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import pulumi
from pulumi_command import local


@dataclass
class MtlsBackendContainerArgs:
    create: str                        # model.local.mtls_create_command (reads the script on stdin)
    delete: str                        # model.local.mtls_delete_command
    script: pulumi.Input[str]          # model.local.mtls_backend_script (secret)
    triggers: Sequence[pulumi.Input[str]] = ()
    after: Sequence[pulumi.Resource] = field(default_factory=list)


class MtlsBackendContainer(pulumi.ComponentResource):
    installed: local.Command

    def __init__(self, name: str, args: MtlsBackendContainerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cilium-egress-lab:mtls:MtlsBackendContainer", name, None, opts)
        self.installed = local.Command(
            f"{name}-install", create=args.create, delete=args.delete, stdin=pulumi.Output.secret(args.script),
            triggers=list(args.triggers), logging=local.Logging.STDERR,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)))
        self.register_outputs({})
