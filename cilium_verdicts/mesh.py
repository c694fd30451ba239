"""ClusterMesh: several clusters' objects evaluated together (Cilium 1.18).

Each cluster is built from its own objects exactly as a single cluster is (``Cluster.from_objects``);
the mesh then puts every cluster's workloads side by side. What changes across clusters, with the
source each rule comes from:

- **Ids.** A workload of a mesh is ``ns/name@cluster`` (single-cluster results keep ``ns/name``).
- **Cluster label.** Cilium gives every endpoint the label ``io.cilium.k8s.policy.cluster=<cluster
  name>`` (selectors.py); in a mesh each workload carries its own cluster's name, so any selector
  (CNP endpoint selectors and NetworkPolicy podSelectors alike) can name it.
Sources at v1.18.10 (cilium/cilium commit 6bf2fe83d2fc, Documentation/ and pkg/):

- **Policies are per cluster.** Documentation/network/clustermesh/policy.rst: "Kubernetes
  security policies are not automatically distributed across clusters, it is your responsibility to
  apply CiliumNetworkPolicy or NetworkPolicy in all clusters." A policy selects subjects only in the
  cluster it is applied to.
- **Peers span the mesh.** Same page: "by default policies automatically select endpoints from
  all the clusters unless it is explicitly specified. To restrict endpoint selection to the local
  cluster by default you can enable the option --policy-default-local-cluster via the ConfigMap option
  policy-default-local-cluster or the Helm value clustermesh.policyDefaultLocalCluster." A peer whose
  selector names ``io.cilium.k8s.policy.cluster`` keeps exactly that; any other endpoint peer matches
  every cluster, or only the policy's own cluster when ``policy_default_local_cluster``
  (pkg/clustermesh/types/option.go LocalClusterNameForPolicies: the local name only with the option,
  default false; pkg/k8s/apis/cilium.io/utils/utils.go addClusterFilterByDefault for CNP/CCNP peers, unless
  the selector has the key; pkg/k8s/network_policy.go parseNetworkPolicyPeer for NetworkPolicy peers,
  unless the podSelector names the key: isPodSelectorSelectingCluster).
- **The ``cluster`` entity is the local cluster** (pkg/policy/api/entity.go InitEntities: the entity's
  endpoint selector is ``k8s:io.cilium.k8s.policy.cluster=<local cluster name>``); ``all`` is every
  endpoint of the mesh.
- **DNS and Services are per cluster.** A pod resolves names with its own cluster's kube-dns; a
  Service selects its own cluster's pods, unless it is a global service: docs.cilium.io "Load-balancing
  & Service Discovery" (Documentation/network/clustermesh/services.rst): "defining a Kubernetes service
  with identical name and namespace in each cluster and adding the annotation service.cilium.io/global:
  "true" to declare it global. Cilium will automatically perform load-balancing to pods in both
  clusters."; with ``service.cilium.io/shared: "false"`` a cluster "expose[s] remote endpoint without
  sharing local endpoints".
- **Pod addresses.** ClusterMesh needs non-overlapping pod CIDRs: the n-th cluster's pods get the
  single-cluster addresses moved into 10.(244+n).0.0/16.
- **Envoy listeners** referenced by a policy resolve in the source's cluster.

Pure: no Pulumi, no lab import.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable, Mapping, Sequence

from .cluster import Cluster, PolicyInputError, Service, Workload, load_paths
from .rules import (
    Direction,
    EndpointPeer,
    EntityPeer,
    Peer,
    Policy,
    Rule,
    Target,
    World,
)
from .selectors import CLUSTER_KEY, cilium_labels
from .verdict import Probe, Verdict, evaluate

GLOBAL_ANNOTATION = "service.cilium.io/global"
SHARED_ANNOTATION = "service.cilium.io/shared"
# cluster.name: at most 32 characters matching ^([a-z0-9][-a-z0-9]*)?[a-z0-9]$ (v1.18.10
# pkg/clustermesh/types/types.go clusterNameMaxLength, clusterNameRegexStr, ValidateClusterName).
CLUSTER_NAME_RE = re.compile(r"^([a-z0-9][-a-z0-9]{0,30})?[a-z0-9]$")


def check_cluster_name(name: str) -> str:
    if not CLUSTER_NAME_RE.match(name or ""):
        raise PolicyInputError(f"cluster name {name!r} is not accepted; accepted: at most 32 lower case "
                               "alphanumerics and '-', starting and ending with an alphanumeric")
    return name


@dataclass(frozen=True, eq=False)
class MeshWorkload(Workload):
    """A workload of one cluster of the mesh (``labels`` include the cluster label)."""
    cluster: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}@{self.cluster}"

    @cached_property
    def cilium_labels(self) -> dict[str, str]:
        return {**cilium_labels(self.labels, self.namespace, self.namespace_labels, self.service_account),
                CLUSTER_KEY: self.cluster}


@dataclass(frozen=True, eq=False)
class MeshService(Service):
    """A Service of one cluster; ``backends``: the keys of the workloads it load-balances to (its own
    cluster's, plus every cluster's for a global service)."""
    cluster: str = ""
    is_global: bool = False
    backends: frozenset[str] = frozenset()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}@{self.cluster}"

    def selects(self, w: Workload) -> bool:
        return w.key in self.backends


@dataclass(eq=False)
class _InCluster(Peer):
    """``inner`` restricted to workloads of ``clusters`` (world targets pass through unchanged)."""
    where: str
    inner: Peer
    clusters: frozenset[str] | None

    def matches(self, target: Target) -> bool:
        if not isinstance(target, World) and self.clusters is not None and target.cluster not in self.clusters:
            return False
        return self.inner.matches(target)

    def near_miss(self, target: Target) -> str | None:
        if (not isinstance(target, World) and self.clusters is not None and target.cluster not in self.clusters
                and self.inner.matches(target)):
            return (f"{self.where}: matches {target.key}'s labels but selects endpoints of cluster "
                    f"{'/'.join(sorted(self.clusters))} only (the policy's own cluster when the selector "
                    f"names no {CLUSTER_KEY} and clustermesh.policyDefaultLocalCluster is true)")
        return self.inner.near_miss(target)


def _names_cluster(peer: EndpointPeer) -> bool:
    return peer.pods is not None and CLUSTER_KEY in peer.pods.keys()


def _scope_peer(peer: Peer, local: str, default_local: bool) -> Peer:
    if isinstance(peer, EndpointPeer):
        if _names_cluster(peer) or not default_local:
            return peer
        return _InCluster(peer.where, peer, frozenset({local}))
    if isinstance(peer, EntityPeer):
        if "all" in peer.entities:
            return peer
        # every other entity that stands for a workload is "cluster": the local cluster only
        return _InCluster(peer.where, peer, frozenset({local}))
    return peer  # CIDR and FQDN peers: never a Cilium-managed endpoint (rules.CIDRPeer)


def _scope_rules(rules: Iterable[Rule], local: str, default_local: bool) -> list[Rule]:
    return [Rule(r.where, None if r.peers is None else tuple(_scope_peer(p, local, default_local) for p in r.peers),
                 r.ports) for r in rules]


def _scope_policy(policy: Policy, local: str, default_local: bool) -> Policy:
    """The policy as applied in cluster ``local``: subjects of that cluster only, peers per the mesh rules."""
    directions = {d: Direction(policy.direction(d).isolates,
                               _scope_rules(policy.direction(d).allows, local, default_local),
                               _scope_rules(policy.direction(d).denies, local, default_local))
                  for d in ("egress", "ingress")}
    subject = _InCluster("", policy.subject, frozenset({local}))
    return Policy(f"{policy.ref}@{local}", subject, directions["egress"], directions["ingress"])


@dataclass(eq=False)
class ClusterView(Cluster):
    """The mesh as seen from one cluster: every cluster's workloads and policies, this cluster's
    Services (by ``ns/name``), kube-dns and Envoy listeners."""
    name: str = ""

    def workload(self, ref: str) -> Workload:
        """``ns/name@cluster``, ``name@cluster``, or ``ns/name`` / ``name`` when exactly one cluster has it."""
        if ref in self.workloads:
            return self.workloads[ref]
        base, at, cluster = ref.partition("@")
        found = [w for w in self.workloads.values()
                 if (not at or w.cluster == cluster)
                 and (f"{w.namespace}/{w.name}" == base if "/" in base else w.name == base)]
        if len(found) == 1:
            return found[0]
        hint = f"; candidates: {', '.join(w.key for w in found)}" if found else ""
        raise PolicyInputError(f"unknown workload {ref!r}{hint} (in a mesh: ns/name@cluster)")

    def evaluate_probe(self, probe: Probe) -> Verdict:
        """The verdict of ``probe`` in the source's cluster (see Mesh.evaluate)."""
        return self.mesh.evaluate(probe)[1]


@dataclass
class Mesh:
    """Clusters joined by ClusterMesh. ``views[name]``: the mesh seen from that cluster."""
    views: dict[str, ClusterView]
    policy_default_local_cluster: bool = False
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def from_objects(cls, clusters: Mapping[str, Iterable[dict]], *, policy_default_local_cluster: bool = False,
                     origins: Mapping[str, Mapping[int, str]] | None = None) -> "Mesh":
        """``clusters``: cluster name -> its objects (in order; the names are the Helm value
        cluster.name of each cluster). ``origins``: per cluster, each object's file (load_paths)."""
        if not clusters:
            raise PolicyInputError("a mesh needs at least one cluster")
        clusters = {check_cluster_name(n): list(objs) for n, objs in clusters.items()}
        built = {n: Cluster.from_objects(objs, origins=(origins or {}).get(n)) for n, objs in clusters.items()}
        global_services = {n: {_key(o): _annotation(o, SHARED_ANNOTATION, "true") == "true" for o in objs
                               if isinstance(o, dict) and o.get("kind") == "Service"
                               and _annotation(o, GLOBAL_ANNOTATION, "false") == "true"}
                           for n, objs in clusters.items()}
        workloads: dict[str, MeshWorkload] = {}
        for index, (name, c) in enumerate(built.items()):
            for w in c.workloads.values():
                ip = str(ipaddress.IPv4Address(w.ip) + index * 65536)
                mw = MeshWorkload(w.name, w.namespace, w.kind, {**w.labels, CLUSTER_KEY: name}, w.ports, ip,
                                  w.namespace_labels, w.service_account, w.builtin, cluster=name)
                workloads[mw.key] = mw
        ordered = dict(sorted(workloads.items(), key=lambda kv: (kv[1].namespace, kv[1].name, kv[1].cluster)))
        services = _services(built, ordered, global_services)
        policies = [_scope_policy(p, name, policy_default_local_cluster) for name, c in built.items() for p in c.policies]
        warnings = [f"cluster {name}: {w}" for name, c in built.items() for w in c.warnings]
        index: dict = {}
        mesh = cls({}, policy_default_local_cluster, warnings)
        for name, c in built.items():
            view = ClusterView(c.namespaces, ordered, services[name], policies, c.listeners, warnings, index, name=name)
            view.mesh = mesh
            mesh.views[name] = view
        return mesh

    @property
    def any_view(self) -> ClusterView:
        return next(iter(self.views.values()))

    def workload(self, ref: str) -> MeshWorkload:
        return self.any_view.workload(ref)

    def evaluate(self, probe: Probe) -> tuple[Probe, Verdict]:
        """The probe with its ids made ``ns/name@cluster``, and its verdict evaluated in the source's
        cluster (its DNS, its Services, its listeners)."""
        src = self.workload(probe.source)
        to = probe.to if probe.to.startswith("world:") else self.workload(probe.to).key
        probe = Probe(src.key, to, probe.port, probe.via, probe.protocol, probe.request, probe.service, probe.address)
        return probe, evaluate(self.views[src.cluster], probe)

    def all_pairs(self) -> list[tuple[Probe, Verdict]]:
        """Every ordered pair of distinct user workloads of the mesh, on every declared container port
        of the destination, by pod IP (verdict.all_pairs across clusters)."""
        users = [w for w in self.any_view.workloads.values() if not w.builtin]
        out = []
        for src in users:
            for dst in users:
                if dst is src:
                    continue
                for port, protocol in sorted({(p, proto) for _, p, proto in dst.ports}):
                    out.append(self.evaluate(Probe(src.key, dst.key, port, protocol=protocol)))
        return out

    def results(self, probes: Sequence[Probe] = ()) -> list[tuple[Probe, Verdict]]:
        return [self.evaluate(p) for p in probes] if probes else self.all_pairs()


def _annotation(obj: dict, key: str, default: str) -> str:
    return str(((obj.get("metadata") or {}).get("annotations") or {}).get(key, default)).lower()


def _key(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or 'default'}/{meta.get('name')}"


def _services(built: Mapping[str, Cluster], workloads: Mapping[str, MeshWorkload],
              global_services: Mapping[str, Mapping[str, bool]]) -> dict[str, dict[str, MeshService]]:
    """Per cluster, its Services keyed ``ns/name`` with their backends (global ones across clusters)."""
    by_cluster: dict[str, list[MeshWorkload]] = {}
    for w in workloads.values():
        by_cluster.setdefault(w.cluster, []).append(w)
    local = {(name, s.key): frozenset(w.key for w in by_cluster.get(name, ()) if Service.selects(s, w))
             for name, c in built.items() for s in c.services.values()}
    out: dict[str, dict[str, MeshService]] = {}
    for name, c in built.items():
        out[name] = {}
        for key, s in c.services.items():
            glob = s.key in global_services[name]
            backends = local[name, s.key]
            if glob:  # same name and namespace, global in each cluster: its own and every sharing cluster's
                backends = frozenset().union(backends, *(b for (n, k), b in local.items() if n != name and k == s.key
                                                         and global_services[n].get(k)))
            out[name][key] = MeshService(s.name, s.namespace, s.selector, s.ports, s.cluster_ip, s.builtin,
                                         cluster=name, is_global=glob, backends=backends)
    return out


def parse_cluster_arg(text: str) -> tuple[str, str]:
    """``NAME=PATH`` of ``verdicts --cluster``."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise PolicyInputError(f"--cluster {text!r}: expected NAME=PATH (e.g. --cluster ccp=ccp/)")
    return check_cluster_name(name), path


class ClusterObjects(dict):
    """A multi-cluster scenario's objects: cluster name -> objects, plus the Helm value
    clustermesh.policyDefaultLocalCluster the scenario's clusters run with (None: Cilium's default)."""
    policy_default_local_cluster: bool | None = None


def cli_results(args, scenario) -> tuple[ClusterView, list[tuple[Probe, Verdict]]]:
    """``verdicts --cluster NAME=PATH ... [--scenario NAME]``: every cluster's objects (a scenario's
    first, then the files), evaluated as one mesh. Returns a view (for the renderers) and the results."""
    if args.file:
        raise PolicyInputError("-f PATH and --cluster NAME=PATH do not combine: give each cluster's "
                               "files with --cluster NAME=PATH")
    extra, probes = scenario if scenario else (ClusterObjects(), ())
    if not isinstance(extra, Mapping):
        raise PolicyInputError(f"--cluster: scenario {args.scenario!r} is a single-cluster scenario; "
                               "accepted: a multi-cluster scenario (e.g. stars-mesh) or none")
    paths: dict[str, list[str]] = {}
    for text in args.cluster:
        name, path = parse_cluster_arg(text)
        paths.setdefault(name, []).append(path)
    objects = {n: list(objs) for n, objs in extra.items()}
    origins: dict[str, dict[int, str]] = {}
    for name, ps in paths.items():
        loaded, where = load_paths(ps)
        base = objects.setdefault(name, [])
        origins[name] = {i + len(base): f for i, f in where.items()}
        base += loaded
    local = args.policy_default_local_cluster
    if local is None:
        local = bool(getattr(extra, "policy_default_local_cluster", None))
    mesh = Mesh.from_objects(objects, policy_default_local_cluster=local, origins=origins)
    return mesh.any_view, mesh.results(probes)
