"""The local platform's two clusters for a ClusterMesh pack (scenarios/stars_mesh.py): one kind cluster
per mesh cluster (``ccp``, ``aws``) on the user's Docker or Podman, both on kind's one ``kind``
network (kind v0.30.0 creates every cluster's nodes on that network unless KIND_EXPERIMENTAL_DOCKER_NETWORK
says otherwise), each with its own pod CIDR (the pack's POD_CIDRS, also the Helm cluster-pool CIDR) and a
Cilium release with the mesh values (model.clustermesh.helm_values). Pure: commands and values only.

How the agents reach the other cluster's clustermesh-apiserver: by the peer's kind node address on the
shared network (``docker inspect``), given to the chart as the peer's ``ips`` with no ``address``; the
chart then dials ``<peer>.mesh.cilium.io`` and maps that name to the ips with host aliases (chart
v1.18.10 values.yaml ``clustermesh.config.domain``: "used in the case cluster addresses are not
provided and IPs are used"; templates/clustermesh-config/_helpers.tpl writes the endpoint
``https://<name>.<domain>:<port>`` when ``ips`` is set - read on the chart's main branch, the pinned
values.yaml documents the same), a name the apiserver's certificate carries (``*.mesh.cilium.io``).

Probes run in the cluster of their source workload, with the user's kubectl and that cluster's kind
context; the URL names the Service as the source's cluster resolves it (a global Service there).
"""
from __future__ import annotations

import copy
from types import ModuleType
from typing import Callable, Mapping

import yaml

from . import clustermesh, local, probes
from .settings import Settings
from .userdata import kind_cluster_config


def kube_context(cluster: str) -> str:
    """kind v0.30.0 kubeconfig.ContextForCluster: ``kind-`` + the cluster's name."""
    return f"kind-{clustermesh.kind_cluster_name(cluster)}"


def kubectl(cluster: str) -> str:
    return f"kubectl --context {kube_context(cluster)}"


def node_container(cluster: str) -> str:
    return clustermesh.peer_address(cluster)


def cluster_config(pack: ModuleType, cluster: str, owner_value: str) -> dict:
    """The lab's kind config (no default CNI, no kube-proxy) named after the mesh cluster, its pod
    subnet the pack's CIDR for that cluster."""
    config = copy.deepcopy(kind_cluster_config(None, owner_value))
    config["name"] = clustermesh.kind_cluster_name(cluster)
    config["networking"]["podSubnet"] = pack.POD_CIDRS[cluster]
    return config


def cluster_config_yaml(pack: ModuleType, cluster: str, owner_value: str) -> str:
    return yaml.safe_dump(cluster_config(pack, cluster, owner_value), sort_keys=False)


def _named(command: str, cluster: str) -> str:
    """model.local's single-cluster command for the kind cluster of ``cluster``."""
    return command.replace(f"--name {local.CLUSTER}", f"--name {clustermesh.kind_cluster_name(cluster)}").replace(
        f"grep -qx {local.CLUSTER} ", f"grep -qx {clustermesh.kind_cluster_name(cluster)} ")


def create_cluster_command(engine: str, cluster: str) -> str:
    return _named(local.create_cluster_command(engine), cluster)


def delete_cluster_command(engine: str, cluster: str) -> str:
    return _named(local.delete_cluster_command(engine), cluster)


def kubeconfig_command(engine: str, cluster: str) -> str:
    return _named(local.kubeconfig_command(engine), cluster)


def address_command(engine: str, cluster: str) -> str:
    return local.address_command(engine, node_container(cluster))


def helm_values(settings: Settings, pack: ModuleType, cluster: str, node_ips: Mapping[str, str],
                ca_cert_pem: str = clustermesh.PLACEHOLDER_CA, ca_key_pem: str = clustermesh.PLACEHOLDER_CA) -> dict:
    """model.clustermesh.helm_values with each peer reached by its kind node's address (``ips``)."""
    values = clustermesh.helm_values(settings, pack, cluster, ca_cert_pem, ca_key_pem)
    values["clustermesh"]["config"]["clusters"] = [
        {"name": p["name"], "ips": [node_ips[p["name"]]], "port": p["port"]}
        for p in values["clustermesh"]["config"]["clusters"]]
    return values


def helm_command(settings: Settings, cluster: str) -> str:
    """Install Cilium by hand in the kind cluster of ``cluster`` with its values in values.yaml (the
    stack does it with a Helm release per cluster)."""
    return (f"helm upgrade --install cilium cilium/cilium --version {settings.cilium_version} "
            f"--kube-context {kube_context(cluster)} -n kube-system -f values.yaml")


def cluster_of(ref: str) -> str:
    """``ns/name@cluster`` -> ``cluster``."""
    base, at, cluster = ref.partition("@")
    if not at:
        raise ValueError(f"{ref!r} is not a mesh workload id (ns/name@cluster)")
    return cluster


def probe_workloads(pack: ModuleType, ctx, planned: probes.Planned) -> tuple[dict, ...]:
    """What the probe's command is built from: the source's cluster's objects (its Services: a
    global Service there for a remote destination) plus the destination workload itself."""
    t = planned.probe.traffic
    per = pack.cluster_workloads(ctx)
    own = per[cluster_of(t.source)]
    if t.to.startswith("world:"):
        return tuple(own)
    dest_key = t.to.partition("@")[0]
    dest = [o for o in per[cluster_of(t.to)] if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Pod")
            and f"{o['metadata'].get('namespace')}/{o['metadata']['name']}" == dest_key]
    have = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in own}
    return (*own, *(o for o in dest if (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) not in have))


def probe_command(pack: ModuleType, ctx, planned: probes.Planned, window_s: int,
                  kubectl_of: Callable[[str], str] = kubectl) -> str:
    """model.probes.command in the source's cluster: the traffic with plain ``ns/name`` ids, that
    cluster's kubectl context (``kubectl_of(cluster)``; the aws kind host's: model.mesh_aws). The label
    keeps the mesh ids (what the verification reports)."""
    t = planned.probe.traffic
    plain = type(t)(t.source.partition("@")[0], t.to.partition("@")[0], t.port, t.via, t.protocol, t.request,
                    t.service, t.address)
    plain_probe = type(planned.probe)(**{**planned.probe.__dict__, "traffic": plain, "name": planned.probe.key})
    plain_planned = type(planned)(**{**planned.__dict__, "probe": plain_probe})
    return probes.command(plain_planned, probe_workloads(pack, ctx, planned), window_s,
                          kubectl=kubectl_of(cluster_of(t.source)), label_traffic=t)
