"""Which two-cluster pack is selected and the kind host's API port of each of its clusters on aws
(model/mesh_aws.py): the security group admits each from the operator CIDR only
(model/security_groups.py). Apart from model/mesh_aws.py so the security groups need nothing else."""
from __future__ import annotations

from types import ModuleType

import scenarios

from . import network
from .settings import Settings


def mesh_pack(settings: Settings) -> str | None:
    """The selected two-cluster pack, if any (it runs alone: scenarios.multi_cluster_refusals)."""
    return next((n for n in settings.scenarios if n not in scenarios.ONE_CLUSTER), None)


def api_ports(pack: ModuleType) -> dict[str, int]:
    """Each mesh cluster's API port on the kind host, in the pack's cluster order (the first: 6443)."""
    if len(pack.CLUSTERS) > len(network.MESH_API_PORTS):
        raise ValueError(f"{pack.NAME}: {len(pack.CLUSTERS)} clusters, the kind host publishes "
                         f"{len(network.MESH_API_PORTS)} API ports {list(network.MESH_API_PORTS)}")
    return dict(zip(pack.CLUSTERS, network.MESH_API_PORTS))


def settings_api_ports(settings: Settings) -> dict[str, int]:
    """The API ports the kind host publishes for the selected packs: {} for the lab's one cluster."""
    name = mesh_pack(settings)
    return api_ports(scenarios.pack(name)) if name else {}
