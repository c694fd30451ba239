"""A workload: the pods of one controller (or a bare Pod) as the evaluator sees them."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Mapping

from .selectors import cilium_labels


@dataclass(frozen=True, eq=False)
class Workload:
    """A Deployment/StatefulSet/DaemonSet/ReplicaSet/ReplicationController/Job (template labels), a
    CronJob (jobTemplate.spec.template) or a bare Pod. ``ports``: (name or None, containerPort,
    protocol). ``host_network``: the pod shares its node's network namespace, so it is no Cilium
    endpoint (docs.cilium.io "Endpoint": pods in the host namespace are not managed)."""
    name: str
    namespace: str
    kind: str
    labels: Mapping[str, str]
    ports: tuple[tuple[str | None, int, str], ...]
    ip: str
    namespace_labels: Mapping[str, str]
    service_account: str = "default"
    builtin: bool = False
    host_network: bool = False

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @cached_property
    def cilium_labels(self) -> dict[str, str]:
        return cilium_labels(self.labels, self.namespace, self.namespace_labels, self.service_account)
