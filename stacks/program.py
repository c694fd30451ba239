"""The program: settings first (fails before any resource), then the composition they ask for, then
its outputs. One cluster is stacks/lab.py; a fleet (edgeClusters > 1: N kind hosts behind one shared
proxy) is stacks/fleet.py, which reuses lab's per-scenario wiring."""
from __future__ import annotations

from typing import Any, Callable

import pulumi

from model.settings import Settings

from . import fleet, lab


def declare(settings: Settings) -> dict[str, Any]:
    """Every resource of the composition the settings select; the stack outputs (name -> value)."""
    if settings.edge_clusters > 1:
        return fleet.declare(settings)
    return lab.declare(settings)


def main(read_settings: Callable[[], Settings], export: Callable[[str, Any], None] = pulumi.export):
    """The whole program: settings first (fails before any resource), then resources, then outputs."""
    settings = read_settings()
    for name, value in declare(settings).items():
        export(name, value)
