"""Repository contracts: the model stays pure, CI runs the README's test command."""
from __future__ import annotations

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_model_imports_no_pulumi():
    for path in sorted((ROOT / "model").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0].startswith("pulumi") for n in names), path.name


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("Run the tests", 1)[1].split("```bash\n", 1)[1].split("\n```", 1)[0]
    test_cmd = block.split("&&")[-1].strip()
    assert re.fullmatch(r"python3 -m pytest -rs", test_cmd), test_cmd
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_cmd in ci.splitlines()
    assert "pip install -q -r requirements-dev.txt" in ci


def test_components_use_their_type_token_and_register_outputs():
    for path in sorted((ROOT / "components").glob("*.py")):
        text = path.read_text()
        for cls in re.findall(r"class (\w+)\(pulumi\.ComponentResource\)", text):
            assert re.search(rf'super\(\).__init__\("cilium-egress-lab:\w+:{cls}"', text), (path.name, cls)
            assert "self.register_outputs(" in text, path.name
