"""How Cilium's toFQDNs / DNS-rule ``matchPattern`` / ``matchName`` match a host name.

Cilium 1.18 (pkg/fqdn/matchpattern/matchpattern.go; docs.cilium.io "DNS based" policy):
- a pattern that is exactly ``*`` matches every name;
- otherwise each ``*`` stands for any run of DNS-name characters *within one label*
  (``*.roche.com`` matches ``www.roche.com``, not ``roche.com`` nor ``a.b.roche.com``);
  ``**.`` is no exception: consecutive stars are each that same one-label wildcard
  (the multi-level ``**.`` prefix arrived in Cilium 1.19, cilium/cilium#43420);
- a pattern without ``*`` is an exact name (rendered as ``matchName``).
Matching ignores case and a trailing dot.
"""
from __future__ import annotations

import re
from typing import Iterable


def is_pattern(domain: str) -> bool:
    return "*" in domain


def to_regex(pattern: str) -> re.Pattern[str]:
    pattern = pattern.strip().lower().rstrip(".")
    if pattern == "*":
        return re.compile(r"^.+$")
    body = re.escape(pattern).replace(r"\*", "[-a-z0-9_]*")
    return re.compile(f"^{body}$")


def matches(pattern: str, host: str) -> bool:
    return bool(to_regex(pattern).match(host.strip().lower().rstrip(".")))


def matches_any(patterns: Iterable[str], host: str) -> bool:
    return any(matches(p, host) for p in patterns)


def to_posix_regex(pattern: str) -> str:
    """The same match as ``to_regex`` as a POSIX extended regex (squid's ``dstdom_regex``), for a
    pattern the settings already validated (ASCII letters, digits, '-', '.', and '*')."""
    pattern = pattern.strip().lower().rstrip(".")
    if pattern == "*":
        return "^.+$"
    return "^" + pattern.replace(".", r"\.").replace("*", "[-a-z0-9_]*") + "$"
