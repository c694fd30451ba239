"""The local composition: kind on the user's Docker or Podman (components/kind_cluster.py, local
commands), Cilium with the same Helm release and values as aws, the egress proxy as a container on
kind's network (components/proxy_container.py), the platform's policies (the proxy guard, and with
restrictEgress the lock CCNP, model.local.lock_policy), then every selected scenario at its stage and
its probes, run with the user's kubectl on this machine. No cloud resource at all.

Before anything, model.platforms.local_preflight: docker or podman, kind, kubectl and helm on PATH,
and no kind cluster of the same name that this stack did not create."""
from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.cilium_release import CiliumRelease, CiliumReleaseArgs
from components.kind_cluster import KindCluster, KindClusterArgs
from components.mtls_backend_container import (
    MtlsBackendContainer,
    MtlsBackendContainerArgs,
)
from components.proxy_container import ProxyContainer, ProxyContainerArgs
from model import helm, local, platforms, probes, render
from model.settings import PROJECT, Settings
from scenarios import Context

from .mtls import MtlsPlatform, declare_mtls_pki
from .shared import declare_checks, declare_on_cilium, verify


def declare_mtls_backend(settings: Settings, engine: str, owner: str, proxy: ProxyContainer) -> MtlsPlatform:
    """The mTLS scenario's PKI (SANs naming the proxy container's address) and its backend container."""
    pieces = declare_mtls_pki(settings, proxy.address)
    script = pulumi.Output.all(**pieces.files).apply(lambda files: local.mtls_backend_script(files))
    backend = MtlsBackendContainer(settings.name("mtls-backend"), MtlsBackendContainerArgs(
        create=local.mtls_create_command(engine, owner), delete=local.mtls_delete_command(engine),
        script=script, triggers=[proxy.ready.id, pieces.digest], after=[proxy.ready]))
    return MtlsPlatform(backend, pieces.material, pieces.digest)


def declare(settings: Settings, tools: Any) -> dict[str, Any]:
    owner = local.owner(PROJECT, pulumi.get_stack())
    platforms.local_preflight(local.CLUSTER, owner, tools.which, tools.run)
    engine = platforms.container_engine(tools.which)

    kind = KindCluster(settings.name("kind"), KindClusterArgs(
        config_yaml=local.cluster_config_yaml(owner), create=local.create_cluster_command(engine),
        delete=local.delete_cluster_command(engine), kubeconfig=local.kubeconfig_command(engine),
        node_address=local.address_command(engine, local.NODE_CONTAINER)))
    provider = k8s.Provider(settings.name("kind-k8s"), kubeconfig=kind.kubeconfig, delete_unreachable=True)
    release = CiliumRelease(settings.name("cilium"), CiliumReleaseArgs(
        version=settings.cilium_version, values=helm.helm_values(settings), provider=provider,
        connection=None, host_id=kind.cluster_id, kubectl=local.KUBECTL))
    needs_proxy = settings.needs("proxy")
    proxy = ProxyContainer(settings.name("proxy"), ProxyContainerArgs(
        create=local.proxy_create_command(engine, owner), delete=local.proxy_delete_command(engine),
        install_script=kind.node_ip.apply(lambda ip: local.proxy_install_script(settings, ip)),
        address=local.address_command(engine, local.PROXY_CONTAINER), triggers=[kind.cluster_id],
        after=[kind.cluster])) if needs_proxy else None
    address = proxy.address if proxy is not None else pulumi.Output.from_input(render.PLACEHOLDER_ADDRESS)
    mtls = (declare_mtls_backend(settings, engine, owner, proxy)
            if proxy is not None and settings.needs("mtls-backend") else None)

    ctx_static = Context(settings, render.PLACEHOLDER_ADDRESS)
    ctx_live = address.apply(lambda ip: Context(settings, ip))
    guard, deployed = declare_on_cilium(settings, ctx_static, ctx_live, provider,
                                        [release.release, release.crds_ready], mtls)
    reader = local.proxy_log_reader(engine)
    checks = declare_checks(
        settings, deployed, ctx_live, identity=[kind.cluster_id, *([proxy.ready.id] if proxy else [])],
        command=lambda pl, i: probes.command(pl.probes[i], pl.workloads, settings.convergence_seconds,
                                             kubectl=local.KUBECTL),
        evidence=lambda p, out: kind.node_ip.apply(
            lambda ip: probes.evidence_command(p, out, ip, reader=reader, log=local.SQUID_LOG)),
        kind=None, proxy=None, mtls=mtls,
        after=[*guard.policies, *([proxy.ready] if proxy else []), *([mtls.backend] if mtls else [])])
    return {
        "kubeContext": local.KUBE_CONTEXT,
        "kubeconfig": kind.kubeconfig,
        "kindNodeIp": kind.node_ip,
        **({"proxyAddress": address} if proxy is not None else {}),
        "restrictEgress": settings.restrict_egress,
        "ciliumStatus": release.status,
        "stages": {name: d.static.stage.name for name, d in deployed.items()},
        "verification": verify(settings, {n: d.live for n, d in deployed.items()}, checks),
        **({render.SECRET_MATERIAL_OUTPUT: mtls.material} if mtls is not None else {}),
    }
