"""The fleet composition (``edgeClusters`` = N > 1 on the aws platform): one network, one SSH key, one
shared proxy host, and N edge clusters - each a kind host with its own Elastic IP, lockable security
group, kubeconfig (a secret output), Cilium, the platform's guard, every selected scenario, its egress
lock and its probes - all locked to the shared proxy, whose ingress admits exactly the N hosts.

Each edge cluster is declared exactly as stacks/lab.py declares its one cluster (the same components,
builders and ordering: the lock after Cilium and the workloads; probes after the lock), with the edge's
Settings from model.edges (envName ``<env>-eNN``), so ``restrictEgress`` still changes only the lock's
rule resources - one per edge. Outputs: per cluster its addresses, kubeconfig, verification; and one
fleet summary line. (N = 1 is stacks/lab.py itself.)
"""
from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

import scenarios
from components.cilium_release import CiliumRelease, CiliumReleaseArgs
from components.egress_lock import EgressLock, EgressLockArgs
from components.kind_host import KindHost
from components.platform_policies import PlatformPolicies, PlatformPoliciesArgs
from components.probes import Probes, ProbesArgs
from components.proxy_host import ProxyHost
from components.security_group import LockableSecurityGroup, LockableSecurityGroupArgs
from model import cost, edges, helm, network, probes, render, userdata
from model import security_groups as sg
from model.settings import Settings
from scenarios import Context, cilium

from .aws_base import aws_base
from .shared import declare_scenario, verify


def declare(settings: Settings) -> dict[str, Any]:
    """Declare the fleet; return the stack outputs."""
    base = aws_base(settings)
    tags, net, key, eip_opts, host_args = base.tags, base.net, base.key, base.eip_opts, base.host_args

    fleet = edges.edge_settings(settings)
    proxy_eip = aws.ec2.Eip(settings.name("proxy-eip"), domain="vpc",
                            tags={**tags, "Name": settings.name("proxy")}, opts=eip_opts)
    kind_eips = {edges.cluster_name(e): aws.ec2.Eip(e.name("kind-eip"), domain="vpc",
                                                    tags={**tags, "Name": e.name("kind")}, opts=eip_opts)
                 for e in fleet}
    proxy_cidr = proxy_eip.public_ip.apply(network.host_cidr)
    kind_cidrs = {n: eip.public_ip.apply(network.host_cidr) for n, eip in kind_eips.items()}

    proxy_sg = LockableSecurityGroup(settings.name("proxy") + "-sg", LockableSecurityGroupArgs(
        vpc_id=net.vpc_id, description="cilium-egress-lab shared proxy host", tags=tags,
        ingress=edges.proxy_ingress(settings, kind_cidrs), egress=sg.proxy_egress(settings)))

    proxy = ProxyHost(settings.name("proxy"), host_args(
        proxy_eip, proxy_sg, settings.proxy_instance_type,
        pulumi.Output.all(*[e.public_ip for e in kind_eips.values()]).apply(
            lambda ips: userdata.proxy_host_user_data(settings, list(ips)))))
    ctx_live_of = lambda edge: proxy_eip.public_ip.apply(lambda ip: Context(edge, ip))  # noqa: E731

    clusters: dict[str, dict[str, Any]] = {}
    reports: dict[str, pulumi.Output] = {}
    for edge in fleet:
        name = edges.cluster_name(edge)
        eip = kind_eips[name]
        kind_sg = LockableSecurityGroup(edge.name("kind") + "-sg", LockableSecurityGroupArgs(
            vpc_id=net.vpc_id, description=f"cilium-egress-lab edge {name}", tags=tags,
            ingress=sg.kind_ingress(edge), egress=sg.kind_egress_base(edge, proxy_cidr)))
        kind = KindHost(edge.name("kind"), host_args(
            eip, kind_sg, settings.kind_instance_type,
            pulumi.Output.all(eip.public_ip, proxy_eip.public_ip).apply(
                lambda ips, edge=edge: userdata.kind_host_user_data(edge, ips[0], ips[1]))))
        provider = k8s.Provider(edge.name("kind-k8s"), kubeconfig=kind.kubeconfig, delete_unreachable=True)
        release = CiliumRelease(edge.name("cilium"), CiliumReleaseArgs(
            version=settings.cilium_version, values=helm.helm_values(edge), provider=provider,
            connection=kind.connection, host_id=kind.instance_id))
        ctx_static, ctx_live = Context(edge, render.PLACEHOLDER_ADDRESS), ctx_live_of(edge)
        guard = PlatformPolicies(edge.name("platform"), PlatformPoliciesArgs(
            objects=list(scenarios.platform_objects(ctx_static)),
            objects_live=ctx_live.apply(lambda c: list(scenarios.platform_objects(c))),
            provider=provider, after=[release.release, release.crds_ready]))
        deployed = {s: declare_scenario(edge, s, ctx_static, ctx_live, provider,
                                        [release.release, release.crds_ready], None) for s in settings.scenarios}
        lock = EgressLock(edge.name("kind") + "-sg-lock", EgressLockArgs(
            security_group_id=kind_sg.security_group_id, rules=sg.kind_egress_toggle(edge, proxy_cidr),
            after=[kind.ready, release.release, *guard.policies,
                   *[r for d in deployed.values() for r in d.component.workload_resources]]))
        checks = {}
        for s, d in deployed.items():
            triggers = [settings.restrict_egress, kind.instance_id, proxy.instance_id, d.static.stage.name,
                        d.live.apply(lambda pl: cilium.content_hash(*pl.stage.objects)),
                        ctx_live.apply(lambda c: cilium.content_hash(*scenarios.platform_objects(c)))]
            checks[s] = Probes(edge.name(f"probes-{s}"), ProbesArgs(
                names=[p.name for p in d.static.probes],
                commands=[d.live.apply(lambda pl, i=i: probes.command(pl.probes[i], pl.workloads,
                                                                       settings.convergence_seconds))
                          for i in range(len(d.static.probes))],
                kind=kind.connection, proxy=proxy.connection, triggers=triggers,
                evidence={p.name: (lambda out, p=p, eip=eip: eip.public_ip.apply(
                    lambda ip: probes.evidence_command(p, out, ip)))
                    for p in d.static.probes if p.check == probes.PROXY_LOG},
                after=[lock, proxy.ready, *guard.policies, *d.component.policies, *d.component.workload_resources]))
        reports[name] = verify(edge, {s: d.live for s, d in deployed.items()}, checks)
        clusters[name] = {"kindPublicIp": kind.public_ip, "kubeconfig": kind.kubeconfig,
                          "stages": {s: d.static.stage.name for s, d in deployed.items()}}

    ssh = lambda ip: f"ssh -i lab.key {network.SSH_USER}@{ip}"  # noqa: E731
    names = list(reports)
    return {
        "proxyPublicIp": proxy.public_ip,
        "sshProxy": proxy.public_ip.apply(ssh),
        "sshPrivateKey": key.private_key_openssh,
        "restrictEgress": settings.restrict_egress,
        "edgeClusters": names,
        "kindPublicIps": {n: c["kindPublicIp"] for n, c in clusters.items()},
        "kubeconfigs": pulumi.Output.secret({n: c["kubeconfig"] for n, c in clusters.items()}),
        "stages": clusters[names[0]]["stages"],
        "costEstimate": cost.stack_output(settings, aws.config.region),
        "verification": pulumi.Output.all(*[reports[n] for n in names]).apply(
            lambda rs: {"clusters": dict(zip(names, rs)), "ok": all(r["ok"] for r in rs)}),
        "fleetSummary": pulumi.Output.all(*[reports[n] for n in names]).apply(
            lambda rs: edges.summary(dict(zip(names, rs)))),
        **({"flowLogGroup": net.flow_log_group} if net.flow_log_group is not None else {}),
    }
