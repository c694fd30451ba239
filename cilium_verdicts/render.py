"""Renderings of a result list ``[(Probe, Verdict), ...]``: a text grid (rows sources, columns
destinations, like cyclonus' truth tables) and JSON. ``FORMATS`` maps a format name to
``function(results, cluster) -> str``; more formats register there."""
from __future__ import annotations

import json
from collections import defaultdict
from typing import Callable, Sequence

from . import picture
from .classes import Evaluator, _ip_pattern
from .cluster import Cluster, PolicyInputError
from .verdict import ALLOW, DNS_FAIL, DROP, L7_DENY, VERDICTS, Probe, Verdict, evaluate

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


def render_json(results: Results, cluster: Cluster, pretty: bool = False) -> str:
    """The JSON contract, compact (one line) unless ``pretty``."""
    return dumps({"workloads": workloads(results, cluster), "cells": [cell(p, v) for p, v in results]}, pretty)


def dumps(doc, pretty: bool = False) -> str:
    """JSON text plus a newline: indented when ``pretty``, else compact (no spaces)."""
    if pretty:
        return json.dumps(doc, indent=2) + "\n"
    return json.dumps(doc, separators=(",", ":")) + "\n"


_COMPACT = json.JSONEncoder(separators=(",", ":")).encode  # json.dumps(..., separators) without a new encoder per call


def render_pairs_json(cluster: Cluster) -> str:
    """``render_json(all_pairs(cluster), cluster)`` (compact), byte for byte, written without building
    a Probe, a Verdict or a dict per cell: each class pair's cell (cilium_verdicts/classes.py) is dumped
    once as a %-template with the stand-in names and IPs as slots, then filled per member pair."""
    ev = Evaluator(cluster)
    users = [w for w in cluster.workloads.values() if not w.builtin]
    ports = {w.key: sorted({(p, proto) for _, p, proto in w.ports}) for w in users}
    number = {w.key: ev.number(w.key) for w in users}
    classes = ev.classes()
    pairs: dict[tuple[int, int], list] = {}
    cells: list[str] = []
    rows = [(w, number[w.key], ports[w.key]) for w in users]
    for s, sn, _ in rows:
        partials: dict[int, list] = {}  # destination class -> per port: this source's part of the template
        for d, dn, d_ports in rows:
            if d is s:
                continue
            per_port = partials.get(dn)
            if per_port is None:
                templates = pairs.get((sn, dn))
                if templates is None:
                    shared = len(classes[sn].members) > 1 or len(classes[dn].members) > 1
                    templates = pairs[sn, dn] = [
                        _cell_template(ev, Probe(s.key, d.key, port, protocol=protocol), _ip_pattern)
                        if shared else None for port, protocol in d_ports]
                per_port = partials[dn] = [_partial(t, s) for t in templates]
            if len(per_port) == 1 and type(per_port[0]) is tuple:  # the usual case, quickly
                cells.append(d.name.join(per_port[0]))
                continue
            for part, (port, protocol) in zip(per_port, d_ports):
                if part is None:  # one member pair (nothing to share), or evaluated directly
                    probe = Probe(s.key, d.key, port, protocol=protocol)
                    cells.append(_COMPACT(cell(probe, evaluate(cluster, probe))))
                elif type(part) is tuple:  # only the destination's name left to fill in
                    cells.append(d.name.join(part))
                else:
                    cells.append(part % {"d": d.name, "di": d.ip})
    head = json.dumps({"workloads": sorted(w.key for w in users)}, separators=(",", ":"))[:-1]
    return head + ',"cells":[' + ",".join(cells) + "]}\n"


def _partial(template: str | None, source) -> tuple[str, ...] | str | None:
    """A cell template with the source filled in: the pieces around the destination's name (joined
    with it), or a %-template still (the destination's IP in it, or a literal %)."""
    if template is None:
        return None
    part = template.replace("%(s)s", source.name).replace("%(si)s", source.ip)
    if "%(di)s" in part or "%%" in part:
        return part
    return tuple(part.split("%(d)s"))


def _cell_template(ev, probe: Probe, ip_pattern) -> str | None:
    compiled = ev.compiled(probe)
    if compiled is None:
        return None
    verdict, _ = compiled
    src, dst = (ev.cluster.workload(k) for k in (probe.source, probe.to))
    sc, dc = ev.class_of(src), ev.class_of(dst)
    stand_in = Probe(sc.source.key, dc.destination.key, probe.port, protocol=probe.protocol)
    text = _COMPACT(cell(stand_in, verdict)).replace("%", "%%")
    text = text.replace(json.dumps(sc.source.name)[1:-1], "%(s)s").replace(json.dumps(dc.destination.name)[1:-1], "%(d)s")
    if dc is not sc:  # same class: a why line naming the shared IP was never templated (compiled is None)
        for ip, slot in ((sc.source.ip, "%(si)s"), (dc.destination.ip, "%(di)s")):
            if ip in text:
                text = ip_pattern(ip).sub(slot, text)
    return text


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


PICTURES = ("svg", "html", "graph")


def _picture(name: str) -> Callable[..., str]:
    """The picture formats (picture.py) on the JSON contract's dict, with a title; a picture that
    refuses (the graph past its size) is bad input."""
    def fmt(results: Results, cluster: Cluster, title: str = "") -> str:
        try:
            return picture.FORMATS[name]({"workloads": workloads(results, cluster),
                                          "cells": [cell(p, v) for p, v in results]}, title)
        except ValueError as exc:
            raise PolicyInputError(f"--format {name}: {exc}") from None
    return fmt


FORMATS.update({name: _picture(name) for name in PICTURES})
