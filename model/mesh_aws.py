"""The aws platform's two clusters for a ClusterMesh pack (scenarios/stars_mesh.py): both kind clusters
on the one kind host (kind supports several clusters on one Docker: every cluster's nodes join the
``kind`` network), named after the mesh clusters (``ccp``, ``aws``), each with its own pod CIDR (the
pack's POD_CIDRS), its own API port on the host (network.MESH_API_PORTS: 6443, 6444; both only from the
operator CIDR, model/security_groups.py) and the same API certificate SANs as the lab's one cluster
(the Elastic IP and 127.0.0.1, added by the JSON6902 patch of model.userdata.kind_cluster_config).
Cilium per cluster with model.mesh_local.helm_values (peers by kind node address on the shared network,
one mesh CA). Pure: configs, boot script, commands.

On the host, /root/.kube/config holds both clusters' contexts (kind's ``kind-<name>``, servers on
127.0.0.1:<port>); probes run over SSH in the source workload's cluster with that context."""
from __future__ import annotations

import copy
import shlex
from types import ModuleType
from typing import Any

import yaml

from . import clustermesh, local, mesh_local, probes, remote, userdata
from .mesh_ports import api_ports, mesh_pack, settings_api_ports  # noqa: F401 - this module's API too
from .settings import Settings

HOST_KUBECONFIG = "/root/.kube/config"


def cluster_config(pack: ModuleType, cluster: str, kind_ip: str) -> dict:
    """The lab's aws kind config (no default CNI, no kube-proxy, the API on 0.0.0.0 with the EIP and
    127.0.0.1 added to its SANs) named after the mesh cluster, on its own host port and pod subnet."""
    config = copy.deepcopy(userdata.kind_cluster_config(kind_ip))
    config["name"] = clustermesh.kind_cluster_name(cluster)
    config["networking"]["apiServerPort"] = api_ports(pack)[cluster]
    config["networking"]["podSubnet"] = pack.POD_CIDRS[cluster]
    return config


def config_path(cluster: str) -> str:
    return f"{userdata.LAB_DIR}/kind-{clustermesh.kind_cluster_name(cluster)}.yaml"


def host_kubeconfig(cluster: str) -> str:
    return f"/root/.kube/{clustermesh.kind_cluster_name(cluster)}.yaml"


def extra_no_proxy(pack: ModuleType) -> tuple[str, ...]:
    """The mesh's nodes and pod CIDRs are reached directly, never through the proxy."""
    return (*[clustermesh.peer_address(c) for c in pack.CLUSTERS], *[pack.POD_CIDRS[c] for c in pack.CLUSTERS])


def cluster_boot(pack: ModuleType, kind_ip: str) -> str:
    """The kind host's boot for a two-cluster pack (model.userdata.kind_host_user_data's
    ``cluster_boot``): each cluster's config, each created (retried), one kubeconfig per cluster
    (server 127.0.0.1:<its port>) merged into /root/.kube/config, each API certificate checked."""
    q = shlex.quote
    parts = [userdata._heredoc(config_path(c), yaml.dump(cluster_config(pack, c, kind_ip),
                                                         Dumper=userdata._BlockDumper, sort_keys=False))
             for c in pack.CLUSTERS]
    parts.append(f"""# kind hands HTTP(S)_PROXY/NO_PROXY to the nodes, so containerd pulls images through the proxy.
create_cluster() {{  # create_cluster NAME
  kind create cluster --config {userdata.LAB_DIR}/kind-"$1".yaml && return 0
  kind delete cluster --name "$1" || true
  return 1
}}""")
    ports = api_ports(pack)
    for c in pack.CLUSTERS:
        name = q(clustermesh.kind_cluster_name(c))
        parts.append(f"if ! kind get clusters | grep -qx {name}; then\n  retry 3 15 create_cluster {name}\nfi")
    parts.append("mkdir -p /root/.kube")
    for c in pack.CLUSTERS:
        parts.append(f"{userdata.kubeconfig_pipeline(f'https://127.0.0.1:{ports[c]}', clustermesh.kind_cluster_name(c))}"
                     f" > {host_kubeconfig(c)}\nchmod 0600 {host_kubeconfig(c)}")
    joined = ":".join(host_kubeconfig(c) for c in pack.CLUSTERS)
    parts.append(f"KUBECONFIG={joined} kubectl config view --flatten > {HOST_KUBECONFIG}\nchmod 0600 {HOST_KUBECONFIG}")
    parts += [userdata.api_certificate_check(kind_ip, host_kubeconfig(c), ports[c]) for c in pack.CLUSTERS]
    return "\n".join(parts)


def kind_host_user_data(settings: Settings, pack: ModuleType, kind_ip: str, proxy_ip: str, **kw: Any) -> str:
    return userdata.kind_host_user_data(settings, kind_ip, proxy_ip, cluster_boot=cluster_boot(pack, kind_ip),
                                        extra_no_proxy=extra_no_proxy(pack), **kw)


def kubeconfig_command(pack: ModuleType, cluster: str, api_address: str) -> str:
    """Print ``cluster``'s kubeconfig with the server rewritten to the Elastic IP and its port."""
    return "sudo " + userdata.kubeconfig_pipeline(f"https://{api_address}:{api_ports(pack)[cluster]}",
                                                  clustermesh.kind_cluster_name(cluster))


def address_command(cluster: str) -> str:
    """The cluster's kind node address on the host's ``kind`` network (the peers dial it)."""
    return "sudo " + local.address_command("docker", mesh_local.node_container(cluster))


def kubectl(cluster: str) -> str:
    """The kind host's kubectl in ``cluster``'s context (kind's ``kind-<name>``)."""
    return f"{remote.KUBECTL} --context {mesh_local.kube_context(cluster)}"


def probe_command(pack: ModuleType, ctx, planned: probes.Planned, window_s: int) -> str:
    """mesh_local.probe_command with the kind host's kubectl in the source's cluster's context."""
    return mesh_local.probe_command(pack, ctx, planned, window_s, kubectl_of=kubectl)
