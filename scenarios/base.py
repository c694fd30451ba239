"""What every scenario pack exposes. A pack is one pure module ``scenarios/<pack>.py``.

Module-level names of a pack:
    NAME: str                 # config name, e.g. "hoot51", "eks-retail", "stars"
    SEED: str                 # "001"
    TITLE: str                # one line
    NEEDS: frozenset[str]     # platform pieces it needs: "proxy" (the egress proxy host),
                              # "mtls-backend" (+ PKI); packs that need nothing: frozenset()
    def workloads(ctx: Context) -> list[dict]
        # Namespaces, Deployments (or Pods/ReplicationControllers as the seed has them), Services,
        # ConfigMaps they need. Identical in every stage: switching stages never touches them.
        # Every source workload must be able to run the probe command: sh + curl in the container
        # named by the annotation PROBE_CONTAINER_ANNOTATION on the workload's metadata (default:
        # the first container). Images pinned by tag, never :latest; resources set; runs non-root
        # where the image allows.
    def stages(ctx: Context) -> list[Stage]          # in the seed's order
    def probes(ctx: Context, stage: Stage) -> list[LabProbe]

A multi-cluster pack (ClusterMesh; NEEDS holds TWO_CLUSTERS, so a single-cluster platform refuses it)
also has:
    CLUSTERS: tuple[str, ...]                          # its clusters' names (Helm value cluster.name)
    def cluster_workloads(ctx) -> dict[str, list[dict]]  # per cluster; workloads(ctx) concatenates them
and its stages fill ``Stage.clusters`` (per cluster, the policy objects applied there; ``objects`` holds
them all, in cluster order). Its probes name workloads ``ns/name@cluster`` (cilium_verdicts.mesh).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from cilium_verdicts import Probe

PROBE_CONTAINER_ANNOTATION = "cilium-egress-lab/probe-container"
TWO_CLUSTERS = "two-clusters"     # a NEEDS piece: the pack runs on two clusters joined by ClusterMesh


class PackSettings(Protocol):
    """What the packs read of the lab's settings (model.settings.Settings provides it; the packs are
    below the lab model and never import it)."""
    env_name: str
    proxy_port: int
    allowed_domains: tuple[str, ...]
    probe_url: str
    control_url: str
    mtls_server_name: str
    mtls_client_cn: str


@dataclass(frozen=True)
class Context:
    """What the platform provides. Packs that run only inside the cluster ignore it."""
    settings: PackSettings        # model.settings.Settings
    proxy_address: str            # the proxy host's address (egress proxy; the mTLS backend)


@dataclass(frozen=True)
class Stage:
    name: str                     # exact stage name (config value of ``stages.<pack>``)
    step: str                     # the seed step it reproduces (short quote + where in the seed)
    objects: tuple[dict, ...]     # every policy object in force at this stage (NetworkPolicy,
                                  # CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, CEC/CCEC),
                                  # accumulated as the seed does until it deletes them
    clusters: tuple[tuple[str, tuple[dict, ...]], ...] = ()  # multi-cluster packs: (cluster, its objects)


@dataclass(frozen=True)
class LabProbe:
    traffic: Probe                # what the evaluator judges (cilium_verdicts.Probe)
    check: str | None = None      # an application check on the response when the request goes through
                                  # an Envoy listener: "proxy-log" (the egress proxy logged the CONNECT),
                                  # "mtls-echo" (the backend saw Envoy's client certificate)
    setup: str | None = None      # "rollout-restart": restart the source Deployment before probing
    note: str = ""                # the seed's words for this request
    name: str = ""                # stable part of the probe's resource name (default: from the traffic)
    url: str = ""                 # the exact URL curl fetches (default: derived from the traffic)
    curl_args: tuple[str, ...] = ()  # extra curl arguments (e.g. "-k")
    # What the destination does once the network lets the request through *directly* (not through a
    # listener): "allow" (it answers) or "refused" (it rejects the connection itself, e.g. a TLS
    # server that requires a client certificate, or plain HTTP sent to a TLS port).
    server_answer: str = "allow"

    @property
    def key(self) -> str:
        """The probe's stable name: ``name`` or a slug of the traffic (plus the setup step)."""
        if self.name:
            return self.name
        t = self.traffic
        parts = [t.source, t.to, str(t.port), t.via, t.request or "tcp", self.setup or ""]
        return re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")
