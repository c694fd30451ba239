"""Look up the operator's public IPv4 for ``operatorCidr: auto`` (once, at program start).

Kept apart from ``settings`` so tests inject a fake and never touch the network.
"""
from __future__ import annotations

import urllib.request

CHECKIP_URL = "https://checkip.amazonaws.com"


def lookup_public_ipv4(timeout: float = 5.0, url: str = CHECKIP_URL) -> str:
    """Return the caller's public IPv4 as text; raises on timeout or a non-200 answer."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - fixed https URL
        return resp.read(64).decode("ascii", "replace").strip()
