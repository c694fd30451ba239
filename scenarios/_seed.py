"""The seeds' policy manifests: the one copy in the repository.

Each policy a seed applies is a YAML file ``seed_manifests/<pack>/<key>.yaml`` beside this module
(``<pack>`` is the pack's NAME; a ``/`` in a key is a sub-folder). The file holds the object the pack
applies: the seed's text, with any adaptation the pack makes written into it and stated in its
header comment, which also names the seed and the sentence or step that applies it. The packs build
their stages from these files, and the evaluator tests (tests/unit/verdicts/test_docs_scenarios.py,
test_impl_hoot51.py) take their policy objects from the packs: nothing copies a seed manifest again.

The files are read from the source tree (no packaging step: the repository runs from its directory).
Pure: no Pulumi, no cluster.
"""
from __future__ import annotations

import pathlib
from typing import Callable, Iterable

import yaml

from .base import Stage

MANIFESTS = pathlib.Path(__file__).resolve().with_name("seed_manifests")


def path(pack: str, key: str) -> pathlib.Path:
    """The file of one seed manifest."""
    return MANIFESTS / pack / f"{key}.yaml"


def manifest(pack: str, key: str, namespace: str | None = None) -> dict:
    """One seed policy object, freshly parsed. ``namespace`` is what ``kubectl apply -n NS`` adds to
    a manifest that names none (the seed applies the same file in several namespaces)."""
    file = path(pack, key)
    if not file.is_file():
        raise KeyError(f"no seed manifest {pack}/{key} ({file})")
    obj = yaml.safe_load(file.read_text(encoding="utf-8"))
    if namespace is not None:
        obj["metadata"].setdefault("namespace", namespace)
    return obj


def stage_names(steps: Iterable[tuple[str, str, tuple[str, ...]]]) -> tuple[str, ...]:
    """The names of a pack's ``(name, seed step, policy keys)`` stages, in order."""
    return tuple(name for name, _, _ in steps)


def staged(steps: Iterable[tuple[str, str, tuple[str, ...]]], policy: Callable[[str], dict]) -> list[Stage]:
    """A pack's stages from ``(name, seed step, policy keys)``: each stage holds every policy in force
    at that step, freshly parsed by the pack's ``policy(key)``."""
    return [Stage(name=name, step=step, objects=tuple(policy(k) for k in keys)) for name, step, keys in steps]


def keys(pack: str) -> list[str]:
    """Every seed manifest of a pack, as ``manifest`` keys (sorted)."""
    base = MANIFESTS / pack
    return sorted(p.relative_to(base).with_suffix("").as_posix() for p in base.rglob("*.yaml"))
