"""Security-group rule sets for both hosts: the single definition of who may talk to whom.

Each function returns the rules of one direction of one group. ``LockableSecurityGroup`` turns
them into one ``aws.vpc.SecurityGroup{Ingress,Egress}Rule`` per entry (named after ``Rule.key``),
the data-plane lab turns the very same egress rules into nftables (``to_nft``), and the stack
exports them as the effective rule set.

Peers (``cidr``) are passed through untouched, so a deferred value (a Pulumi ``Output``) can stand
in for an address that is only known once an Elastic IP exists; the *set* of rules never depends
on an address, only on the settings, so the resource graph is fixed before any address is known.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Iterable

from scenarios.mtls import BACKEND_PORT

from . import mesh_ports
from .network import ANYWHERE, KUBE_API_PORT, SSH_PORT
from .settings import Settings

ALL = "-1"  # AWS: every protocol, every port


@dataclass(frozen=True)
class Rule:
    key: str          # stable identity: the resource-name suffix, e.g. "egress-dns-udp"
    protocol: str     # "-1" (all), "tcp" or "udp"
    cidr: Any         # IPv4 CIDR (str), or a deferred value standing in for one
    from_port: int | None = None
    to_port: int | None = None
    description: str = ""

    def as_dict(self) -> dict[str, Any]:
        # Shallow on purpose: ``cidr`` may be a deferred value that must not be deep-copied.
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _port(key: str, proto: str, port: int, cidr: Any, why: str) -> Rule:
    return Rule(key, proto, cidr, port, port, why)


def kind_ingress(settings: Settings) -> list[Rule]:
    """SSH and the Kubernetes API, from the operator only."""
    op = settings.operator_cidr
    # a two-cluster pack (model/mesh_aws.py, model/mesh_ports.py): each further kind cluster's API port, from the operator only
    extra = [_port(f"ingress-kube-api-{c}", "tcp", port, op, f"Kubernetes API of kind cluster {c} from the operator")
             for c, port in mesh_ports.settings_api_ports(settings).items() if port != KUBE_API_PORT]
    return [
        _port("ingress-ssh", "tcp", SSH_PORT, op, "SSH from the operator"),
        _port("ingress-kube-api", "tcp", KUBE_API_PORT, op, "Kubernetes API from the operator"),
        *extra,
    ]


def kind_egress_base(settings: Settings, proxy_cidr: Any) -> list[Rule]:  # noqa: ARG001
    """Present in both lock states and from the very first boot: the kind host fetches all it
    installs through the proxy (model/userdata.py), so this path must exist before it boots."""
    return [Rule("egress-proxy", ALL, proxy_cidr, description="all protocols to the proxy host")]


def kind_egress_toggle(settings: Settings, proxy_cidr: Any) -> list[Rule]:
    """The rule the lock changes, created after Cilium and the test pods are up
    (``EgressLockArgs.after``). Unlocked: everything. Locked: nothing beyond the proxy.

    Locked means locked: no world rule at all. The host's DNS goes to the VPC resolver and NTP to
    the Amazon Time Sync Service (169.254.169.123); security groups do not filter traffic to either
    (AWS VPC user guide, "Security group rules": "Amazon DNS server", "Amazon Time Sync Service"), so
    the old tcp/udp 53 and udp 123 world rules were only a way out to *any* server on those ports.

    ``egress-internet`` exists in both states and is *narrowed in place* (everything -> the proxy
    port on the proxy /32, which ``egress-proxy`` already covers) rather than deleted: Pulumi runs
    pure deletes only at the very end of an update, after the probes, so a deleted allow-all rule
    would still be in force while the locked matrix is probed. An in-place update happens in
    dependency order, before the probes. (The provider updates a rule's protocol, ports and CIDR
    with ModifySecurityGroupRules and replaces it only when the *kind* of peer changes, e.g.
    cidr_ipv4 -> a security group: terraform-provider-aws
    internal/service/ec2/vpc_security_group_ingress_rule.go, Update/ModifyPlan.)
    """
    if not settings.restrict_egress:
        return [Rule("egress-internet", ALL, ANYWHERE, description="everything (egress unlocked)")]
    return [_port("egress-internet", "tcp", settings.proxy_port, proxy_cidr,
                  "the HTTP proxy (egress locked; within egress-proxy, kept so locking is an in-place update)")]


def kind_egress(settings: Settings, proxy_cidr: Any) -> list[Rule]:
    """The kind host's effective egress: unlocked = everything (the proxy rule is subsumed);
    locked = the proxy's EIP/32 only."""
    return kind_egress_base(settings, proxy_cidr) + kind_egress_toggle(settings, proxy_cidr)


def proxy_ingress(settings: Settings, kind_cidr: Any) -> list[Rule]:
    """SSH from the operator; the proxy port (and the mTLS backend, when enabled) from the kind
    host only."""
    rules = [
        _port("ingress-ssh", "tcp", SSH_PORT, settings.operator_cidr, "SSH from the operator"),
        _port("ingress-proxy", "tcp", settings.proxy_port, kind_cidr, "HTTP proxy from the kind host"),
    ]
    if settings.needs("mtls-backend"):
        rules.append(_port("ingress-mtls", "tcp", BACKEND_PORT, kind_cidr, "mTLS backend from the kind host"))
    return rules


def proxy_egress(settings: Settings) -> list[Rule]:  # noqa: ARG001 - same signature as the others
    return [Rule("egress-all", ALL, ANYWHERE, description="everything (the proxy is the way out)")]


def allows(rules: Iterable[Rule], protocol: str, dest_ip: str, port: int) -> bool:
    """Would a packet to ``dest_ip:port`` pass these (resolved) rules? Security groups are allow-lists."""
    import ipaddress
    for r in rules:
        if r.protocol not in (ALL, protocol):
            continue
        if ipaddress.IPv4Address(dest_ip) not in ipaddress.IPv4Network(r.cidr):
            continue
        if r.protocol == ALL or (r.from_port is not None and r.from_port <= port <= r.to_port):
            return True
    return False


def to_nft(rules: Iterable[Rule], table: str = "sg", hook: str = "postrouting",
           oif: str | None = None) -> str:
    """Render resolved egress rules as an nftables ruleset (a stand-in for the security group).

    Stateful like a security group: replies to allowed flows pass, anything not allowed is dropped.
    ``oif`` limits the filter to the uplink (the instance's ENI in the lab).
    """
    lines = [f"table inet {table} {{", "  chain egress {",
             f"    type filter hook {hook} priority filter; policy accept;"]
    scope = f'oifname "{oif}" ' if oif else ""
    lines.append(f"    {scope}ct state established,related accept")
    for r in rules:
        match = f"ip daddr {r.cidr}"
        if r.protocol != ALL:
            ports = str(r.from_port) if r.from_port == r.to_port else f"{r.from_port}-{r.to_port}"
            match += f" {r.protocol} dport {ports}"
        lines.append(f"    {scope}{match} accept comment \"{r.key}\"")
    lines.append(f"    {scope}drop comment \"not allowed by the security group\"")
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"
