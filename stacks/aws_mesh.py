"""The aws composition of a ClusterMesh pack (scenarios/stars_mesh.py): the lab's platform (network, key,
the kind host and the proxy host with their security groups, the egress lock), but the kind host boots
the pack's two kind clusters (model/mesh_aws.py: ``ccp`` on API port 6443, ``aws`` on 6444, both only
from the operator CIDR, both with the Elastic IP in their API certificate), each one's kubeconfig read
over SSH as a secret (components/remote_kind_cluster.py), one mesh CA (pulumi-tls), then per cluster as
on local (stacks/local_mesh.py): Cilium with that cluster's ClusterMesh values (the peer by its kind node
address on the host's shared ``kind`` network), the platform's policies, the pack's objects through that
cluster's own Kubernetes provider, and the probes whose source runs there, over SSH with that cluster's
kubectl context. The expectations: model.probes.plan (cilium_verdicts.mesh on every cluster's objects)."""
from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

import scenarios
from components.cilium_release import CiliumRelease, CiliumReleaseArgs
from components.egress_lock import EgressLock, EgressLockArgs
from components.kind_host import KindHost
from components.mesh_ca import MeshCa, MeshCaArgs
from components.platform_policies import PlatformPolicies, PlatformPoliciesArgs
from components.probes import Probes, ProbesArgs
from components.proxy_host import ProxyHost
from components.remote_kind_cluster import RemoteKindCluster, RemoteKindClusterArgs
from components.scenario import Scenario, ScenarioArgs
from model import (
    clustermesh,
    cost,
    local,
    mesh_aws,
    mesh_local,
    probes,
    render,
    userdata,
)
from model import security_groups as sg
from model.settings import Settings
from scenarios import Context
from scenarios.cilium import content_hash

from .aws_base import aws_base, host_outputs, two_hosts
from .local_mesh import _Checks
from .shared import verify


def declare(settings: Settings) -> dict[str, Any]:
    name = mesh_aws.mesh_pack(settings)
    pack = scenarios.pack(name)
    stage_name = settings.stage_of(name)
    base = aws_base(settings)
    net, key, host_args = base.net, base.key, base.host_args
    hosts = two_hosts(base)
    kind_eip, proxy_eip, proxy_cidr = hosts.kind_eip, hosts.proxy_eip, hosts.proxy_cidr
    kind_sg, proxy_sg = hosts.kind_sg, hosts.proxy_sg
    kind = KindHost(settings.name("kind"), host_args(
        kind_eip, kind_sg, settings.kind_instance_type,
        pulumi.Output.all(kind_eip.public_ip, proxy_eip.public_ip).apply(
            lambda ips: mesh_aws.kind_host_user_data(settings, pack, ips[0], ips[1]))), lab_cluster=False)
    proxy = ProxyHost(settings.name("proxy"), host_args(
        proxy_eip, proxy_sg, settings.proxy_instance_type,
        kind_eip.public_ip.apply(lambda ip: userdata.proxy_host_user_data(settings, ip))))

    ctx = Context(settings, render.PLACEHOLDER_ADDRESS)   # names and shapes; the proxy's address comes live
    ctx_live = proxy_eip.public_ip.apply(lambda ip: Context(settings, ip))
    plan = probes.plan(name, ctx, stage_name)
    plan_live = ctx_live.apply(lambda c: probes.plan(name, c, stage_name))
    stage = plan.stage
    ca = MeshCa(settings.name("mesh-ca"), MeshCaArgs(spec=clustermesh.MESH_CA))
    kinds = {c: RemoteKindCluster(settings.name(f"kind-{c}"), RemoteKindClusterArgs(
        connection=kind.connection, host_id=kind.instance_id, after=[kind.ready],
        kubeconfig=kind_eip.public_ip.apply(lambda ip, c=c: mesh_aws.kubeconfig_command(pack, c, ip)),
        node_address=mesh_aws.address_command(c))) for c in pack.CLUSTERS}
    node_ips = pulumi.Output.all(**{c: k.node_ip for c, k in kinds.items()})
    platform = list(local.platform_objects(ctx))
    platform_live = ctx_live.apply(lambda c: list(local.platform_objects(c)))
    cluster_objects = pack.cluster_objects(ctx, stage, platform)
    workloads = pack.cluster_workloads(ctx)
    stage_objects = dict(stage.clusters)
    releases, deployed, guards, checks = {}, {}, {}, {}
    for c in pack.CLUSTERS:
        provider = k8s.Provider(settings.name(f"kind-k8s-{c}"), kubeconfig=kinds[c].kubeconfig,
                                delete_unreachable=True)
        values = pulumi.Output.all(node_ips, ca.cert_pem, ca.key_pem).apply(
            lambda a, c=c: mesh_local.helm_values(settings, pack, c, a[0], a[1], a[2]))
        releases[c] = CiliumRelease(settings.name(f"cilium-{c}"), CiliumReleaseArgs(
            version=settings.cilium_version, values=values, provider=provider, connection=kind.connection,
            host_id=kind.instance_id, kubectl=mesh_aws.kubectl(c)))
        after = [releases[c].release, releases[c].crds_ready]
        guards[c] = PlatformPolicies(settings.name(f"platform-{c}"), PlatformPoliciesArgs(
            objects=platform, objects_live=platform_live, provider=provider, after=after))
        objs = list(stage_objects.get(c, ()))
        deployed[c] = Scenario(settings.name(f"{name}-{c}"), ScenarioArgs(
            workloads=workloads[c], stage_objects=objs, stage_objects_live=pulumi.Output.from_input(objs),
            provider=provider, after=[*after, *guards[c].policies]))

    # The lock switches once Cilium runs and every cluster's workloads are up (as stacks/lab.py).
    lock = EgressLock(settings.name("kind") + "-sg-lock", EgressLockArgs(
        security_group_id=kind_sg.security_group_id, rules=sg.kind_egress_toggle(settings, proxy_cidr),
        after=[kind.ready, *[r.release for r in releases.values()], *[p for g in guards.values() for p in g.policies],
               *[r for d in deployed.values() for r in d.workload_resources]]))
    triggers = [settings.restrict_egress, kind.instance_id, proxy.instance_id, stage.name,
                content_hash(*[o for objs in cluster_objects.values() for o in objs]),
                platform_live.apply(lambda objs: content_hash(*objs))]
    for c in pack.CLUSTERS:
        mine = [p for p in plan.probes if mesh_local.cluster_of(p.probe.traffic.source) == c]
        checks[c] = Probes(settings.name(f"probes-{name}-{c}"), ProbesArgs(
            names=[p.name for p in mine],
            commands=[mesh_aws.probe_command(pack, ctx, p, settings.convergence_seconds) for p in mine],
            kind=kind.connection, proxy=None, triggers=triggers,
            # every cluster's objects: a probe's answer depends on both ends' policies
            after=[lock, *[r for d in deployed.values() for r in (*d.policies, *d.workload_resources)]]))
    merged = _Checks(pulumi.Output.all(*[k.stdouts for k in checks.values()]).apply(
                         lambda ds: {k: v for d in ds for k, v in d.items()}),
                     pulumi.Output.from_input({}))
    effective = sg.kind_egress(settings, proxy_cidr)
    return {
        **host_outputs(kind, proxy, key),
        "kubeconfigs": pulumi.Output.secret(pulumi.Output.all(**{c: k.kubeconfig for c, k in kinds.items()})),
        "kubeContexts": {c: mesh_local.kube_context(c) for c in pack.CLUSTERS},
        "kubeApiPorts": mesh_aws.api_ports(pack),
        "kindNodeIps": node_ips,
        "restrictEgress": settings.restrict_egress,
        "amiId": kind.ami_id,
        "ciliumStatus": {c: r.status for c, r in releases.items()},
        "stages": {name: stage.name},
        "costEstimate": cost.stack_output(settings, aws.config.region),  # one kind host, as the lab
        "verification": verify(settings, {name: plan_live}, {name: merged}),
        "kindEgressRules": pulumi.Output.all(*[r.cidr for r in effective]).apply(
            lambda cidrs: [{**r.as_dict(), "cidr": c} for r, c in zip(effective, cidrs)]),
        **({"flowLogGroup": net.flow_log_group} if net.flow_log_group is not None else {}),
    }
