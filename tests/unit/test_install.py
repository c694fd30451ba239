"""`pip install .` in a fresh venv gives every command the README names, and cilium-verdicts works with
no lab module importable (issue 18). Slow (a real pip install from the package index, its cache
warm after the README's test command); one venv for the module."""
from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
LAB_PACKAGES = ("scenarios", "model", "components", "stacks", "guardrails")
SOURCES = ("pyproject.toml", "README.md", "cilium_verdicts", *LAB_PACKAGES)


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> pathlib.Path:
    """A fresh venv (the interpreter's own, no system site-packages) with `pip install .` of a copy of
    the sources (so the checkout gets no build litter)."""
    base = tmp_path_factory.mktemp("install")
    src = base / "src"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy(ROOT / name, src / name)
    env = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, timeout=120)
    done = subprocess.run([str(env / "bin" / "pip"), "install", "--disable-pip-version-check", "-q", str(src)],
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    return env


def readme_commands() -> set[str]:
    """Every command the README runs from the venv: `venv/bin/<command>` (python -m <module> too)."""
    text = (ROOT / "README.md").read_text()
    found = set(re.findall(r"venv/bin/(cilium-[a-z-]+)", text))
    found |= {f"python -m {m}" for m in re.findall(r"venv/bin/python -m ([a-z_.]+)", text)
              if not m.startswith(("pytest", "tests"))}
    return found


def test_the_readme_names_the_console_commands():
    assert {"cilium-verdicts", "cilium-lab", "cilium-lab-driver"} <= readme_commands()


@pytest.mark.parametrize("command", sorted(readme_commands()))
def test_every_readme_command_answers_help_from_a_fresh_venv(venv, tmp_path, command):
    argv = ([str(venv / "bin" / "python"), "-m", command.split()[-1]] if command.startswith("python -m")
            else [str(venv / "bin" / command)])
    done = subprocess.run([*argv, "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


def test_cilium_verdicts_evaluates_a_manifest_with_no_lab_module_importable(venv, tmp_path):
    """The lab's packages are removed from the venv: the evaluator needs none of them. Expected verdicts
    from the Kubernetes docs ("Default deny all ingress traffic": every pod of the namespace is isolated
    for ingress, so no connection to it is allowed; egress from it is not restricted)."""
    site = next((venv / "lib").glob("python3*/site-packages"))
    for name in LAB_PACKAGES:
        shutil.rmtree(site / name)
    manifest = tmp_path / "app.yaml"
    manifest.write_text("""\
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {containers: [{name: web, image: nginx, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: shop, labels: {app: client}}
spec: {containers: [{name: c, image: curl, ports: [{containerPort: 8080}]}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny-ingress, namespace: shop}
spec: {podSelector: {}, policyTypes: [Ingress]}
""")
    done = subprocess.run([str(venv / "bin" / "cilium-verdicts"), "-f", str(manifest), "--format", "json"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr

    cells = {(c["from"], c["to"], c["port"]): c["verdict"] for c in json.loads(done.stdout)["cells"]}
    assert cells == {("shop/client", "shop/web", 80): "drop", ("shop/web", "shop/client", 8080): "drop"}
    probe = subprocess.run([str(venv / "bin" / "python"), "-c", "import model"], cwd=tmp_path, capture_output=True,
                           text=True)
    assert probe.returncode != 0 and "No module named 'model'" in probe.stderr
    scenario = subprocess.run([str(venv / "bin" / "cilium-verdicts"), "--scenario", "hoot51"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
    assert scenario.returncode == 2 and "scenario packs" in scenario.stderr and not scenario.stdout
