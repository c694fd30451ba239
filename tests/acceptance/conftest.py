"""Acceptance fixtures: a throw-away file backend, a passphrase and unique names per run.

The backend directory holds the only record of what the run created, so it is deleted only after
the stack was destroyed and removed; otherwise it is kept and the way to finish is printed.
"""
from __future__ import annotations

import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from stacks import automation as lab


@dataclass
class Acceptance:
    stack_name: str                 # acc-<hex>: unique per run, so runs never collide
    env_name: str                   # envName, the suffix of every AWS resource name (<= 20 chars)
    backend_dir: Path
    passphrase_file: Path
    env: dict[str, str]
    log: lab.EventLog = field(default_factory=lambda: lab.EventLog(keep=400, echo=print))
    last: lab.Verdict | None = None  # the last verification judged
    created: bool = False           # set once the stack exists in the backend
    removed: bool = False           # set once destroy + remove_stack succeeded


@pytest.fixture
def acceptance():
    token = secrets.token_hex(4)
    backend = Path(tempfile.mkdtemp(prefix="cilium-egress-lab-acceptance-"))
    passphrase_file = backend / "passphrase"
    passphrase_file.touch(mode=0o600)
    passphrase_file.write_text(secrets.token_urlsafe(24))  # never held in a variable: tracebacks show those
    ctx = Acceptance(f"acc-{token}", f"acc-{token}", backend, passphrase_file,
                     lab.workspace_env(backend, passphrase_file))
    yield ctx
    if ctx.removed or not ctx.created:
        shutil.rmtree(backend, ignore_errors=True)
    else:
        print(f"\nSTATE KEPT in {backend}: "
              + lab.manual_cleanup_hint(ctx.stack_name, ctx.env, passphrase_file))
