"""The local composition of a ClusterMesh pack (scenarios/stars_mesh.py): two kind clusters on the
user's Docker or Podman, on kind's one network, named after the mesh clusters (``ccp``, ``aws``), one
mesh CA (pulumi-tls), Cilium in each with that cluster's ClusterMesh values (its name, id and pod CIDR;
its clustermesh-apiserver a NodePort; the peer reached at the peer's kind node address), then per
cluster: the platform's policies, the pack's objects of the configured stage applied there (a
Kubernetes provider per cluster), and the probes whose source runs there, with the user's kubectl in
that cluster's context. The expectations: model.probes.plan (cilium_verdicts.mesh on every cluster's
objects). No proxy container: a ClusterMesh pack needs none (a two-cluster pack runs alone,
scenarios.multi_cluster_refusals)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

import scenarios
from components.cilium_release import CiliumRelease, CiliumReleaseArgs
from components.kind_cluster import KindCluster, KindClusterArgs
from components.mesh_ca import MeshCa, MeshCaArgs
from components.platform_policies import PlatformPolicies, PlatformPoliciesArgs
from components.probes import Probes, ProbesArgs
from components.scenario import Scenario, ScenarioArgs
from model import clustermesh, local, mesh_local, platforms, probes, render
from model.settings import PROJECT, Settings
from scenarios import Context
from scenarios.cilium import content_hash

from .shared import verify


@dataclass
class _Checks:
    """A pack's probes over its clusters, as stacks.shared.verify reads them."""
    stdouts: pulumi.Output
    proxy_stdouts: pulumi.Output


def mesh_pack(settings: Settings) -> str | None:
    """The selected two-cluster pack, if any (it runs alone: scenarios.multi_cluster_refusals)."""
    return next((n for n in settings.scenarios if n not in scenarios.ONE_CLUSTER), None)


def declare(settings: Settings, tools: Any) -> dict[str, Any]:
    name = mesh_pack(settings)
    pack = scenarios.pack(name)
    owner = local.owner(PROJECT, pulumi.get_stack())
    for cluster in pack.CLUSTERS:
        platforms.local_preflight(clustermesh.kind_cluster_name(cluster), owner, tools.which, tools.run)
    engine = platforms.container_engine(tools.which)
    ctx = Context(settings, render.PLACEHOLDER_ADDRESS)   # no proxy: nothing depends on its address
    plan = probes.plan(name, ctx, settings.stage_of(name))
    stage = plan.stage
    ca = MeshCa(settings.name("mesh-ca"), MeshCaArgs(spec=clustermesh.MESH_CA))
    kinds = {c: KindCluster(settings.name(f"kind-{c}"), KindClusterArgs(
        config_yaml=mesh_local.cluster_config_yaml(pack, c, owner),
        create=mesh_local.create_cluster_command(engine, c), delete=mesh_local.delete_cluster_command(engine, c),
        kubeconfig=mesh_local.kubeconfig_command(engine, c), node_address=mesh_local.address_command(engine, c)))
        for c in pack.CLUSTERS}
    node_ips = pulumi.Output.all(**{c: k.node_ip for c, k in kinds.items()})
    cluster_objects = pack.cluster_objects(ctx, stage, local.platform_objects(ctx))
    platform = list(local.platform_objects(ctx))
    workloads = pack.cluster_workloads(ctx)
    stage_objects = dict(stage.clusters)
    releases, deployed, checks = {}, {}, {}
    for c in pack.CLUSTERS:
        provider = k8s.Provider(settings.name(f"kind-k8s-{c}"), kubeconfig=kinds[c].kubeconfig, delete_unreachable=True)
        values = pulumi.Output.all(node_ips, ca.cert_pem, ca.key_pem).apply(
            lambda a, c=c: mesh_local.helm_values(settings, pack, c, a[0], a[1], a[2]))
        releases[c] = CiliumRelease(settings.name(f"cilium-{c}"), CiliumReleaseArgs(
            version=settings.cilium_version, values=values, provider=provider, connection=None,
            host_id=kinds[c].cluster_id, kubectl=mesh_local.kubectl(c)))
        after = [releases[c].release, releases[c].crds_ready]
        guard = PlatformPolicies(settings.name(f"platform-{c}"), PlatformPoliciesArgs(
            objects=platform, objects_live=pulumi.Output.from_input(platform), provider=provider, after=after))
        objs = list(stage_objects.get(c, ()))
        deployed[c] = Scenario(settings.name(f"{name}-{c}"), ScenarioArgs(
            workloads=workloads[c], stage_objects=objs, stage_objects_live=pulumi.Output.from_input(objs),
            provider=provider, after=[*after, *guard.policies]))
    for c in pack.CLUSTERS:
        mine = [p for p in plan.probes if mesh_local.cluster_of(p.probe.traffic.source) == c]
        triggers = [settings.restrict_egress, *[k.cluster_id for k in kinds.values()], stage.name,
                    content_hash(*[o for objs in cluster_objects.values() for o in objs])]
        checks[c] = Probes(settings.name(f"probes-{name}-{c}"), ProbesArgs(
            names=[p.name for p in mine],
            commands=[mesh_local.probe_command(pack, ctx, p, settings.convergence_seconds) for p in mine],
            kind=None, proxy=None, triggers=triggers,
            # every cluster's objects: a probe's answer depends on both ends' policies
            after=[r for d in deployed.values() for r in (*d.policies, *d.workload_resources)]))
    merged = _Checks(pulumi.Output.all(*[k.stdouts for k in checks.values()]).apply(
                         lambda ds: {k: v for d in ds for k, v in d.items()}),
                     pulumi.Output.from_input({}))
    return {
        "kubeContexts": {c: mesh_local.kube_context(c) for c in pack.CLUSTERS},
        "kindNodeIps": node_ips,
        "kubeconfigs": pulumi.Output.secret(pulumi.Output.all(**{c: k.kubeconfig for c, k in kinds.items()})),
        "restrictEgress": settings.restrict_egress,
        "ciliumStatus": {c: r.status for c, r in releases.items()},
        "stages": {name: stage.name},
        "verification": verify(settings, {name: pulumi.Output.from_input(plan)}, {name: merged}),
    }
