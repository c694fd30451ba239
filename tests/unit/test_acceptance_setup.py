"""The acceptance suite's setup never shows the throw-away backend's passphrase, even when it
fails: pytest prints the arguments of every frame of a failing test (fixture values included),
so nothing the setup hands around may carry the passphrase itself - only the file that holds it."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from .harness import ROOT_DIR

FAILING_SETUP = textwrap.dedent('''
    import os
    import pytest
    from pulumi import automation as auto
    from stacks import automation as lab
    from tests.acceptance.conftest import acceptance  # noqa: F401 - the real fixture


    def test_setup_fails(acceptance, monkeypatch):
        with open(os.environ["LEAK_PROBE"], "w") as f:
            f.write(acceptance.passphrase_file.read_text())
        def broken(**kwargs):
            raise auto.CommandError(auto.CommandResult("pulumi stack select", "", "error: no such backend", 255))
        monkeypatch.setattr(auto, "create_or_select_stack", broken)
        ctx = acceptance
        lab.open_stack(ctx.stack_name, ctx.env, secrets_provider="passphrase")
''')


def test_a_failing_acceptance_setup_never_prints_the_passphrase(tmp_path):
    test = tmp_path / "test_setup_leak.py"
    test.write_text(FAILING_SETUP)
    probe = tmp_path / "passphrase-seen-by-the-test"
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--tb=long", "-l",
                          "--rootdir", str(tmp_path), str(test)], cwd=ROOT_DIR, capture_output=True, text=True,
                         env={**os.environ, "LEAK_PROBE": str(probe), "PYTHONPATH": str(ROOT_DIR)}, timeout=120)
    assert "1 failed" in run.stdout, run.stdout[-3000:] + run.stderr[-2000:]
    passphrase = probe.read_text()
    assert len(passphrase) >= 20
    assert passphrase not in run.stdout + run.stderr, "the passphrase appears in the test output"
    assert "PULUMI_CONFIG_PASSPHRASE_FILE" in run.stdout  # the file is named, its content is not
