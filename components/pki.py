"""MtlsPki: root CA -> intermediate CA -> server and client certificates with pulumi-tls, built
from ``model.mtls.pki_spec`` (the same spec the data-plane lab signs its certificates from).

Keys are secrets. ``static`` gives the structure (which certificates, who signs whom, subjects,
usages, validity); ``live`` gives the SANs, which name the backend's Elastic IP.
"""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_tls as tls

from model.mtls import PKI_ORDER, CertSpec


@dataclass
class MtlsPkiArgs:
    static: dict[str, CertSpec]
    live: pulumi.Output[dict]  # the same spec with the real backend address


class MtlsPki(pulumi.ComponentResource):
    cert_pem: dict[str, pulumi.Output[str]]
    key_pem: dict[str, pulumi.Output[str]]  # secret

    def __init__(self, name: str, args: MtlsPkiArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cilium-egress-lab:mtls:MtlsPki", name, None, opts)
        self.cert_pem, self.key_pem = {}, {}
        child = pulumi.ResourceOptions(parent=self)
        for role in PKI_ORDER:
            spec = args.static[role]
            key = tls.PrivateKey(f"{name}-{role}-key", algorithm=spec.algorithm,
                                 ecdsa_curve=spec.ecdsa_curve, opts=child)
            subject = {"common_name": spec.common_name, "organization": spec.organization}
            sans = {"dns_names": args.live.apply(lambda s, r=role: list(s[r].dns_names)),
                    "ip_addresses": args.live.apply(lambda s, r=role: list(s[r].ip_addresses))}
            if spec.issuer is None:
                cert = tls.SelfSignedCert(
                    f"{name}-{role}-cert", private_key_pem=key.private_key_pem, subject=subject,
                    is_ca_certificate=spec.is_ca, validity_period_hours=spec.validity_hours,
                    allowed_uses=list(spec.allowed_uses), **sans, opts=child)
            else:
                csr = tls.CertRequest(f"{name}-{role}-csr", private_key_pem=key.private_key_pem,
                                      subject=subject, **sans, opts=child)
                cert = tls.LocallySignedCert(
                    f"{name}-{role}-cert", cert_request_pem=csr.cert_request_pem,
                    ca_private_key_pem=self.key_pem[spec.issuer], ca_cert_pem=self.cert_pem[spec.issuer],
                    is_ca_certificate=spec.is_ca, validity_period_hours=spec.validity_hours,
                    allowed_uses=list(spec.allowed_uses), opts=child)
            self.cert_pem[role] = cert.cert_pem
            self.key_pem[role] = pulumi.Output.secret(key.private_key_pem)
        self.register_outputs({"root_ca": self.cert_pem["root"]})
