"""The program for every platform: settings first (fails before any resource), then the platform's
checks (model.platforms preflight: tools, the cluster), then its composition - stacks/lab.py (aws),
stacks/local.py (stacks/local_mesh.py for a ClusterMesh pack: two kind clusters; on aws
stacks/aws_mesh.py: both on the kind host), stacks/existing.py; on aws a fleet (edgeClusters > 1: N kind hosts behind one shared
proxy) is stacks/fleet.py - then the outputs, with ``platform`` recorded (a stack does not switch
platform: stacks/automation.py refuses it)."""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import pulumi

from model import mesh_aws
from model.platforms import PLATFORM_OUTPUT, Completed, PreflightError
from model.settings import Settings

from . import aws_mesh, existing, fleet, lab, local, local_mesh


def run_tool(argv: Sequence[str], timeout: float = 60) -> Completed:
    """Run a tool of the user's (kind, kubectl) for a preflight check; a tool that cannot start or
    hangs is an answer (non-zero), not a crash."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Completed(127, "", str(exc))
    return Completed(done.returncode, done.stdout, done.stderr)


@dataclass
class Tools:
    """How the program finds and runs the user's tools at program time (tests inject fakes)."""
    which: Callable[[str], str | None] = shutil.which
    run: Callable[[Sequence[str]], Completed] = field(default=run_tool)


def declare(settings: Settings, tools: Tools) -> dict[str, Any]:
    if settings.platform == "local":
        mesh = local_mesh.mesh_pack(settings) is not None  # two kind clusters joined by ClusterMesh
        outputs = (local_mesh if mesh else local).declare(settings, tools)
    elif settings.platform == "existing":
        outputs = existing.declare(settings, tools)
    elif mesh_aws.mesh_pack(settings) is not None:
        outputs = aws_mesh.declare(settings)   # both kind clusters of a ClusterMesh pack on the kind host
    elif settings.edge_clusters > 1:
        outputs = fleet.declare(settings)
    else:
        outputs = lab.declare(settings)
    return {PLATFORM_OUTPUT: settings.platform, **outputs}


def main(read_settings: Callable[[], Settings], export: Callable[[str, Any], None] = pulumi.export,
         tools: Tools | None = None):
    settings = read_settings()
    try:
        outputs = declare(settings, tools or Tools())
    except PreflightError as exc:
        # RunError: Pulumi prints the message alone, without a Python traceback.
        raise pulumi.RunError(str(exc)) from None
    for name, value in outputs.items():
        export(name, value)
