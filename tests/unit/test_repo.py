"""Repository contracts: the model stays pure, CI runs the README's test command."""
from __future__ import annotations

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_model_imports_no_pulumi():
    for path in sorted([*(ROOT / "model").glob("*.py"), *(ROOT / "scenarios").glob("*.py"), *(ROOT / "cilium_verdicts").glob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0].startswith("pulumi") for n in names), path.name


def _readme_command(heading: str) -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split(heading, 1)[1].split("```bash\n", 1)[1].split("\n```", 1)[0].strip()


def test_ci_runs_the_readme_test_command():
    """.ci/run runs exactly the README's test command, which needs nothing but the distribution's
    python3 (a venv, no system-wide pip install: PEP 668 refuses that on Debian/Ubuntu)."""
    test_cmd = _readme_command("**Run the tests.**")
    assert test_cmd.startswith("python3 -m venv venv && venv/bin/pip install -r requirements-dev.txt"), test_cmd
    assert test_cmd.endswith("venv/bin/python -m pytest -rs"), test_cmd
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_cmd in ci.splitlines()
    assert "pip install" not in ci.replace(test_cmd, "")  # nothing installed behind the README's back


def test_the_run_command_uses_a_venv_and_a_generated_passphrase_file():
    run_cmd = _readme_command("**Run the lab.**")
    assert run_cmd.startswith("python3 -m venv venv && venv/bin/pip install -r requirements.txt")
    assert "PULUMI_CONFIG_PASSPHRASE_FILE" in run_cmd and "secrets.token_urlsafe" in run_cmd
    assert "PULUMI_CONFIG_PASSPHRASE=" not in run_cmd and run_cmd.endswith("pulumi up")


def test_components_use_their_type_token_and_register_outputs():
    for path in sorted((ROOT / "components").glob("*.py")):
        text = path.read_text()
        for cls in re.findall(r"class (\w+)\(pulumi\.ComponentResource\)", text):
            assert re.search(rf'super\(\).__init__\("cilium-egress-lab:\w+:{cls}"', text), (path.name, cls)
            assert "self.register_outputs(" in text, path.name


def test_the_policy_pack_runs_in_the_programs_venv():
    """guardrails/ needs pulumi-policy from requirements.txt (tests/unit/test_policy_pack.py skips without
    it outside CI, and fails in CI)."""
    import tomllib
    assert "pulumi-policy==1.21.0" in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert (ROOT / "guardrails" / "PulumiPolicy.yaml").is_file() and (ROOT / "guardrails" / "__main__.py").is_file()


# Files the README's commands write into the working directory (the repository): `... > FILE`.
_FENCE = re.compile(r"^```(\w*)\n(.*?)\n```$", re.S | re.M)  # every fenced block, in order
_WRITTEN = re.compile(r"(?:^|\s)>\s*([A-Za-z0-9_][A-Za-z0-9_.-]*)(?=\s|$)", re.M)
SECRET_FILES = ("lab.kubeconfig", "lab.yaml", "lab.key")


def test_files_the_readme_writes_are_ignored_by_git():
    """What the README tells the user to write (a kubeconfig with the client key, the SSH key, the
    rendered manifests with secrets) and a state passphrase file pointed into the repository never
    end up in a commit: `git check-ignore` (the real git, on this checkout's .gitignore) says so."""
    import shutil
    import subprocess
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        import pytest
        pytest.skip("not a git checkout")
    blocks = [b for lang, b in _FENCE.findall((ROOT / "README.md").read_text()) if lang in ("", "bash", "sh", "console")]
    written = {f for block in blocks for f in _WRITTEN.findall(block)}
    assert set(SECRET_FILES) <= written, written  # the README still writes them
    passphrase = ("cilium-egress-lab.passphrase", ".cilium-egress-lab.passphrase", "state.passphrase")
    paths = [*sorted(written), *passphrase, "sub/dir/lab.kubeconfig"]
    done = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "--no-index", *paths],
                          capture_output=True, text=True)
    ignored = set(done.stdout.split())
    assert [p for p in paths if p not in ignored] == []
    # and nothing the repository needs is swallowed by those patterns
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-ci", "--exclude-standard"],
                             capture_output=True, text=True).stdout.split()
    assert tracked == []
