"""MtlsBackend: haproxy (mTLS, ``verify required``) in front of an echo service on the proxy host.

Certificates travel with ``CopyToRemote`` (never in user-data): into a private staging directory of
the SSH user (0700, kept), then installed into place by root; the install script (model.mtls) runs from stdin.
Removing the component (``mtlsInjection: false``) stops and disables both services.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pulumi
from pulumi_command import remote

from model import network
from model.mtls import BACKEND_DIR, ECHO_UNIT

STAGING = f"/home/{network.SSH_USER}/mtls-staging"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class MtlsBackendArgs:
    connection: remote.ConnectionArgs
    files: Mapping[str, pulumi.Input[str]]  # file name in BACKEND_DIR -> content (secret)
    install_script: str
    host_id: pulumi.Input[str]
    after: Sequence[pulumi.Resource] = field(default_factory=list)


class MtlsBackend(pulumi.ComponentResource):
    installed: remote.Command

    def __init__(self, name: str, args: MtlsBackendArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cilium-egress-lab:mtls:MtlsBackend", name, None, opts)
        staging = remote.Command(
            f"{name}-staging", connection=args.connection, create=f"install -d -m 0700 {STAGING}",
            triggers=[args.host_id], opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)))
        # Each copy re-runs when its content changes (digest trigger), together with the install
        # that reads it; the staged copies stay (private dir), so an install that re-runs on its
        # own (a new install script) still finds every file (DESIGN.md §5b).
        digests = {f: pulumi.Output.secret(c).apply(_digest) for f, c in args.files.items()}
        copies = [remote.CopyToRemote(
            f"{name}-copy-{fname.replace('.', '-')}", connection=args.connection,
            source=pulumi.Output.secret(content).apply(pulumi.StringAsset),
            remote_path=f"{STAGING}/{fname}", triggers=[args.host_id, digests[fname]],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[staging]))
            for fname, content in args.files.items()]
        names = " ".join(f"{STAGING}/{f}" for f in args.files)
        self.installed = remote.Command(
            f"{name}-install", connection=args.connection,
            create=(f"sudo install -d -m 0750 {BACKEND_DIR} && sudo install -m 0640 {names} {BACKEND_DIR}/ "
                    f"&& sudo bash -s"),
            stdin=args.install_script,
            delete=f"sudo systemctl disable --now haproxy {ECHO_UNIT} || true",
            triggers=[args.host_id, *digests.values()],
            opts=pulumi.ResourceOptions(parent=self, depends_on=copies))
        self.register_outputs({})
