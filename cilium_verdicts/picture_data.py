"""The connectivity picture's data, shared by its three views (picture_matrix: the matrix SVG,
picture_graph: the graph SVG, picture_page: one self-contained HTML page; picture: the formats).

Input is the contract of ``python -m model verdicts`` (issue 14)::

    {"workloads": ["ns/name", ...],
     "cells": [{"from": "ns/name", "to": "ns/name" | "world:HOST", "port": 80, "protocol": "TCP",
                "via": "pod-ip" | ..., "request": "GET /headers" | None,
                "verdict": "allow" | "drop" | "l7-deny" | "dns-fail",
                "egress": "...", "ingress": "...", "why": ["..."],
                "observed": "..."}]}          # "observed" only in on-cluster runs

A cell whose ``observed`` differs from its ``verdict`` is a mismatch and is marked everywhere.

Markup: drawsvg builds the SVG element tree (ids, markers, ``<title>`` children, text escaping);
jinja2 with autoescape builds the HTML page. drawsvg writes attribute values *as given* (it does
not escape them), so every attribute that can carry user text goes through :func:`_a` here.
"""
from __future__ import annotations

import importlib.util
import sys
from collections import Counter, defaultdict
from types import ModuleType


def lazy_module(name: str) -> ModuleType:
    """``name`` imported on first attribute access (importlib.util.LazyLoader): the table and JSON
    formats never pay for the drawing libraries' imports."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


VERDICT_ORDER = ("allow", "drop", "l7-deny", "dns-fail")
# Light green and dark red stay apart for deuteranopes too (lightness; tests/unit/verdicts/test_picture.py
# simulates deuteranopia with Machado et al. 2009); glyphs and hatching say the verdict without colour.
VERDICT_COLOURS = {"allow": "#3fb86a", "drop": "#b3202a", "l7-deny": "#f2a007", "dns-fail": "#7b3fa8"}
VERDICT_LABELS = {"allow": "allow", "drop": "drop", "l7-deny": "L7 deny (403)", "dns-fail": "DNS fail"}
VERDICT_GLYPHS = {"allow": "\u2713", "drop": "\u2715", "l7-deny": "\u2298", "dns-fail": "?"}  # ✓ ✕ ⊘ ?
VERDICT_INK = {"allow": "#102a18", "drop": "#ffffff", "l7-deny": "#2b1d00", "dns-fail": "#ffffff"}
# hatching over the colour (none for allow): drop diagonal, l7-deny dots, dns-fail horizontal lines
VERDICT_HATCH = {"drop": "diagonal", "l7-deny": "dots", "dns-fail": "horizontal"}
NOT_PROBED = "#d5d9de"
SELF_PAIR = "#eceef1"
MISMATCH_STROKE = "#111111"
NAMESPACE_PALETTE = ("#4e79a7", "#59a5b0", "#9c755f", "#b07aa1", "#e07b39", "#7f7f7f",
                     "#3b5a8a", "#a0cbe8", "#c9a227", "#6b4e9b")
WORLD_GROUP = "world"
FONT = "DejaVu Sans, Verdana, Segoe UI, Arial, Helvetica, sans-serif"
GRAPH_MAX_WORKLOADS = 12  # the page adds the graph view up to this many workloads


_ATTRIBUTE_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
                                    "\n": "&#10;", "\t": "&#9;"})


def _a(value) -> str:
    """An attribute value, escaped for a double-quoted XML/HTML attribute (drawsvg does not)."""
    # xml.sax.saxutils.escape with these entities, without its import (urllib, http, email, ssl: ~50 ms)
    return str(value).translate(_ATTRIBUTE_ESCAPES)


def _text_width(text: str, size: float) -> float:
    """Rough width of ``text`` in a sans-serif font (layout only: labels get some slack)."""
    return len(text) * size * 0.62


# ---------------------------------------------------------------------------------------------
# The data: rows, columns, groups, probes per pair, counts (shared by the three views)
# ---------------------------------------------------------------------------------------------

def split_endpoint(endpoint: str) -> tuple[str, str]:
    """``"ns/name"`` -> ``("ns", "name")``; ``"world:HOST"`` -> ``("world", "HOST")``."""
    if "/" in endpoint and not endpoint.startswith(f"{WORLD_GROUP}:"):
        ns, name = endpoint.split("/", 1)
        return ns, name
    if ":" in endpoint:
        group, name = endpoint.split(":", 1)
        return group, name
    return "", endpoint


def has_observed(cell: dict) -> bool:
    """On-cluster runs add ``observed``; a null one counts as absent."""
    return cell.get("observed") is not None


def is_mismatch(cell: dict) -> bool:
    return has_observed(cell) and cell["observed"] != cell["verdict"]


def probe_key(cell: dict) -> tuple:
    """Order of a pair's sub-cells: port, then request, then protocol and path of the probe."""
    return (int(cell["port"]), cell.get("request") or "", cell.get("protocol") or "", cell.get("via") or "")


def _grouped(endpoints: list[str], world_last: bool) -> list[tuple[str, list[str]]]:
    """Endpoints grouped by namespace, groups in order of first appearance, world:* last."""
    groups: dict[str, list[str]] = {}
    world: list[str] = []
    for endpoint in endpoints:
        group, _ = split_endpoint(endpoint)
        if world_last and endpoint.startswith(f"{WORLD_GROUP}:"):
            if endpoint not in world:
                world.append(endpoint)
            continue
        members = groups.setdefault(group, [])
        if endpoint not in members:
            members.append(endpoint)
    out = list(groups.items())
    if world:
        out.append((WORLD_GROUP, sorted(world)))
    return out


class Picture:
    """What the three views draw, computed once from a result dict."""

    def __init__(self, result: dict):
        if not isinstance(result, dict) or not isinstance(result.get("cells", []), list):
            raise ValueError("result: expected {'workloads': [...], 'cells': [...]}")
        self.cells: list[dict] = list(result.get("cells") or [])
        for i, cell in enumerate(self.cells):
            missing = [k for k in ("from", "to", "port", "verdict") if k not in cell]
            if missing:
                raise ValueError(f"cells[{i}]: missing {', '.join(missing)}")
            if not isinstance(cell["port"], int) or isinstance(cell["port"], bool):
                raise ValueError(f"cells[{i}]: port {cell['port']!r} is not accepted; accepted: an integer")
            if cell["verdict"] not in VERDICT_COLOURS:
                raise ValueError(f"cells[{i}]: verdict {cell['verdict']!r} is not accepted; "
                                 f"accepted: {', '.join(VERDICT_ORDER)}")
        workloads = list(result.get("workloads") or [])
        sources = workloads + [c["from"] for c in self.cells]
        destinations = workloads + [c["to"] for c in self.cells]
        self.workloads = list(dict.fromkeys(workloads + [c["from"] for c in self.cells]))
        self.row_groups = _grouped(sources, world_last=True)
        self.col_groups = _grouped(destinations, world_last=True)
        self.rows = [e for _, members in self.row_groups for e in members]
        self.cols = [e for _, members in self.col_groups for e in members]
        self.pairs: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, cell in enumerate(self.cells):
            self.pairs[(cell["from"], cell["to"])].append(i)
        for indices in self.pairs.values():
            indices.sort(key=lambda i: probe_key(self.cells[i]))
        self.counts = Counter(c["verdict"] for c in self.cells)
        self.mismatches = sum(1 for c in self.cells if is_mismatch(c))
        self.on_cluster = any(has_observed(c) for c in self.cells)
        self.not_probed = sum(1 for r in self.rows for c in self.cols
                              if r != c and (r, c) not in self.pairs)
        namespaces = list(dict.fromkeys(g for g, _ in self.row_groups + self.col_groups if g != WORLD_GROUP))
        self.ns_colour = {ns: NAMESPACE_PALETTE[i % len(NAMESPACE_PALETTE)] for i, ns in enumerate(namespaces)}
        self.ns_colour[WORLD_GROUP] = "#555555"
        self.max_probes = max((len(v) for v in self.pairs.values()), default=1)
        self.repeats = repeats(self.cells)
        self.group_sizes: dict[str, int] = {}  # a graph by namespace: workloads per ``ns/*`` node

    def summary(self, i: int) -> str:
        """summary() of cell ``i``, telling identical probes apart."""
        return summary(self.cells[i]) + repeat_text(self.repeats.get(i))

    def allowed_pairs(self) -> dict[tuple[str, str], list[int]]:
        """(from, to) -> indices of the allowed probes, for pairs with at least one."""
        out = {}
        for pair, indices in self.pairs.items():
            allowed = [i for i in indices if self.cells[i]["verdict"] == "allow"]
            if allowed:
                out[pair] = allowed
        return out


def summary(cell: dict) -> str:
    """One line for a probe: what was dialled, the verdict, and a mismatch if any."""
    request = f" {cell['request']}" if cell.get("request") else ""
    line = (f"{cell['from']} \u2192 {cell['to']} :{cell['port']}/{cell.get('protocol') or 'TCP'}"
            f"{request} via {cell.get('via') or '?'}: {cell['verdict']}")
    if has_observed(cell):
        line += (f" (observed {cell['observed']} \u2014 MISMATCH)" if is_mismatch(cell)
                 else f" (observed {cell['observed']})")
    return line


def _probe_label(cell: dict, repeat: tuple[int, int] | None = None) -> str:
    request = cell.get("request") or ""
    method = request.split(" ", 1)[0] if request else ""
    return f"{cell['port']}{' ' + method if method else ''}{f' #{repeat[0]}' if repeat else ''}"


def repeats(cells: list[dict]) -> dict[int, tuple[int, int]]:
    """Identical probes (same pair, port, protocol, request and via: e.g. eks-retail's catalog ->
    catalog-mysql before and after ``kubectl rollout restart``): cell index -> (n, of), in input order."""
    seen: dict[tuple, list[int]] = defaultdict(list)
    for i, c in enumerate(cells):
        seen[(c["from"], c["to"], c["port"], c.get("protocol"), c.get("request"), c.get("via"))].append(i)
    return {i: (n, len(group)) for group in seen.values() if len(group) > 1 for n, i in enumerate(group, 1)}


def repeat_text(repeat: tuple[int, int] | None) -> str:
    return f" [identical probe #{repeat[0]} of {repeat[1]}, in probe order]" if repeat else ""


def _probe_signature(cell: dict) -> str:
    """How a sub-cell is named in the key: port/protocol, request, path."""
    request = f" {cell['request']}" if cell.get("request") else ""
    return f"{cell['port']}/{cell.get('protocol') or 'TCP'}{request} via {cell.get('via') or '?'}"


def _r(value: float) -> float:
    return round(value, 1)


