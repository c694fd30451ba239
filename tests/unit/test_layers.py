"""The architecture, kept true: one-way layers, no import circles, no import hidden in a function.

Layers, bottom-up (README "Architecture"); a module may import its own layer or any layer below:

    cilium_verdicts  the verdict evaluator (installable alone: its CLI is cilium-verdicts)
    scenarios        the scenario packs (workloads, stages, probes, the Cilium objects they apply)
    model            the lab model (settings, boot scripts, proxy, security groups, probes, cost, render)
    components       thin Pulumi ComponentResources over the model
    stacks           compositions and the automation API; __main__.py and guardrails/ on top

Imports are read from the source (ast), as import-linter reads them: ``from pkg import name`` is an
import of ``pkg.name`` when that is a module, else of ``pkg``.
"""
from __future__ import annotations

import ast
import pathlib
import shutil
from dataclasses import dataclass

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
LAYERS = ("cilium_verdicts", "scenarios", "model", "components", "stacks", "guardrails", "__main__")
RANK = {name: i for i, name in enumerate(LAYERS)}
# guardrails/ (the CrossGuard pack) reads the model but nothing imports it; it sits beside stacks.
RANK["guardrails"] = RANK["stacks"]


@dataclass(frozen=True)
class Import:
    source: str        # importing module
    target: str        # imported project module
    line: int
    in_function: bool


def project_modules(root: pathlib.Path) -> dict[str, pathlib.Path]:
    mods = {"__main__": root / "__main__.py"}
    for top in LAYERS[:-1]:
        for path in sorted((root / top).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            mods[".".join(parts)] = path
    return mods


def _resolve(name: str, mods: dict[str, pathlib.Path]) -> str | None:
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(name: str, path: pathlib.Path, mods: dict[str, pathlib.Path]) -> list[Import]:
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            targets: list[str] = []
            if isinstance(child, ast.Import):
                targets = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".") if package else []
                    parts = parts[:len(parts) - (child.level - 1)]
                    base = ".".join([*parts, *([base] if base else [])])
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in child.names]
            for t in targets:
                module = _resolve(t, mods)
                if module and module != name:
                    found.append(Import(name, module, child.lineno, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def layer(module: str) -> str:
    return module.split(".")[0]


def all_imports(root: pathlib.Path = ROOT) -> list[Import]:
    mods = project_modules(root)
    return [i for name, path in mods.items() for i in imports_of(name, path, mods)]


def upward(imports: list[Import]) -> list[str]:
    return [f"{i.source}:{i.line} imports {i.target} (layer {layer(i.target)} is above {layer(i.source)})"
            for i in imports if RANK[layer(i.target)] > RANK[layer(i.source)]]


def cycles(imports: list[Import]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for i in imports:
        graph.setdefault(i.source, set()).add(i.target)
        graph.setdefault(i.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


def test_no_module_imports_a_layer_above_it():
    assert upward(all_imports()) == []


def test_the_import_graph_has_no_circles():
    assert cycles(all_imports()) == []


def test_no_project_import_hides_inside_a_function():
    """A project import inside a function is how a cycle gets dodged; there is none."""
    assert [f"{i.source}:{i.line} imports {i.target}" for i in all_imports() if i.in_function] == []


def test_the_evaluator_imports_nothing_but_itself():
    assert sorted({i.target for i in all_imports() if layer(i.source) == "cilium_verdicts"
                   and layer(i.target) != "cilium_verdicts"}) == []


@pytest.mark.parametrize("bad", [
    ("cilium_verdicts/verdict.py", "from model import settings\n", "upward"),
    ("scenarios/base.py", "def f():\n    from model import probes\n", "upward"),
    ("model/network.py", "from stacks import lab\n", "upward"),
    ("cilium_verdicts/selectors.py", "from . import verdict\n", "cycle"),
    ("model/outcome.py", "def f():\n    from . import probes\n", "function"),
])
def test_the_checks_catch_a_violation(tmp_path, bad):
    """Each check fails on a tree with one bad import added (a copy of the real tree)."""

    for top in LAYERS[:-1]:
        shutil.copytree(ROOT / top, tmp_path / top, ignore=shutil.ignore_patterns("__pycache__", "*.yaml", "*.json"))
    shutil.copy(ROOT / "__main__.py", tmp_path / "__main__.py")
    path, line, kind = bad
    (tmp_path / path).write_text((tmp_path / path).read_text() + "\n" + line)
    imports = all_imports(tmp_path)
    assert {"upward": bool(upward(imports)), "cycle": bool(cycles(imports)),
            "function": any(i.in_function for i in imports)}[kind]
    assert not upward(all_imports()) and not cycles(all_imports())


def test_no_two_folders_share_a_name_for_different_things():
    """`policy/` (CrossGuard) and `model/policy/` (the evaluator) once did."""
    dirs = [p for p in ROOT.rglob("*") if p.is_dir() and not any(
        part.startswith(".") or part in ("venv", "__pycache__", "reference", "node_modules", "build") or part.endswith(".egg-info")
        for part in p.relative_to(ROOT).parts)]
    # code folders (a package or a folder of scripts) and top-level folders; data folders that mirror
    # each other on purpose (scenarios/seed_manifests/<pack>/allow-ui) are one thing in several packs
    dirs = [d for d in dirs if len(d.relative_to(ROOT).parts) == 1 or any(d.glob("*.py"))]
    names: dict[str, list[str]] = {}
    for d in dirs:
        names.setdefault(d.name, []).append(str(d.relative_to(ROOT)))
    # tests/unit/<area> mirrors the package it tests (tests/unit/scenarios tests scenarios/): same thing.
    shared = {n: ps for n, ps in names.items() if len(ps) > 1 and not (
        len(ps) == 2 and any(p == f"tests/unit/{n}" for p in ps) and n in ps)}
    assert shared == {}


def test_no_source_file_is_over_450_lines():
    """Rooms of a readable size: every module of the program (tests aside)."""
    long = {str(p.relative_to(ROOT)): n for p in project_modules(ROOT).values()
            if (n := len(p.read_text().splitlines())) > 450}
    assert long == {}
