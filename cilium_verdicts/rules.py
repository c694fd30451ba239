"""The policy model shared by NetworkPolicy and CiliumNetworkPolicy/CCNP once parsed.

A Policy selects subject workloads and has, per direction, whether it isolates (puts the subject into
default deny), its allow rules and its deny rules. A Rule pairs peers (who is on the other side) with
port rules (which ports, with optional L7: HTTP, DNS or an Envoy listener). ``None`` for peers or
ports means "every peer" / "every port and protocol".
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Union

from . import fqdn
from .l7 import HTTPRule
from .selectors import NAMESPACE_KEY, Selector
from .workload import Workload

DIRECTIONS = ("egress", "ingress")
ALL_PROTOCOLS = frozenset({"TCP", "UDP", "SCTP"})


@dataclass(frozen=True)
class World:
    """A destination outside the cluster: ``address`` dialled, ``name`` looked up (None for an IP
    literal), ``learned``: Cilium's DNS proxy saw and allowed the lookup, so toFQDNs knows the IP."""
    address: str
    name: str | None = None
    learned: bool = False

    @property
    def key(self) -> str:
        return f"world:{self.name or self.address}"


Target = Union[Workload, World]


class Peer:
    """One entry of from/to: ``where`` locates it in the policy (e.g. ``to[0]``)."""
    where: str

    def matches(self, target: Target) -> bool:
        raise NotImplementedError

    def near_miss(self, target: Target) -> str | None:
        """Why a peer that looks like it should match does not (None: nothing to say)."""
        return None


@dataclass(eq=False)
class EndpointPeer(Peer):
    """Pods chosen by labels. ``pods`` applies to pod labels (NetworkPolicy) or Cilium endpoint
    labels (``cilium``), ``namespaces`` to namespace labels; ``scope`` confines the peer to one
    namespace (None: all namespaces). Results are memoised per workload."""
    where: str
    pods: Selector | None
    namespaces: Selector | None = None
    scope: str | None = None
    cilium: bool = False
    _cache: dict = field(default_factory=dict, repr=False)

    def matches(self, target: Target) -> bool:
        if isinstance(target, World) or target.host_network:  # a hostNetwork pod is no endpoint
            return False
        hit = self._cache.get(target.key)
        if hit is None:
            hit = self._cache[target.key] = (
                (self.scope is None or target.namespace == self.scope)
                and (self.namespaces is None or self.namespaces.matches(target.namespace_labels))
                and self._pods_match(target))
        return hit

    def _pods_match(self, w: Workload) -> bool:
        return self.pods is None or self.pods.matches(w.cilium_labels if self.cilium else w.labels)

    def near_miss(self, target: Target) -> str | None:
        if not isinstance(target, World) and target.host_network:
            return (f"{self.where}: {target.key} runs in the host network namespace: it is no Cilium endpoint, "
                    "selectors never match it (it is the host or remote-node entity)")
        if (isinstance(target, World) or self.scope is None or target.namespace == self.scope
                or self.pods is None or self.pods.empty or not self._pods_match(target)):
            return None
        if self.cilium:
            return (f"{self.where}: {self.pods.text()} matches {target.key}'s labels but, without "
                    f"{NAMESPACE_KEY} in the selector, only selects pods in namespace {self.scope}")
        return (f"{self.where}: podSelector {self.pods.text()} matches {target.key}'s labels but, without "
                f"a namespaceSelector, only selects pods in namespace {self.scope}")


@dataclass
class EntityPeer(Peer):
    """Cilium entities (docs.cilium.io "Entities based"; pkg/policy/api/entity.go): ``all`` is
    everything, ``world`` everything outside the cluster, ``cluster`` every endpoint of the cluster
    (all namespaces, kube-system included). host, remote-node, kube-apiserver, ingress, init, health,
    unmanaged and none stand for no workload and no world address of this model. A hostNetwork pod
    is no endpoint: its traffic carries the node's identity, ``host`` on its own node and
    ``remote-node`` elsewhere (docs.cilium.io "Entities based"), both part of ``cluster``; placement is
    not modelled, so either entity matches it."""
    where: str
    entities: tuple[str, ...]

    def matches(self, target: Target) -> bool:
        if isinstance(target, World):
            wanted = {"all", "world"}
        elif target.host_network:
            wanted = {"all", "cluster", "host", "remote-node"}
        else:
            wanted = {"all", "cluster"}
        return bool(wanted & set(self.entities))


@dataclass
class CIDRPeer(Peer):
    """ipBlock / toCIDR / toCIDRSet / fromCIDR(Set): addresses outside the cluster only. Cilium never
    matches pod IPs with CIDR rules (cilium/cilium#9209; docs.cilium.io "IP/CIDR based": CIDR rules
    do not apply when both sides are Cilium-managed)."""
    where: str
    blocks: tuple[tuple[ipaddress.IPv4Network, tuple[ipaddress.IPv4Network, ...]], ...]

    def _contains(self, address: str) -> str | None:
        ip = ipaddress.ip_address(address)
        for net, excepts in self.blocks:
            if ip in net and not any(ip in e for e in excepts):
                return str(net)
        return None

    def matches(self, target: Target) -> bool:
        return isinstance(target, World) and self._contains(target.address) is not None

    def near_miss(self, target: Target) -> str | None:
        if isinstance(target, World):
            return None
        net = self._contains(target.ip)
        return net and (f"{self.where}: {net} contains {target.key}'s IP {target.ip}, but Cilium never "
                        "matches pod IPs with CIDR rules (cilium#9209)")


@dataclass
class CIDRGroupPeer(CIDRPeer):
    """toCIDRSet / fromCIDRSet entry naming CiliumCIDRGroup objects (``cidrGroupRef`` or
    ``cidrGroupSelector``) instead of a cidr: the groups' ``spec.externalCIDRs`` minus ``except``.
    ``blocks`` is filled once every object is read (Cluster); a group that is not in the input
    contributes nothing (a warning names it)."""
    ref: str | None = None
    selector: Selector | None = None
    excepts: tuple = ()


@dataclass
class FQDNPeer(Peer):
    """toFQDNs: a world name whose IPs Cilium learned through its DNS proxy (docs.cilium.io "DNS
    based": IPs come only from DNS answers the proxy saw, so a DNS rule with ``rules.dns`` is needed)."""
    where: str
    patterns: tuple[str, ...]

    def _names(self, target: Target) -> bool:
        return isinstance(target, World) and target.name is not None and fqdn.matches_any(self.patterns, target.name)

    def matches(self, target: Target) -> bool:
        return self._names(target) and target.learned

    def near_miss(self, target: Target) -> str | None:
        if isinstance(target, World) and target.name is None:
            return f"{self.where}: {target.address} is dialled as an IP literal; toFQDNs only matches looked-up names"
        if self._names(target) and not target.learned:
            return (f"{self.where}: {'/'.join(self.patterns)} matches {target.name}, but Cilium never learned "
                    "its IPs: no egress rule with rules.dns proxied the lookup")
        return None


@dataclass(frozen=True)
class PortSpec:
    """One port: number, name or None (all ports); ``end_port`` makes a range; ``protocols`` it
    applies to. A name resolves to the destination pod's container port of that name and protocol
    (NetworkPolicyPort API reference: "a named port on a pod"; Cilium PortProtocol: "a name in
    the form of http")."""
    port: int | str | None
    end_port: int | None
    protocols: frozenset[str]
    skipped: str | None = None  # why Cilium drops this port (it then matches nothing)

    def matches(self, port: int, protocol: str, dest_ports) -> bool:
        if protocol not in self.protocols or self.skipped:
            return False
        if self.port is None:
            return True
        if isinstance(self.port, str):  # named port: the destination pod's container port of that name
            return any(n == self.port and p == port and proto == protocol for n, p, proto in dest_ports or ())
        return self.port <= port <= (self.end_port or self.port)

    def text(self) -> str:
        port = "*" if self.port is None else f"{self.port}-{self.end_port}" if self.end_port else str(self.port)
        return f"{port}/{'|'.join(sorted(self.protocols))}"


@dataclass(frozen=True)
class PortRule:
    """toPorts entry (NetworkPolicy ``ports`` become L4-only port rules)."""
    where: str
    specs: tuple[PortSpec, ...] | None
    http: tuple[HTTPRule, ...] | None = None
    dns: tuple[str, ...] | None = None
    listener: tuple[str, str, str, str] | None = None  # (kind, namespace, config name, listener name)
    left_out: tuple[str, ...] = ()  # rules.http entries this model cannot evaluate (they could only allow more)

    def matches(self, port: int, protocol: str, dest_ports) -> bool:
        return self.specs is None or any(s.matches(port, protocol, dest_ports) for s in self.specs)


@dataclass
class Rule:
    """One ingress/egress (deny) rule: ``where`` e.g. ``egress[0]``; peers and ports (None = all)."""
    where: str
    peers: tuple[Peer, ...] | None
    ports: tuple[PortRule, ...] | None

    def match(self, target: Target, port: int, protocol: str, dest_ports) -> tuple[Peer | None, PortRule | None] | None:
        """The (peer, port rule) through which this rule matches, or None."""
        peer = None
        if self.peers is not None:
            peer = next((p for p in self.peers if p.matches(target)), None)
            if peer is None:
                return None
        if self.ports is None:
            return peer, None
        rule = next((r for r in self.ports if r.matches(port, protocol, dest_ports)), None)
        return None if rule is None else (peer, rule)

    def label(self, peer: Peer | None, port_rule: PortRule | None) -> str:
        parts = [self.where] + [x.where for x in (peer, port_rule) if x is not None and x.where]
        return ".".join(parts)


@dataclass
class Direction:
    """``ignored``: rules with a valid field this model does not evaluate, as (label, is a deny rule);
    they are left out, and the verdicts they might change are marked approximate."""
    isolates: bool
    allows: list[Rule] = field(default_factory=list)
    denies: list[Rule] = field(default_factory=list)
    ignored: list[tuple[str, bool]] = field(default_factory=list)


@dataclass
class Policy:
    """A parsed policy (one per CNP ``specs`` entry). ``subject`` selects the workloads it applies to."""
    ref: str
    subject: EndpointPeer
    egress: Direction
    ingress: Direction

    def direction(self, name: str) -> Direction:
        return self.egress if name == "egress" else self.ingress
