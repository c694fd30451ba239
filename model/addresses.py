"""How the lab reads a URL's host: a DNS name or a plain IPv4 address, one parser for every reader.

The settings check (model/settings.py: ``probeUrl``, ``controlUrl``, ``allowedDomains``,
``bootstrapDomains``) and the probe plan (model/probes.py: is the destination an address the
security group judges?) both call ``host_address``, so what the check accepts is what the probe
uses. curl and squid read a host the way a browser does (WHATWG URL "ends in a number", and glibc's
``inet_aton``): ``0177.0.0.1`` (octal), ``0x7f000001`` (hex), ``2130706433`` (one decimal number)
and ``127.1`` are all 127.0.0.1, while Python's ``ipaddress`` refuses them. So a host whose last
label is a number is an address, and only the canonical dotted-decimal spelling of one is accepted;
anything else that ends in a number is refused, saying which address curl would make of it.

Pure: no Pulumi import.
"""
from __future__ import annotations

import ipaddress
import re
import socket

from .proxy import FORBIDDEN_DESTINATIONS

_NUMBER = re.compile(r"[0-9]+|0x[0-9a-f]*", re.ASCII)
REFUSED = tuple(ipaddress.ip_network(n) for n in FORBIDDEN_DESTINATIONS)


def ends_in_a_number(host: str) -> bool:
    """WHATWG URL's "ends in a number": the last label (a trailing dot ignored) is all digits or a
    ``0x`` hex number; such a host is parsed as an IPv4 address, never looked up as a name."""
    last = host.lower().rstrip(".").rsplit(".", 1)[-1]
    return bool(_NUMBER.fullmatch(last))


def is_name(host: str) -> bool:
    """A DNS name, not an address: the last label has a letter and is no ``0x`` number."""
    last = host.lower().rstrip(".").rsplit(".", 1)[-1]
    return any(c.isalpha() for c in last) and not ends_in_a_number(host) and ":" not in host


def as_curl_reads_it(host: str) -> str | None:
    """The IPv4 address curl, squid and glibc make of ``host`` (``inet_aton``), or None."""
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except (OSError, ValueError, UnicodeError):
        return None


def host_address(host: str) -> ipaddress.IPv4Address | None:
    """None for a DNS name; the address for a canonical dotted-decimal IPv4 host; ValueError (saying
    why) for an IPv6 literal or any other host that a URL parser reads as an address."""
    if ":" in host:
        raise ValueError(f"{host!r} is an IPv6 address; the lab's hosts and security groups are IPv4 only")
    if not ends_in_a_number(host):
        return None
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        address = None
    if address is not None and str(address) == host:
        return address
    read = as_curl_reads_it(host)
    if read is None:
        raise ValueError(f"{host!r} ends in a number, so it is read as an IPv4 address, and it is not one")
    raise ValueError(f"{host!r} is the IPv4 address {read} spelt another way (curl and squid read it so); "
                     f"write it as {read}")


def refused_range(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """The range of model/proxy.py's refused destinations that holds ``address`` (an IPv4-mapped
    address judged as the IPv4 address it is, as squid does), or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return next((str(n) for n in REFUSED if n.version == address.version and address in n), None)
