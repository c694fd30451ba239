"""The lab composition: the platform (network, key, two hosts with their security groups, Cilium,
the egress proxy's guard policy, the egress lock, the mTLS backend when a scenario needs it), then every selected scenario at its
stage, its probes, and the verification."""
from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.cilium_release import CiliumRelease, CiliumReleaseArgs
from components.egress_lock import EgressLock, EgressLockArgs
from components.kind_host import KindHost
from components.proxy_host import ProxyHost
from model import cost, helm, probes, render, userdata
from model import security_groups as sg
from model.settings import Settings
from scenarios import Context

from .aws_base import aws_base, host_outputs, two_hosts
from .mtls import declare_mtls_backend
from .shared import declare_checks, declare_on_cilium, verify


def declare(settings: Settings) -> dict[str, Any]:
    """Declare every resource; return the stack outputs (name -> value or Output)."""
    base = aws_base(settings)
    net, key = base.net, base.key
    hosts = two_hosts(base)
    kind_eip, proxy_eip, proxy_cidr = hosts.kind_eip, hosts.proxy_eip, hosts.proxy_cidr
    kind_sg, proxy_sg = hosts.kind_sg, hosts.proxy_sg
    host_args = base.host_args

    kind = KindHost(settings.name("kind"), host_args(
        kind_eip, kind_sg, settings.kind_instance_type,
        pulumi.Output.all(kind_eip.public_ip, proxy_eip.public_ip).apply(
            lambda ips: userdata.kind_host_user_data(settings, ips[0], ips[1]))))
    proxy = ProxyHost(settings.name("proxy"), host_args(
        proxy_eip, proxy_sg, settings.proxy_instance_type,
        kind_eip.public_ip.apply(lambda ip: userdata.proxy_host_user_data(settings, ip))))

    # Kubernetes: Cilium, then every selected scenario (scenarios/) at its configured stage.
    provider = k8s.Provider(settings.name("kind-k8s"), kubeconfig=kind.kubeconfig,
                            delete_unreachable=True)
    release = CiliumRelease(settings.name("cilium"), CiliumReleaseArgs(
        version=settings.cilium_version, values=helm.helm_values(settings), provider=provider,
        connection=kind.connection, host_id=kind.instance_id))
    mtls = (declare_mtls_backend(settings, proxy_eip, proxy.connection, proxy.instance_id, proxy.ready)
            if settings.needs("mtls-backend") else None)
    ctx_static = Context(settings, render.PLACEHOLDER_ADDRESS)
    ctx_live = proxy_eip.public_ip.apply(lambda ip: Context(settings, ip))
    guard, deployed = declare_on_cilium(settings, ctx_static, ctx_live, provider,
                                        [release.release, release.crds_ready], mtls)

    # The lock switches only once Cilium runs and every scenario's workloads are up (images
    # pulled), so restrictEgress=true works on the very first up.
    toggle = sg.kind_egress_toggle(settings, proxy_cidr)
    lock = EgressLock(settings.name("kind") + "-sg-lock", EgressLockArgs(
        security_group_id=kind_sg.security_group_id, rules=toggle,
        after=[kind.ready, release.release, *guard.policies, *[r for d in deployed.values() for r in d.component.workload_resources]]))

    # Verification: every scenario's probes, re-run whenever their answer can change.
    checks = declare_checks(
        settings, deployed, ctx_live, identity=[kind.instance_id, proxy.instance_id], mtls=mtls,
        command=lambda pl, i: probes.command(pl.probes[i], pl.workloads, settings.convergence_seconds),
        evidence=lambda p, out: kind_eip.public_ip.apply(lambda ip: probes.evidence_command(p, out, ip)),
        kind=kind.connection, proxy=proxy.connection,
        after=[lock, proxy.ready, *guard.policies, *([mtls.backend] if mtls is not None else [])])
    verification = verify(settings, {n: d.live for n, d in deployed.items()}, checks)
    extra_outputs: dict[str, Any] = {}
    if mtls is not None:
        extra_outputs[render.SECRET_MATERIAL_OUTPUT] = mtls.material

    effective = sg.kind_egress(settings, proxy_cidr)
    return {
        **host_outputs(kind, proxy, key),
        "kubeconfig": kind.kubeconfig,
        "restrictEgress": settings.restrict_egress,
        "amiId": kind.ami_id,
        "ciliumStatus": release.status,
        "stages": {name: d.static.stage.name for name, d in deployed.items()},
        "costEstimate": cost.stack_output(settings, aws.config.region),  # on-demand list prices, model/prices.json
        "verification": verification,
        "kindEgressRules": pulumi.Output.all(*[r.cidr for r in effective]).apply(
            lambda cidrs: [{**r.as_dict(), "cidr": c} for r, c in zip(effective, cidrs)]),
        **extra_outputs,
        **({"flowLogGroup": net.flow_log_group} if net.flow_log_group is not None else {}),
    }
