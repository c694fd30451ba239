"""The HTTP forward proxy's configuration (squid), used by the proxy host and the data-plane lab.

Cilium's Envoy tunnels *every* redirected port with HTTP CONNECT (``tunneling_config``), so the
proxy must allow CONNECT to each port the policy redirects (80 as well as 443). Debian/Ubuntu's
stock squid.conf only allows CONNECT to 443 (``SSL_ports``) and would answer port-80 tunnels with
403, which reaches the pod as a reset (curl exit 35). Only the listed clients may use the proxy.

The proxy enforces the allow-list itself, so a pod that uses it explicitly (``curl -x``) - one
no CiliumNetworkPolicy selects, such as test-deny or kube-system - gets no further than the policy
would let it (DESIGN.md §5):
- never to loopback, link-local (instance metadata 169.254.169.254), private (RFC 1918: the VPC
  and anything peered with it), carrier-grade NAT or reserved addresses - checked on the address,
  also when a name resolves there;
- by *name* only to ``allowedDomains`` (with Cilium's pattern semantics, cilium_verdicts.fqdn) and to the
  kind host's own bootstrap domains (``bootstrapDomains``: apt, kind, kubectl, images; each with
  every name below it). Envoy's listener CONNECTs to the TLS SNI name (model.cilium), so TLS is
  checked by name;
- by *address* only for plain HTTP on port 80 (Envoy's fallback chain has no name to send, it
  tunnels to the original destination address; the CiliumNetworkPolicy already decided it).
"""
from __future__ import annotations

from typing import Iterable

from cilium_verdicts.fqdn import to_posix_regex
from scenarios.cilium import REDIRECTED_PORTS

PLAIN_HTTP_PORT = 80
# Destinations the proxy never connects to, whatever name resolves there: the ones that reach the
# proxy host itself, the VPC or the cloud's internal services - "this network", loopback,
# link-local (169.254.169.254, the metadata service), private (RFC 1918, the VPC), shared address
# space (RFC 6598), multicast and the reserved 240/4; IPv6 ULA, link-local and multicast, and the
# IPv6 forms that lead back to those: ``::/96`` (the unspecified ``::``, which Linux delivers to the
# host itself, loopback ``::1`` and the deprecated IPv4-compatible ``::a.b.c.d``, RFC 4291 2.5.5.1),
# the NAT64 prefixes ``64:ff9b::/96`` (RFC 6052) and ``64:ff9b:1::/48`` (RFC 8215), through which a
# NAT64 gateway reaches e.g. the metadata address as ``64:ff9b::a9fe:a9fe``. A subset of the IANA
# special-purpose registries (RFC 6890), not all of them: documentation and benchmarking ranges
# (192.0.2.0/24, 198.18.0.0/15, ...) are not public destinations either, but are left to squid's DNS
# (the data-plane lab's origins live in 198.18.0.0/15).
#
# Two squid facts shape this list (squid 5.7, Debian; tests/dataplane/test_proxy_ranges_dataplane.py):
# - squid holds every IPv4 address as IPv4-mapped IPv6 (``::ffff:a.b.c.d``) and matches a mapped
#   destination as the IPv4 address it is, so the IPv4 ranges here refuse ``::ffff:127.0.0.1`` too;
#   ``::ffff:0:0/96`` itself in a ``dst`` ACL would match *every* IPv4 destination.
# - entries of one ``dst`` ACL that overlap are silently dropped (its splay tree keeps the first of
#   two "equal" ranges): ``::1`` before ``::/96`` leaves ``::`` and ``::127.0.0.1`` allowed. So no
#   two entries may overlap (``squid_conf`` refuses such a list).
FORBIDDEN_DESTINATIONS = (
    "127.0.0.0/8", "169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
    "0.0.0.0/8", "224.0.0.0/3", "::/96", "64:ff9b::/96", "64:ff9b:1::/48", "fc00::/7", "fe80::/10",
    "ff00::/8")
# IPv4-mapped IPv6: what squid stores IPv4 in (see above); never an entry of its own.
IPV4_MAPPED = "::ffff:0:0/96"


def check_forbidden(forbidden: Iterable[str]) -> list[str]:
    """``forbidden`` as squid must get it: each a network, none overlapping another, none inside the
    IPv4-mapped range; a ValueError names the offending pair."""
    import ipaddress
    nets = [ipaddress.ip_network(n, strict=True) for n in forbidden]
    mapped = ipaddress.ip_network(IPV4_MAPPED)
    for i, a in enumerate(nets):
        if a.version == 6 and a.overlaps(mapped):
            raise ValueError(f"{a} overlaps the IPv4-mapped range {mapped}, which squid matches against every "
                             "IPv4 destination; list the IPv4 ranges instead")
        for b in nets[i + 1:]:
            if a.version == b.version and a.overlaps(b):
                raise ValueError(f"{a} and {b} overlap: squid would silently drop the second from the ACL")
    return [str(n) for n in nets]


def squid_conf(port: int, clients: Iterable[str], allowed_domains: Iterable[str],
               bootstrap_domains: Iterable[str] = (), connect_ports: Iterable[int] = REDIRECTED_PORTS,
               *, access_log: str = "/var/log/squid/access.log",
               cache_log: str = "/var/log/squid/cache.log",
               pid_file: str = "/run/squid.pid", listen: str = "",
               forbidden: Iterable[str] = FORBIDDEN_DESTINATIONS, extra: Iterable[str] = ()) -> str:
    """A minimal squid.conf: forward proxy on ``port`` for ``clients`` only; CONNECT to
    ``connect_ports`` and plain HTTP on port 80; by name only to ``allowed_domains`` (Cilium
    patterns) and ``bootstrap_domains`` (and below); by address only for port 80, never to
    ``forbidden`` addresses; one native-format access-log line per request
    (``... TCP_TUNNEL/200 ... CONNECT 198.18.0.10:443 ...``, ``TCP_DENIED/403`` when refused)."""
    clients, allowed = list(clients), list(allowed_domains)
    if not clients:
        raise ValueError("squid_conf needs at least one client CIDR")
    if not allowed:
        raise ValueError("squid_conf needs at least one allowed domain")
    ports = " ".join(str(p) for p in sorted(set(connect_ports)))
    forbidden = check_forbidden(forbidden)
    bootstrap = " ".join(f".{d}" for d in bootstrap_domains)  # ".x": x and every name below it
    lines = [
        "# Generated by cilium-egress-lab (model/proxy.py). Do not edit by hand.",
        f"http_port {listen + ':' if listen else ''}{port}",
        f"acl lab_clients src {' '.join(clients)}",
        f"acl tunnel_ports port {ports}",
        f"acl plain_port port {PLAIN_HTTP_PORT}",
        "acl CONNECT method CONNECT",
        f"acl forbidden_dst dst {' '.join(forbidden)}",
        # -n: never a reverse lookup of an address target (it would be matched by its PTR name)
        f"acl allowed_names dstdom_regex -n -i {' '.join(to_posix_regex(d) for d in allowed)}",
        *([f"acl bootstrap_names dstdomain -n {bootstrap}"] if bootstrap else []),
        r"acl address_target dstdom_regex -n ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$",
        "http_access deny !lab_clients",
        "http_access deny CONNECT !tunnel_ports",
        "http_access deny !CONNECT !plain_port",
        "http_access deny forbidden_dst",
        "http_access allow allowed_names",
        *(["http_access allow bootstrap_names"] if bootstrap else []),
        "http_access allow address_target plain_port",
        "http_access deny all",
        "cache deny all",
        "logformat lab %ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt",
        f"access_log stdio:{access_log} lab",
        f"cache_log {cache_log}",
        f"pid_filename {pid_file}",
        "shutdown_lifetime 1 seconds",
        "visible_hostname cilium-egress-lab-proxy",
        *extra,
    ]
    return "\n".join(lines) + "\n"


def connect_targets(access_log_text: str) -> list[str]:
    """The ``host:port`` targets of the CONNECT lines in a squid access log written by ``squid_conf``."""
    out = []
    for line in access_log_text.splitlines():
        fields = line.split()
        if "CONNECT" in fields:
            i = fields.index("CONNECT")
            if i + 1 < len(fields):
                out.append(fields[i + 1])
    return out
