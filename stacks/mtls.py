"""The platform's mTLS backend (only when a selected scenario needs "mtls-backend"): the PKI and the
backend on the proxy host. The scenario's Kubernetes objects (secrets, CCEC, CNP) come from its pack."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from pulumi_command import remote

from components.mtls_backend import MtlsBackend, MtlsBackendArgs
from components.pki import MtlsPki, MtlsPkiArgs
from model import mtls, render
from model.settings import Settings
from scenarios.cilium import content_hash


@dataclass
class MtlsPlatform:
    backend: MtlsBackend
    material: pulumi.Output[dict]        # secret: {"clientChain", "clientKey", "caBundle"}
    digest: pulumi.Output[str]           # of every certificate: the mTLS probes' answers depend on it


@dataclass
class MtlsPieces:
    files: dict[str, pulumi.Output[str]]  # the backend's ca.crt and server.pem (secret)
    material: pulumi.Output[dict]
    digest: pulumi.Output[str]


def declare_mtls_pki(settings: Settings, address: pulumi.Output[str]) -> MtlsPieces:
    """The PKI (SANs naming the backend's ``address``), the backend's files, the pods' material."""
    pki = MtlsPki(settings.name("mtls-pki"), MtlsPkiArgs(
        static=mtls.pki_spec(settings, render.PLACEHOLDER_ADDRESS),
        live=address.apply(lambda a: mtls.pki_spec(settings, a))))
    cert, key = pki.cert_pem, pki.key_pem
    ca_bundle = pulumi.Output.all(cert["root"], cert["intermediate"]).apply(lambda p: mtls.ca_bundle_pem(*p))
    files = {"ca.crt": ca_bundle,
             "server.pem": pulumi.Output.all(cert["server"], cert["intermediate"], key["server"]).apply(
                 lambda p: mtls.server_pem(*p))}
    client_chain = pulumi.Output.all(cert["client"], cert["intermediate"]).apply(lambda p: mtls.chain_pem(*p))
    material = pulumi.Output.secret(pulumi.Output.all(client_chain, key["client"], ca_bundle).apply(
        lambda p: dict(zip(render.SECRET_MATERIAL_KEYS, p))))
    digest = pulumi.Output.all(*cert.values()).apply(lambda pems: content_hash(*pems))
    return MtlsPieces(files, material, digest)


def declare_mtls_backend(settings: Settings, backend_eip: aws.ec2.Eip, proxy_connection: remote.ConnectionArgs,
                         proxy_instance_id: pulumi.Input[str], proxy_ready: pulumi.Resource) -> MtlsPlatform:
    pieces = declare_mtls_pki(settings, backend_eip.public_ip)
    backend = MtlsBackend(settings.name("mtls-backend"), MtlsBackendArgs(
        connection=proxy_connection, host_id=proxy_instance_id, after=[proxy_ready],
        install_script=mtls.backend_install_script(settings), files=pieces.files))
    return MtlsPlatform(backend, pieces.material, pieces.digest)
