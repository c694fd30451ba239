"""The Cilium reference data the schema tests read is vendored in the repository: unmodified
upstream copies (checked by git blob id), with their provenance and license, and the tests never
read ``../shared`` - a clone is self-contained."""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys

from tests import validation

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Upstream git blob ids (cilium/cilium at 6bf2fe83d2fc / 46793db68052, see tests/reference/cilium/README.md)
UPSTREAM_BLOBS = {
    "crds/ciliumnetworkpolicies.yaml": "be6a1022a6b66eb17e2fdd85074b0720a9978a1e",
    "crds/ciliumclusterwidenetworkpolicies.yaml": "64031cba7c0fe527f42920b09ca1c3167a652ab5",
    "crds/ciliumenvoyconfigs.yaml": "24befb326b84efed355ac5715cdad17b84b6ed06",
    "crds/ciliumclusterwideenvoyconfigs.yaml": "e42f8f23ed41e9ef672a5e5d97c860f2fdacfebb",
    "helm/values.yaml": "00cff8ce82239f978ecac3fa02a1805f94caff8c",
    "helm/values.schema.json": "28cff30e2be7ed974107049978732aa2506d328a",
}


def _git_blob(data: bytes) -> str:
    """What ``git hash-object`` prints for a file with these bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def test_vendored_reference_is_inside_the_repository_and_unmodified():
    assert ROOT in validation.REFERENCE.resolve().parents, validation.REFERENCE
    for rel, blob in UPSTREAM_BLOBS.items():
        path = validation.REFERENCE / rel
        assert path.is_file(), path
        assert _git_blob(path.read_bytes()) == blob, f"{rel} differs from the upstream copy"


def test_vendored_reference_notes_source_and_license():
    base = validation.REFERENCE.parent
    readme = (base / "README.md").read_text()
    for needle in ("https://github.com/cilium/cilium", "6bf2fe83d2fce50283b702d96c6190f7693dc224",
                   "46793db680529524069627dc956af5743ec0c78a", "Apache-2.0",
                   "pkg/k8s/apis/cilium.io/client/crds/v2/", "install/kubernetes/cilium/",
                   *UPSTREAM_BLOBS.values()):
        assert needle in readme, needle
    license_text = (base / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text


# Runs inside a copy of the repository that has no ../shared: which files does validation open?
_PROBE = r"""
import json, sys
opened = []
sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" else None)
from tests import validation
from model import helm, render
from model.settings import load_settings
result = {"outcome": "ok", "message": "", "errors": []}
try:
    validation.require_reference()
    settings = load_settings({"scenarios": "egress,mtls,hoot51,eks-retail,stars"}, resolve_operator_cidr=False)
    for obj in render.lab_objects(settings, render.PLACEHOLDER_ADDRESS):
        if obj["kind"].startswith("Cilium"):
            result["errors"] += validation.validate_cr(obj)
    result["errors"] += validation.validate_helm_values(helm.helm_values(settings))
except BaseException as exc:  # pytest's skip/fail outcomes are BaseExceptions
    result = {"outcome": type(exc).__name__, "message": str(exc), "errors": []}
result["opened"] = opened
print(json.dumps(result))
"""


def _clone(tmp_path: pathlib.Path) -> pathlib.Path:
    """The parts of the repository validation needs, in a directory with no ``shared`` beside it."""
    clone = tmp_path / "clone"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("cilium_verdicts", "scenarios", "model"):
        shutil.copytree(ROOT / package, clone / package, ignore=skip)
    shutil.copytree(ROOT / "tests", clone / "tests", ignore=skip)
    assert not (clone.parent / "shared").exists()
    return clone


def _probe(clone: pathlib.Path) -> dict:
    run = subprocess.run([sys.executable, "-c", _PROBE], cwd=clone, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PYTHONPATH": str(clone)})
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_schema_validation_needs_no_shared_directory(tmp_path):
    clone = _clone(tmp_path)
    result = _probe(clone)
    assert result["outcome"] == "ok", result["message"]
    assert result["errors"] == []
    reference = [p for p in result["opened"] if "reference" in p]
    assert reference, "validation read no reference data at all"
    assert all(pathlib.Path(p).resolve().is_relative_to(clone) for p in reference), reference
    assert not [p for p in result["opened"] if "shared" in pathlib.Path(p).parts], result["opened"]


def test_deleted_vendored_reference_fails_clearly_instead_of_skipping(tmp_path):
    clone = _clone(tmp_path)
    crd = clone / validation.REFERENCE.relative_to(ROOT) / "crds" / "ciliumenvoyconfigs.yaml"
    crd.unlink()
    result = _probe(clone)
    assert result["outcome"] == "Failed", result
    assert "ciliumenvoyconfigs.yaml" in result["message"] and "vendored" in result["message"]
