"""Config value parsers: each takes a raw value (a string as Pulumi's config returns it, or an
already-typed value from tests and the render CLI) and returns it typed, or raises ValueError (a reason
when there is more to say than "not accepted"); ``shown`` cuts a bad value for a message. Pure: no
Pulumi import. model.settings maps each config key to one of these and collects every error."""
from __future__ import annotations

import ipaddress
import json
import re
from typing import Any, Callable
from urllib.parse import urlsplit

from scenarios import PACKS

from .addresses import host_address, is_name, refused_range
from .kind_releases import KIND_VERSIONS
from .platforms import PLATFORMS

ECHO_LIMIT = 60  # characters of a bad value's repr an error message shows
# The longest value any key accepts, in characters (a list or map: its JSON text). The longest real
# ones (a URL, a list of domains) are far shorter; a 100 KB probeUrl would become a probe command
# beyond the kernel's argument limit (E2BIG) on the kind host.
MAX_VALUE_CHARS = 2048


def shown(value: Any, limit: int = ECHO_LIMIT) -> str:
    """``repr(value)`` for an error message, cut to ``limit`` characters with "…" (a pasted
    certificate or a runaway list must not drown the message)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    close = text[-1] if text[-1] in "'\"])}" else ""  # keep the closing quote or bracket
    return text[:limit - 1 - len(close)] + "…" + close


def shown_name(name: Any, limit: int = ECHO_LIMIT) -> str:
    """A key name as given (no quotes), cut like ``shown``."""
    text = str(name)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _shown_reason(text: str, limit: int = 2 * ECHO_LIMIT) -> str:
    """A parser's reason (e.g. ipaddress's "Expected 4 octets in '…'"): quoted values cut like
    ``shown``, the whole reason at most ``limit`` characters."""
    text = re.sub(r"'([^']{%d,})'" % ECHO_LIMIT, lambda m: shown(m.group(1)), text)
    return text if len(text) <= limit else text[:limit - 1] + "…"



# ---------------------------------------------------------------- parsers (value -> typed, or ValueError)
# Every pattern is matched in full and ASCII-only (``re.fullmatch`` + ``re.ASCII``, and the text must be
# ASCII before it is lower-cased): "$" would let a trailing newline through, "\d" non-ASCII digits,
# and str.lower() maps e.g. the Kelvin sign to "k".
_DNS_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = rf"(?:{_DNS_LABEL}\.)+{_DNS_LABEL}"
_WILDCARD_DOMAIN = rf"(?:\*\.)?{_DOMAIN}"


def _full(pattern: str, v: Any, *, lower: bool = False) -> str:
    """``v`` if it is an ASCII string matching ``pattern`` entirely (lower-cased first if asked)."""
    if not isinstance(v, str) or not v.isascii():
        raise ValueError
    text = v.lower() if lower else v
    if not re.fullmatch(pattern, text, re.ASCII):
        raise ValueError
    return text


def url_host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _url(v: Any) -> str:
    """An http(s) URL whose every part is checked: scheme, host (a DNS name), port (1-65535), no
    user info, path and query of printable ASCII without spaces."""
    _full(r"[!-~]+", v)  # printable ASCII, no whitespace or control characters anywhere
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https") or "*" in v:
        raise ValueError
    if parts.username is not None or parts.password is not None:
        raise ValueError("no user information (user:password@) in the URL")
    try:
        port = parts.port  # raises for a port outside 0-65535 or not a number
    except ValueError:
        raise ValueError(f"the port must be a number from 1 to 65535 (got {parts.netloc.rsplit(':', 1)[-1]!r})") from None
    if port == 0:
        raise ValueError("the port must be a number from 1 to 65535 (got '0')")
    host = url_host(v)
    address = host_address(host)  # ValueError for an IPv6 literal or an address spelt another way
    if address is None:
        _full(_DOMAIN, host)
    elif refused_range(address):
        raise ValueError(f"{address} is in {refused_range(address)}, a destination the proxy refuses "
                         "(loopback, metadata, private, ...)")
    return v


def _cn(v: Any) -> str:
    text = _full(r"[A-Za-z0-9 .-]{1,64}", v)
    if text.strip() != text:
        raise ValueError
    return text


def _dns_name(v: Any) -> str:
    name = _full(_DOMAIN, v, lower=True)
    if not is_name(name):
        raise ValueError(f"{shown(v)} is an address, not a DNS name (its last label has no letter)")
    return name


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    raise ValueError


def _int(lo: int, hi: int) -> Callable[[Any], int]:
    def parse(v: Any) -> int:
        if isinstance(v, bool):
            raise ValueError
        if isinstance(v, str):
            v = int(_full(r"-?[0-9]+", v))
        if not isinstance(v, int) or not lo <= v <= hi:
            raise ValueError
        return v
    return parse


def _env_name(v: Any) -> str:
    return _full(r"[a-z0-9-]{1,20}", v)


# Where an operator's connection to the hosts' public addresses cannot come from (RFC 1918, loopback,
# link-local incl. instance metadata, carrier-grade NAT, "this network", multicast/reserved):
# a rule for them would never match and hides a mistake.
_NOT_OPERATOR = tuple(ipaddress.IPv4Network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16", "100.64.0.0/10",
    "0.0.0.0/8", "224.0.0.0/3"))
OPERATOR_MIN_PREFIX = 16


def _operator_cidr(v: Any) -> str:
    text = _full(r"auto|[0-9./]+", v)
    if text == "auto":
        return text
    net = ipaddress.IPv4Network(text, strict=True)  # AddressValueError/ValueError both ValueError
    if net.prefixlen < OPERATOR_MIN_PREFIX:
        raise ValueError(f"/{net.prefixlen} opens SSH and the API to {net.num_addresses:,} addresses; "
                         f"use /{OPERATOR_MIN_PREFIX} or narrower")
    clash = next((n for n in _NOT_OPERATOR if net.overlaps(n)), None)
    if clash is not None:
        raise ValueError(f"{net} is in {clash}, not a public address")
    return str(net)


def _domain_list(pattern: str, what: str) -> Callable[[Any], tuple[str, ...]]:
    def parse(v: Any) -> tuple[str, ...]:
        if isinstance(v, str):
            if v != v.strip():
                raise ValueError("surrounding whitespace")
            v = json.loads(v) if v.startswith("[") else [p.strip() for p in v.split(",")]
        if not isinstance(v, (list, tuple)) or not v:
            raise ValueError
        out: list[str] = []
        for item in v:
            try:
                name = _full(pattern, item, lower=True)
            except ValueError:
                raise ValueError(f"{shown(item)} is not {what}") from None
            if len(name) > 253:
                raise ValueError(f"{shown(item)} is longer than 253 characters")
            if pattern != _NAME and not is_name(name):
                raise ValueError(f"{shown(item)} is an address, not a DNS name (its last label has no letter): "
                                 "the proxy would CONNECT to it by address")
            if name in out:
                raise ValueError(f"{shown(item)} is listed twice")
            out.append(name)
        return tuple(out)
    return parse


_domains = _domain_list(_WILDCARD_DOMAIN, "a DNS name or '*.'-wildcard pattern")


def _ami_id(v: Any) -> str:
    return _full(r"auto|ami-(?:[0-9a-f]{8}|[0-9a-f]{17})", v)


_NAME = r"[a-z0-9][a-z0-9-]{0,62}"


def _scenario_list(v: Any) -> tuple[str, ...]:
    names = _domain_list(_NAME, f"a scenario (accepted: {', '.join(PACKS)})")(v)
    unknown = [n for n in names if n not in PACKS]
    if unknown:
        raise ValueError(f"{shown(unknown[0])} is not a scenario")
    return names


def _stage_map(v: Any) -> tuple[tuple[str, str], ...]:
    if isinstance(v, str):
        if v != v.strip():
            raise ValueError("surrounding whitespace")
        v = json.loads(v) if v else {}
    if not isinstance(v, dict):
        raise ValueError("expected a map such as {\"hoot51\": \"deny-sleep-egress\"}")
    return tuple(sorted((_full(_NAME, k), _full(_NAME, s)) for k, s in v.items()))


def _instance_type(v: Any) -> str:
    return _full(r"[a-z][a-z0-9-]*\.[a-z0-9]+", v)


def _version(prefix_v: bool) -> Callable[[Any], str]:
    def parse(v: Any) -> str:
        bare = _full(r"v?[0-9]+\.[0-9]+\.[0-9]+", v).lstrip("v")
        return f"v{bare}" if prefix_v else bare
    return parse


def _kind_version(v: Any) -> str:
    version = _version(prefix_v=True)(v)
    if version not in KIND_VERSIONS:
        raise ValueError(f"{version} is not a release the lab emulates and tests")
    return version


def _platform(v: Any) -> str:
    if v not in PLATFORMS:
        raise ValueError
    return v


def _path(v: Any) -> str:
    path = _full(r"[^\x00-\x1f]{0,4096}", v)
    if path != path.strip():
        raise ValueError("surrounding whitespace")
    return path


def _context(v: Any) -> str:
    return _full(r"[A-Za-z0-9@:_./-]{0,253}", v)



def _size(value: Any) -> int:
    """A value's length in characters: a string's own, a list's or map's JSON text."""
    if isinstance(value, str):
        return len(value)
    try:
        return len(json.dumps(value, default=str))
    except (ValueError, TypeError, RecursionError):
        return MAX_VALUE_CHARS + 1


def _parse_value(parse: Callable[[Any], Any], value: Any) -> Any:
    """``parse(value)`` behind the limits every key shares: at most MAX_VALUE_CHARS, and nesting that
    would exhaust the recursion limit (``[[[[...``) is a ValueError, never a RecursionError."""
    if _size(value) > MAX_VALUE_CHARS:
        raise ValueError(f"{_size(value):,} characters, longer than the limit of {MAX_VALUE_CHARS:,}")
    try:
        return parse(value)
    except RecursionError:
        raise ValueError("nested too deeply") from None


