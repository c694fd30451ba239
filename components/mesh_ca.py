"""MeshCa: the one CA of a ClusterMesh (model.clustermesh.MESH_CA), generated with pulumi-tls and given
to every cluster's Cilium release as ``tls.ca`` (model.clustermesh.helm_values): the chart derives each
cluster's clustermesh-apiserver certificates from it, so the clusters trust each other. The key is a
secret."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import pulumi
import pulumi_tls as tls


@dataclass
class MeshCaArgs:
    spec: Mapping[str, Any]     # model.clustermesh.MESH_CA


class MeshCa(pulumi.ComponentResource):
    cert_pem: pulumi.Output[str]
    key_pem: pulumi.Output[str]     # secret

    def __init__(self, name: str, args: MeshCaArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cilium-egress-lab:cilium:MeshCa", name, None, opts)
        spec, child = args.spec, pulumi.ResourceOptions(parent=self)
        key = tls.PrivateKey(f"{name}-key", algorithm=spec["algorithm"], rsa_bits=spec["rsa_bits"], opts=child)
        cert = tls.SelfSignedCert(
            f"{name}-cert", private_key_pem=key.private_key_pem, is_ca_certificate=True,
            subject={"common_name": spec["common_name"], "organization": spec["organization"]},
            validity_period_hours=spec["validity_hours"],
            allowed_uses=["cert_signing", "crl_signing", "digital_signature", "key_encipherment"], opts=child)
        self.cert_pem = cert.cert_pem
        self.key_pem = pulumi.Output.secret(key.private_key_pem)
        self.register_outputs({"cert_pem": self.cert_pem})
