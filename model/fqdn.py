"""How Cilium's toFQDNs ``matchPattern`` / ``matchName`` match a host name.

In a pattern, ``*`` stands for any run of DNS-name characters *within one label*
(``*.roche.com`` matches ``www.roche.com``, not ``roche.com`` nor ``a.b.roche.com``);
a pattern without ``*`` is an exact name (rendered as ``matchName``).
"""
from __future__ import annotations

import re
from typing import Iterable


def is_pattern(domain: str) -> bool:
    return "*" in domain


def to_regex(pattern: str) -> re.Pattern[str]:
    body = re.escape(pattern.lower().rstrip(".")).replace(r"\*", "[-a-z0-9_]*")
    return re.compile(f"^{body}$")


def matches(pattern: str, host: str) -> bool:
    return bool(to_regex(pattern).match(host.lower().rstrip(".")))


def matches_any(patterns: Iterable[str], host: str) -> bool:
    return any(matches(p, host) for p in patterns)
