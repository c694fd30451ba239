"""Renderings of a result list ``[(Probe, Verdict), ...]``: a text grid (rows sources, columns
destinations, like cyclonus' truth tables) and JSON. ``FORMATS`` maps a format name to
``function(results, cluster) -> str``; more formats register there."""
from __future__ import annotations

import json
from collections import defaultdict
from typing import Callable, Sequence

from . import picture
from .cluster import Cluster
from .verdict import ALLOW, DNS_FAIL, DROP, L7_DENY, VERDICTS, Probe, Verdict

Results = Sequence[tuple[Probe, Verdict]]
SYMBOLS = {ALLOW: ".", DROP: "X", L7_DENY: "L", DNS_FAIL: "D"}
CELL_KEYS = ("from", "to", "port", "protocol", "via", "request", "verdict", "egress", "ingress", "why")


def workloads(results: Results, cluster: Cluster) -> list[str]:
    """The user's workloads plus any built-in a probe involves, sorted ``ns/name``."""
    keys = {w.key for w in cluster.workloads.values() if not w.builtin}
    keys |= {k for p, _ in results for k in (p.source, p.to) if k in cluster.workloads}
    return sorted(keys)


def cell(probe: Probe, verdict: Verdict) -> dict:
    """One JSON cell; ``"approximate": true`` only on a verdict a rule left out might change."""
    out = {"from": probe.source, "to": probe.to, "port": probe.port, "protocol": probe.protocol,
           "via": probe.via, "request": probe.request, "verdict": verdict.verdict,
           "egress": verdict.egress, "ingress": verdict.ingress, "why": list(verdict.why)}
    if verdict.approximate:
        out["approximate"] = True
    return out


def render_json(results: Results, cluster: Cluster) -> str:
    return json.dumps({"workloads": workloads(results, cluster),
                       "cells": [cell(p, v) for p, v in results]}, indent=2) + "\n"


def render_table(results: Results, cluster: Cluster) -> str:
    """Numbered rows (sources) and columns (destinations); a cell holds one symbol per probe of that
    pair, ports ascending; ``-`` on the diagonal and where nothing was probed."""
    rows = workloads(results, cluster)
    columns = rows + sorted({p.to for p, _ in results} - set(rows))
    number = {name: str(i) for i, name in enumerate(columns, 1)}
    grid: dict[tuple[str, str], list] = defaultdict(list)
    for p, v in results:
        grid[p.source, p.to].append(((p.port, p.protocol, p.via, p.request or ""), SYMBOLS[v.verdict]))
    cells = {k: "".join(s for _, s in sorted(v)) for k, v in grid.items()}
    widths = {c: max([len(number[c])] + [len(cells.get((r, c), "-")) for r in rows]) for c in columns}
    label = max(len(f"{number[r]} {r}") for r in rows) if rows else 0
    lines = [" " * label + "  " + "  ".join(number[c].ljust(widths[c]) for c in columns) if rows else "no workloads"]
    for r in rows:
        lines.append(f"{number[r]} {r}".ljust(label) + "  "
                     + "  ".join(cells.get((r, c), "-").ljust(widths[c]) for c in columns))
    counts = {v: sum(1 for _, x in results if x.verdict == v) for v in VERDICTS}
    lines += ["", "columns: " + "  ".join(f"{number[c]} {c}" for c in columns),
              "legend: " + "  ".join(f"{SYMBOLS[v]} {v}" for v in VERDICTS)
              + "  - self or not probed (one symbol per probe, ports ascending)",
              f"{len(results)} probes: " + ", ".join(f"{counts[v]} {v}" for v in VERDICTS)]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def render_explain(results: Results) -> str:
    """Each probe's verdict and numbered explanation chain."""
    out = []
    for p, v in results:
        sides = f"egress {v.egress}, ingress {v.ingress}" + (f", via listener {v.listener}" if v.listener else "")
        out.append(f"{p.id}: {v.verdict} ({sides})")
        out += [f"  {i}. {line}" for i, line in enumerate(v.why, 1)]
    return "\n".join(out) + "\n"


FORMATS: dict[str, Callable[[Results, Cluster], str]] = {"table": render_table, "json": render_json}


def _picture(name: str) -> Callable[[Results, Cluster], str]:
    """The picture formats (cilium_verdicts/picture.py) on the JSON contract's dict."""
    def fmt(results: Results, cluster: Cluster) -> str:
        return picture.FORMATS[name]({"workloads": workloads(results, cluster),
                               "cells": [cell(p, v) for p, v in results]}, "")
    return fmt


FORMATS.update({name: _picture(name) for name in ("svg", "html", "graph")})
