"""The mTLS-injection scenario's part of the composition (only when ``mtlsInjection`` is on):
PKI, the backend on the proxy host, and the Kubernetes objects."""
from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from pulumi_command import remote

from components.egress_proxy_policy import EnvoyPolicyArgs
from components.mtls_backend import MtlsBackend, MtlsBackendArgs
from components.mtls_injection import MtlsInjection, MtlsInjectionArgs
from components.pki import MtlsPki, MtlsPkiArgs
from model import cilium, mtls, render
from model.settings import Settings


def declare_mtls(settings: Settings, backend_eip: aws.ec2.Eip, proxy_connection: remote.ConnectionArgs,
                 proxy_instance_id: pulumi.Input[str], proxy_ready: pulumi.Resource,
                 provider: k8s.Provider, after: list[pulumi.Resource]
                 ) -> tuple[list[pulumi.Resource], list[pulumi.Input], pulumi.Output[dict]]:
    """Returns (what the probes wait for, what the mTLS probes' answers depend on, the secret
    material of the two Secrets for ``python -m model render --secrets-from-stack``)."""
    ip = backend_eip.public_ip
    pki = MtlsPki(settings.name("mtls-pki"), MtlsPkiArgs(
        static=mtls.pki_spec(settings, render.PLACEHOLDER_ADDRESS),
        live=ip.apply(lambda a: mtls.pki_spec(settings, a))))
    cert, key = pki.cert_pem, pki.key_pem
    ca_bundle = pulumi.Output.all(cert["root"], cert["intermediate"]).apply(lambda p: mtls.ca_bundle_pem(*p))
    backend = MtlsBackend(settings.name("mtls-backend"), MtlsBackendArgs(
        connection=proxy_connection, host_id=proxy_instance_id, after=[proxy_ready],
        install_script=mtls.backend_install_script(settings),
        files={"ca.crt": ca_bundle,
               "server.pem": pulumi.Output.all(cert["server"], cert["intermediate"], key["server"]).apply(
                   lambda p: mtls.server_pem(*p))}))

    client_chain = pulumi.Output.all(cert["client"], cert["intermediate"]).apply(lambda p: mtls.chain_pem(*p))
    secrets_live = [
        pulumi.Output.all(client_chain, key["client"]).apply(
            lambda p: mtls.tls_secret(mtls.CLIENT_SECRET, p[0], p[1])),
        ca_bundle.apply(lambda pem: mtls.ca_secret(mtls.CA_SECRET, pem)),
    ]
    ccec_static = mtls.mtls_envoy_config(settings, render.PLACEHOLDER_ADDRESS)
    ccec_live = ip.apply(lambda a: mtls.mtls_envoy_config(settings, a))
    cnp_live = pulumi.Output.all(ccec_live, ip).apply(lambda p: mtls.mtls_network_policy(settings, p[0], p[1]))
    injection = MtlsInjection(settings.name("mtls"), MtlsInjectionArgs(
        workloads=mtls.workloads(), secrets=mtls.placeholder_secrets(),
        secrets_live=[pulumi.Output.secret(s) for s in secrets_live], provider=provider, after=after,
        policy=EnvoyPolicyArgs(
            envoy_config=ccec_static, envoy_config_live=ccec_live,
            network_policy=mtls.mtls_network_policy(settings, ccec_static, render.PLACEHOLDER_ADDRESS),
            network_policy_live=cnp_live,
            provider=provider)))
    # the mTLS probes' answers depend on the CCEC/CNP and on the certificates
    triggers = [pulumi.Output.all(ccec_live, cnp_live).apply(lambda objs: cilium.content_hash(*objs)),
                pulumi.Output.all(*cert.values()).apply(lambda pems: cilium.content_hash(*pems))]
    material = pulumi.Output.secret(pulumi.Output.all(client_chain, key["client"], ca_bundle).apply(
        lambda p: dict(zip(render.SECRET_MATERIAL_KEYS, p))))
    return [backend, injection], triggers, material
