"""The connectivity picture: a verdict result (the evaluator's JSON contract) drawn as a matrix SVG,
a graph SVG and one self-contained HTML page.

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

import math
from collections import Counter, defaultdict
from xml.sax.saxutils import escape as _xml_escape

import drawsvg as dw
import jinja2
import markupsafe

VERDICT_ORDER = ("allow", "drop", "l7-deny", "dns-fail")
VERDICT_COLOURS = {"allow": "#2e9e44", "drop": "#d62f2f", "l7-deny": "#f2a007", "dns-fail": "#8e44ad"}
VERDICT_LABELS = {"allow": "allow", "drop": "drop", "l7-deny": "L7 deny (403)", "dns-fail": "DNS fail"}
NOT_PROBED = "#d5d9de"
SELF_PAIR = "#eceef1"
MISMATCH_STROKE = "#111111"
NAMESPACE_PALETTE = ("#4e79a7", "#59a5b0", "#9c755f", "#b07aa1", "#e07b39", "#7f7f7f",
                     "#3b5a8a", "#a0cbe8", "#c9a227", "#6b4e9b")
WORLD_GROUP = "world"
FONT = "DejaVu Sans, Verdana, Segoe UI, Arial, Helvetica, sans-serif"
GRAPH_MAX_WORKLOADS = 12  # the page adds the graph view up to this many workloads


def _a(value) -> str:
    """An attribute value, escaped for a double-quoted XML/HTML attribute (drawsvg does not)."""
    return _xml_escape(str(value), {'"': "&quot;", "'": "&#39;", "\n": "&#10;", "\t": "&#9;"})


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


def _probe_label(cell: dict) -> str:
    request = cell.get("request") or ""
    method = request.split(" ", 1)[0] if request else ""
    return f"{cell['port']}{' ' + method if method else ''}"


def _probe_signature(cell: dict) -> str:
    """How a sub-cell is named in the key: port/protocol, request, path."""
    request = f" {cell['request']}" if cell.get("request") else ""
    return f"{cell['port']}/{cell.get('protocol') or 'TCP'}{request} via {cell.get('via') or '?'}"


def _r(value: float) -> float:
    return round(value, 1)


# ---------------------------------------------------------------------------------------------
# The matrix
# ---------------------------------------------------------------------------------------------

def _legend_items(pic: Picture) -> list[tuple[str, str, str, int]]:
    """(key, colour, label, count) per legend entry, in drawing order."""
    items = [(v, VERDICT_COLOURS[v], VERDICT_LABELS[v], pic.counts.get(v, 0)) for v in VERDICT_ORDER]
    items.append(("not-probed", NOT_PROBED, "not probed (pairs)", pic.not_probed))
    if pic.on_cluster:
        items.append(("mismatch", "#ffffff", "observed \u2260 expected", pic.mismatches))
    return items


def _sub_cells(x: float, y: float, size: float, k: int) -> list[tuple[float, float, float, float]]:
    """(x, y, w, h) of ``k`` sub-cells filling a cell: a near-square grid, the last row stretched."""
    per_row = max(1, math.ceil(math.sqrt(k)))
    n_rows = math.ceil(k / per_row)
    out = []
    for j in range(k):
        sub_r, sub_c = divmod(j, per_row)
        in_row = min(per_row, k - sub_r * per_row)
        w, h = size / in_row, size / n_rows
        out.append((x + sub_c * w, y + sub_r * h, w, h))
    return out


def _common_probe_set(pic: Picture) -> tuple[list[int], int]:
    """The probe layout shared by most multi-probe pairs: (indices of one such pair, how many)."""
    layouts = Counter()
    example = {}
    for indices in pic.pairs.values():
        if len(indices) > 1:
            sig = tuple(_probe_signature(pic.cells[i]) for i in indices)
            layouts[sig] += 1
            example.setdefault(sig, indices)
    if not layouts:
        return [], 0
    sig, count = layouts.most_common(1)[0]
    return example[sig], count


def _build_matrix(pic: Picture, title: str, id_prefix: str = "m", swatches: bool = True) -> dw.Drawing:
    n_rows, n_cols = len(pic.rows), len(pic.cols)
    grid = max(1, math.ceil(math.sqrt(pic.max_probes)))  # sub-cells per side of a cell
    cell = max(26, min(64, 720 // max(n_cols, 1)), 14 * grid + 2)
    show_labels = cell / grid >= 30  # port numbers inside the sub-cells, only where all of them fit
    font = 12
    pad = 16
    gap = 2.0  # white gap around each pair cell
    row_names = [split_endpoint(e)[1] for e in pic.rows] or [""]
    col_names = [split_endpoint(e)[1] for e in pic.cols] or [""]
    row_ns_w = max([_text_width(g, font + 1) for g, _ in pic.row_groups] + [0]) + 26
    row_name_w = max(_text_width(n, font) for n in row_names) + 14
    angle = 55  # column labels rise at this angle
    col_label_h = max(_text_width(n, font) for n in col_names) * math.sin(math.radians(angle)) + 16
    title_h = 34 if title else 8
    left = pad + row_ns_w + row_name_w
    col_index = {e: i for i, e in enumerate(pic.cols)}
    row_index = {e: i for i, e in enumerate(pic.rows)}
    # namespace labels over the columns: centred on their group, stacked where they would collide
    ns_placed = []  # (group, members, x, w, level)
    spans: list[tuple[float, float, int]] = []
    for group, members in pic.col_groups:
        x = left + col_index[members[0]] * cell
        w = len(members) * cell
        tw = _text_width(group, font + 1)
        start = x + w / 2 - tw / 2
        level = 0
        while any(level == lv and not (start + tw + 8 < s or start > e + 8) for s, e, lv in spans):
            level += 1
        spans.append((start, start + tw, level))
        ns_placed.append((group, members, x, w, level))
    levels = 1 + max([lv for *_, lv in ns_placed] + [0])
    ns_band = 10 + 16 * levels
    top = title_h + ns_band + col_label_h
    overhang = max(_text_width(n, font) for n in col_names) * math.cos(math.radians(angle))
    width = max(left + n_cols * cell + max(pad, overhang + pad), 640)

    d = dw.Drawing(_r(width), 100, id_prefix=id_prefix, font_family=_a(FONT), font_size=font,
                   role="img", aria_label=_a(title or "connectivity matrix"), class_="matrix")
    background = dw.Rectangle(0, 0, _r(width), 100, fill="#ffffff")
    d.append(background)
    if title:
        d.append(dw.Text(title, 18, pad, 24, font_weight="bold", fill="#222", class_="title"))

    labels = dw.Group(class_="labels")
    for n, (group, members) in enumerate(pic.row_groups):
        y = top + row_index[members[0]] * cell
        h = len(members) * cell
        colour = pic.ns_colour.get(group, "#555")
        labels.append(dw.Rectangle(pad, y, _r(row_ns_w + row_name_w - 4), h,
                                   fill="#f3f5f8" if n % 2 == 0 else "#ffffff"))
        labels.append(dw.Rectangle(pad, y + 1, 4, h - 2, fill=colour))
        labels.append(dw.Text(group, font + 1, pad + 10, _r(y + min(h, cell) / 2), font_weight="bold",
                              fill=colour, dominant_baseline="central", class_="ns-label row-ns",
                              data_group=_a(group)))
        for e in members:
            yy = top + row_index[e] * cell + cell / 2
            labels.append(dw.Text(split_endpoint(e)[1], font, _r(left - 8), _r(yy), text_anchor="end",
                                  dominant_baseline="central", fill="#222", class_="row-label",
                                  data_endpoint=_a(e)))
    for group, members, x, w, level in ns_placed:
        colour = pic.ns_colour.get(group, "#555")
        labels.append(dw.Rectangle(_r(x + 1), _r(top - 4), _r(w - 2), 4, fill=colour))
        labels.append(dw.Text(group, font + 1, _r(x + w / 2), _r(title_h + ns_band - 8 - level * 16),
                              text_anchor="middle", font_weight="bold", fill=colour,
                              class_="ns-label col-ns", data_group=_a(group)))
        for e in members:
            cx, cy = _r(left + col_index[e] * cell + cell / 2), _r(top - 10)
            labels.append(dw.Text(split_endpoint(e)[1], font, cx, cy, fill="#222",
                                  transform=f"rotate(-{angle} {cx} {cy})", class_="col-label",
                                  data_endpoint=_a(e)))
    d.append(labels)

    cells = dw.Group(class_="cells")
    marks = dw.Group(class_="marks", pointer_events="none")
    for r, src in enumerate(pic.rows):
        for c, dst in enumerate(pic.cols):
            x, y = left + c * cell + gap / 2, top + r * cell + gap / 2
            size = cell - gap
            indices = pic.pairs.get((src, dst))
            if not indices:
                rect = dw.Rectangle(_r(x), _r(y), _r(size), _r(size),
                                    fill=SELF_PAIR if src == dst else NOT_PROBED,
                                    class_="noprobe self" if src == dst else "noprobe",
                                    data_from=_a(src), data_to=_a(dst))
                rect.append_title(f"{src} \u2192 {dst}: " + ("same workload, not probed" if src == dst
                                                             else "not probed"))
                cells.append(rect)
                continue
            for i, (sx, sy, sw, sh) in zip(indices, _sub_cells(x, y, size, len(indices))):
                probe = pic.cells[i]
                mismatch = is_mismatch(probe)
                attrs = dict(
                    fill=VERDICT_COLOURS[probe["verdict"]], class_="probe", data_i=str(i),
                    data_from=_a(probe["from"]), data_to=_a(probe["to"]), data_port=_a(probe["port"]),
                    data_protocol=_a(probe.get("protocol") or ""), data_via=_a(probe.get("via") or ""),
                    data_request=_a(probe.get("request") or ""), data_verdict=_a(probe["verdict"]),
                    stroke="#ffffff", stroke_width="1")
                if has_observed(probe):
                    attrs["data_observed"] = _a(probe["observed"])
                inset = 0.5
                if mismatch:
                    attrs.update(data_mismatch="true", stroke=MISMATCH_STROKE, stroke_width="2.5")
                    inset = 1.25  # the thick border stays inside the sub-cell
                rect = dw.Rectangle(_r(sx + inset), _r(sy + inset), _r(max(sw - 2 * inset, 1)),
                                    _r(max(sh - 2 * inset, 1)), **attrs)
                rect.append_title(summary(probe))
                cells.append(rect)
                if mismatch:
                    marks.append(dw.Text("!", _r(max(min(sh * 0.75, 20), 10)), _r(sx + sw / 2), _r(sy + sh / 2),
                                         text_anchor="middle", dominant_baseline="central",
                                         font_weight="bold", fill="#111", stroke="#ffffff",
                                         stroke_width="2.5", paint_order="stroke", class_="mismatch-mark",
                                         data_i=str(i)))
                elif show_labels:
                    marks.append(dw.Text(_probe_label(probe), 10, _r(sx + sw / 2), _r(sy + sh / 2),
                                         text_anchor="middle", dominant_baseline="central",
                                         fill="#ffffff", class_="probe-label"))
    d.append(cells)
    d.append(marks)

    sep = dw.Group(class_="separators", stroke="#4a4f55", stroke_width="1.5")
    for group, members in pic.row_groups[1:]:
        y = top + row_index[members[0]] * cell
        sep.append(dw.Line(pad, y, _r(left + n_cols * cell), y))
    for group, members in pic.col_groups[1:]:
        x = _r(left + col_index[members[0]] * cell)
        sep.append(dw.Line(x, _r(top - 4), x, _r(top + n_rows * cell)))
    sep.append(dw.Rectangle(_r(left), _r(top), n_cols * cell, n_rows * cell, fill="none"))
    d.append(sep)
    d.append(dw.Text("from \u2193   to \u2192", 11, pad, _r(top - 10), fill="#666", font_style="italic"))

    y = top + n_rows * cell + 14
    y = _draw_legend(d, pic, pad, y, width, swatches)
    d.height = _r(y + pad)
    d.view_box = (0, 0, _r(width), d.height)
    background.args["height"] = d.height
    return d


def _draw_legend(d: dw.Drawing, pic: Picture, pad: float, y: float, width: float, swatches: bool) -> float:
    """Swatches with counts, the sub-cell key, a note; returns the y below them."""
    legend = dw.Group(class_="legend")
    lx, ly = pad, y + 8
    for key, colour, label, count in _legend_items(pic) if swatches else ():
        text = f"{label}: {count}"
        tw = _text_width(text, 12) + 34
        if lx + tw > width - pad:
            lx, ly = pad, ly + 26
        item = dw.Group(class_="legend-item", data_legend=key, data_count=str(count))
        swatch = dict(fill=colour, stroke="#999", stroke_width="1")
        if key == "mismatch":
            swatch.update(stroke=MISMATCH_STROKE, stroke_width="2.5")
        item.append(dw.Rectangle(_r(lx), _r(ly), 18, 18, **swatch))
        if key == "mismatch":
            item.append(dw.Text("!", 14, _r(lx + 9), _r(ly + 9), text_anchor="middle",
                                dominant_baseline="central", font_weight="bold", fill="#111"))
        item.append(dw.Text(text, 12, _r(lx + 24), _r(ly + 9), dominant_baseline="central", fill="#222"))
        legend.append(item)
        lx += tw + 10
    ly += 30 if swatches else 0
    example, pairs_like = _common_probe_set(pic)
    if example:  # the sub-cell key: where each probe of the usual set sits inside a cell
        size = 46
        key = dw.Group(class_="subcell-key")
        key.append(dw.Text(f"Inside a cell (the probe set of {pairs_like} of {len(pic.pairs)} pairs):",
                           12, pad, _r(ly + 8), fill="#222", dominant_baseline="central"))
        ly += 20
        lines = []
        for n, ((sx, sy, sw, sh), i) in enumerate(zip(_sub_cells(pad, ly, size, len(example)), example), 1):
            key.append(dw.Rectangle(_r(sx + 1), _r(sy + 1), _r(sw - 2), _r(sh - 2), fill="#8a929b"))
            key.append(dw.Text(str(n), 11, _r(sx + sw / 2), _r(sy + sh / 2), text_anchor="middle",
                               dominant_baseline="central", fill="#ffffff", font_weight="bold"))
            lines.append(f"{n} = {_probe_signature(pic.cells[i])}")
        for n, line in enumerate(lines):
            key.append(dw.Text(line, 12, pad + size + 12, _r(ly + 8 + n * 16), fill="#222",
                               dominant_baseline="central"))
        legend.append(key)
        ly += max(size, 16 * len(lines)) + 12
    total = len(pic.cells)
    notes = (f"{total} probe{'s' if total != 1 else ''} over {len(pic.pairs)} "
             f"pair{'s' if len(pic.pairs) != 1 else ''}.",
             "A pair's probes are sub-cells ordered by port, then request. Hover a cell for details.")
    for line in notes:
        legend.append(dw.Text(line, 11, pad, _r(ly + 6), fill="#555", class_="legend-note"))
        ly += 15
    d.append(legend)
    return ly + 12


def matrix_svg(result: dict, title: str = "") -> str:
    """The verdict matrix as a standalone SVG document."""
    return _build_matrix(Picture(result), title).as_svg()


# ---------------------------------------------------------------------------------------------
# The graph (Stars-like: nodes, arrows only for allowed pairs)
# ---------------------------------------------------------------------------------------------

def _build_graph(pic: Picture, title: str, id_prefix: str = "g") -> dw.Drawing:
    allowed = pic.allowed_pairs()
    nodes = list(dict.fromkeys(pic.rows + [e for e in pic.cols if e.startswith(f"{WORLD_GROUP}:")]))
    nodes = [e for _, members in _grouped(nodes, world_last=True) for e in members]
    n = len(nodes)
    node_r = 22
    radius = max(150, n * 30)
    label_room = max([_text_width(split_endpoint(e)[1], 12) for e in nodes] + [40]) + node_r + 12
    pad = 20
    title_h = 36 if title else 10
    cy = title_h + node_r + 34 + radius
    width = max(2 * (pad + label_room + radius), 560)
    cx = width / 2
    namespaces = list(dict.fromkeys(split_endpoint(e)[0] for e in nodes))
    legend_h = 26 + 20 * math.ceil(len(namespaces) / 4)
    height = cy + radius + node_r + 40 + legend_h + pad
    d = dw.Drawing(width, height, id_prefix=id_prefix, font_family=_a(FONT), font_size=12,
                   role="img", aria_label=_a(title or "allowed connections"), class_="graph")
    background = dw.Rectangle(0, 0, width, height, fill="#ffffff")
    d.append(background)
    if title:
        d.append(dw.Text(title, 18, pad, 26, font_weight="bold", fill="#222"))
    arrow = dw.Marker(-1, -0.55, 0.2, 0.55, scale=4, orient="auto", id=f"{id_prefix}-arrow")
    arrow.append(dw.Lines(-1, -0.55, 0.2, 0, -1, 0.55, close=True, fill=VERDICT_COLOURS["allow"]))
    arrow_bad = dw.Marker(-1, -0.55, 0.2, 0.55, scale=4, orient="auto", id=f"{id_prefix}-arrow-mismatch")
    arrow_bad.append(dw.Lines(-1, -0.55, 0.2, 0, -1, 0.55, close=True, fill=MISMATCH_STROKE))

    pos = {}
    for k, e in enumerate(nodes):
        a = -math.pi / 2 + 2 * math.pi * k / max(n, 1)
        pos[e] = (cx + radius * math.cos(a), cy + radius * math.sin(a), a)

    edges = dw.Group(class_="edges")
    edge_labels = dw.Group(class_="edge-labels", pointer_events="none")
    for (src, dst), indices in sorted(allowed.items(), key=lambda kv: (nodes.index(kv[0][0]), nodes.index(kv[0][1]))):
        ports = sorted({int(pic.cells[i]["port"]) for i in indices})
        port_text = ", ".join(str(p) for p in ports)
        mismatch = any(is_mismatch(pic.cells[i]) for i in pic.pairs[(src, dst)])
        colour = MISMATCH_STROKE if mismatch else VERDICT_COLOURS["allow"]
        g = dw.Group(class_="edge", data_from=_a(src), data_to=_a(dst), data_ports=_a(port_text))
        if mismatch:
            g.args["data-mismatch"] = "true"
        g.append_title("; ".join(summary(pic.cells[i]) for i in pic.pairs[(src, dst)]))
        x1, y1, a1 = pos[src]
        x2, y2, _ = pos[dst]
        if src == dst:  # a loop outside the circle
            ox, oy = math.cos(a1), math.sin(a1)
            px, py = -oy, ox
            sx, sy = x1 + (ox * 0.6 + px * 0.8) * node_r, y1 + (oy * 0.6 + py * 0.8) * node_r
            ex, ey = x1 + (ox * 0.6 - px * 0.8) * node_r, y1 + (oy * 0.6 - py * 0.8) * node_r
            c1 = (x1 + (ox * 3 + px * 1.5) * node_r, y1 + (oy * 3 + py * 1.5) * node_r)
            c2 = (x1 + (ox * 3 - px * 1.5) * node_r, y1 + (oy * 3 - py * 1.5) * node_r)
            path = dw.Path(stroke=colour, stroke_width="2.5", fill="none",
                           marker_end=arrow_bad if mismatch else arrow)
            path.M(sx, sy).C(*c1, *c2, ex, ey)
            lx, ly = x1 + ox * 2.9 * node_r, y1 + oy * 2.9 * node_r
        else:
            dx, dy = x2 - x1, y2 - y1
            dist = math.hypot(dx, dy) or 1
            ux, uy = dx / dist, dy / dist
            bend = 0.12 * dist  # bend to the right of travel: a->b and b->a stay apart
            mx, my = (x1 + x2) / 2 - uy * bend, (y1 + y2) / 2 + ux * bend
            # start/end on the node circles, aimed at the control point
            def toward(px, py, qx, qy, r):
                vx, vy = qx - px, qy - py
                vl = math.hypot(vx, vy) or 1
                return px + vx / vl * r, py + vy / vl * r
            sx, sy = toward(x1, y1, mx, my, node_r + 2)
            ex, ey = toward(x2, y2, mx, my, node_r + 7)
            path = dw.Path(stroke=colour, stroke_width="2.5", fill="none",
                           marker_end=arrow_bad if mismatch else arrow)
            path.M(sx, sy).Q(mx, my, ex, ey)
            t = 0.6  # the label sits past the middle, nearer the destination whose port it names
            lx = (1 - t) ** 2 * sx + 2 * (1 - t) * t * mx + t * t * ex
            ly = (1 - t) ** 2 * sy + 2 * (1 - t) * t * my + t * t * ey
        g.append(path)
        edges.append(g)
        edge_labels.append(dw.Text(port_text + (" !" if mismatch else ""), 11, lx, ly, text_anchor="middle",
                                   dominant_baseline="central", fill=colour, font_weight="bold",
                                   stroke="#ffffff", stroke_width="4", paint_order="stroke",
                                   class_="edge-label"))
    d.append(edges)
    node_group = dw.Group(class_="nodes")
    for e in nodes:
        x, y, a = pos[e]
        ns, name = split_endpoint(e)
        colour = pic.ns_colour.get(ns, "#555")
        g = dw.Group(class_="node", data_endpoint=_a(e))
        g.append_title(e)
        world = e.startswith(f"{WORLD_GROUP}:")
        g.append(dw.Circle(x, y, node_r, fill="#ffffff" if world else colour, stroke=colour,
                           stroke_width="2.5", stroke_dasharray="4 3" if world else None))
        g.append(dw.Text((ns[:1] if not world else "\u25cb").upper(), 14, x, y, text_anchor="middle",
                         dominant_baseline="central", fill="#ffffff" if not world else colour,
                         font_weight="bold"))
        lx, ly = x + math.cos(a) * (node_r + 8), y + math.sin(a) * (node_r + 8)
        anchor = "middle" if abs(math.cos(a)) < 0.3 else ("start" if math.cos(a) > 0 else "end")
        base = "central" if abs(math.sin(a)) < 0.7 else ("hanging" if math.sin(a) > 0 else "auto")
        g.append(dw.Text(name, 12, lx, ly, text_anchor=anchor, dominant_baseline=base, fill="#222",
                         font_weight="bold", class_="node-label"))
        node_group.append(g)
    d.append(node_group)
    d.append(edge_labels)

    ly = cy + radius + node_r + 40
    lx = pad
    legend = dw.Group(class_="legend")
    for ns in namespaces:
        text = ns or "(no namespace)"
        tw = _text_width(text, 12) + 30
        if lx + tw > width - pad:
            lx, ly = pad, ly + 20
        legend.append(dw.Circle(lx + 7, ly, 7, fill=pic.ns_colour.get(ns, "#555")))
        legend.append(dw.Text(text, 12, lx + 20, ly, dominant_baseline="central", fill="#222"))
        lx += tw + 8
    notes = (f"{len(allowed)} allowed pair{'s' if len(allowed) != 1 else ''}: an arrow where at least one "
             "probe of the pair is allowed,", "labelled with the allowed ports; no arrow: nothing allowed.")
    for line in notes:
        ly += 18
        legend.append(dw.Text(line, 11, pad, _r(ly), fill="#555", class_="legend-note"))
    d.append(legend)
    d.height = _r(ly + pad)
    d.view_box = (0, 0, width, d.height)
    background.args["height"] = d.height
    return d


def graph_svg(result: dict, title: str = "") -> str:
    """The graph view as a standalone SVG document: an arrow per pair with an allowed probe."""
    return _build_graph(Picture(result), title).as_svg()


# ---------------------------------------------------------------------------------------------
# The HTML page
# ---------------------------------------------------------------------------------------------

_PAGE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title or "Connectivity verdicts" }}</title>
<style>
body { font-family: {{ font }}; margin: 16px 24px; color: #222; background: #fff; }
h1 { font-size: 20px; margin: 0 0 6px; }
h2 { font-size: 16px; margin: 22px 0 8px; }
.counts { display: flex; flex-wrap: wrap; gap: 8px 18px; margin: 8px 0 12px; padding: 0; list-style: none; }
.counts li { display: flex; align-items: center; gap: 6px; }
.sw { display: inline-block; width: 14px; height: 14px; border: 1px solid #999; }
.sw.mismatch { border: 3px solid #111; width: 10px; height: 10px; }
.layout { display: flex; align-items: flex-start; gap: 20px; }
.figure { overflow: auto; max-width: 100%; flex: 0 1 auto; }
#detail { position: sticky; top: 12px; flex: 0 0 320px; max-width: 320px; border: 1px solid #ccd;
  border-radius: 6px; padding: 10px 12px; background: #fbfbfd; font-size: 13px; min-height: 80px; }
#detail.pinned { border-color: #1565c0; box-shadow: 0 0 0 2px #1565c0 inset; }
#detail h3 { font-size: 14px; margin: 0 0 6px; word-break: break-all; }
#detail dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 10px; margin: 6px 0; }
#detail dt { color: #666; } #detail dd { margin: 0; word-break: break-word; }
#detail ol { margin: 4px 0 0; padding-left: 20px; }
#detail .hint { color: #777; font-style: italic; }
.v { display: inline-block; padding: 0 6px; border-radius: 3px; color: #fff; font-weight: bold; }
{% for v, c in colours.items() %}.v-{{ v }} { background: {{ c }}; }
{% endfor %}.v-other { background: #555; }
.mm { color: #b00; font-weight: bold; }
svg .probe, svg .noprobe { cursor: pointer; }
svg .probe:hover, svg .noprobe:hover { opacity: .75; }
svg text.hl { font-weight: bold; fill: #1565c0; }
svg .probe.selected, svg .noprobe.selected { stroke: #1565c0; stroke-width: 3; }
table { border-collapse: collapse; font-size: 12px; }
th, td { border: 1px solid #dde; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f1f3f6; }
tr.mismatch td { background: #fff1f1; }
td ol { margin: 0; padding-left: 18px; }
@media (max-width: 1100px) { .layout { flex-direction: column; } #detail { position: static; flex: none; max-width: none; } }
</style>
</head>
<body>
<h1>{{ title or "Connectivity verdicts" }}</h1>
<ul class="counts" id="counts">
{% for key, colour, label, count in legend %}<li data-legend="{{ key }}" data-count="{{ count }}"><span class="sw{{ ' mismatch' if key == 'mismatch' else '' }}" style="background: {{ colour }}"></span>{{ label }}: <b>{{ count }}</b></li>
{% endfor %}<li>{{ cells|length }} probes, {{ pairs }} pairs, {{ workloads|length }} workloads</li>
</ul>
<div class="layout">
<div class="figure" id="matrix">{{ matrix }}</div>
<aside id="detail" aria-live="polite"><p class="hint">Hover a cell for its explanation; click to pin it (click again or press Esc to unpin). Rows: from; columns: to.</p></aside>
</div>
{% if graph %}<h2>Allowed connections</h2>
<div class="figure" id="graph">{{ graph }}</div>
{% endif %}
{% if mismatches %}<h2 class="mm">Observed differs from expected ({{ mismatches|length }})</h2>
<ul id="mismatches">{% for i in mismatches %}<li>{{ summaries[i] }}</li>{% endfor %}</ul>
{% endif %}
<details id="all-probes"><summary>All probes with their explanation ({{ cells|length }})</summary>
<table>
<thead><tr><th>from</th><th>to</th><th>port</th><th>via</th><th>request</th><th>verdict</th>{% if on_cluster %}<th>observed</th>{% endif %}<th>egress</th><th>ingress</th><th>why</th></tr></thead>
<tbody>
{% for c in rows %}<tr data-i="{{ loop.index0 }}"{% if c.mismatch %} class="mismatch"{% endif %}><td>{{ c.src }}</td><td>{{ c.dst }}</td><td>{{ c.port }}</td><td>{{ c.via }}</td><td>{{ c.request }}</td><td><span class="v v-{{ c.verdict }}">{{ c.verdict }}</span></td>{% if on_cluster %}<td>{{ c.observed }}</td>{% endif %}<td>{{ c.egress }}</td><td>{{ c.ingress }}</td><td><ol>{% for w in c.why %}<li>{{ w }}</li>{% endfor %}</ol></td></tr>
{% endfor %}</tbody>
</table>
</details>
<script type="application/json" id="cells-data">{{ cells_json|tojson }}</script>
<script>
(function () {
  "use strict";
  var cells = JSON.parse(document.getElementById("cells-data").textContent);
  var detail = document.getElementById("detail");
  var hint = detail.innerHTML;
  var pinned = null;
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    if (cls) { e.className = cls; }
    return e;
  }
  function badge(v) { return el("span", v, "v " + (["allow", "drop", "l7-deny", "dns-fail"].indexOf(v) >= 0 ? "v-" + v : "v-other")); }
  var rowLabels = {}, colLabels = {}, lit = [];
  Array.prototype.forEach.call(document.querySelectorAll("#matrix .row-label"), function (t) { rowLabels[t.getAttribute("data-endpoint")] = t; });
  Array.prototype.forEach.call(document.querySelectorAll("#matrix .col-label"), function (t) { colLabels[t.getAttribute("data-endpoint")] = t; });
  function light(target) {  /* the hovered cell's row and column labels */
    lit.forEach(function (t) { t.classList.remove("hl"); });
    lit = [];
    if (!target) { return; }
    [rowLabels[target.getAttribute("data-from")], colLabels[target.getAttribute("data-to")]].forEach(function (t) { if (t) { t.classList.add("hl"); lit.push(t); } });
  }
  function show(target) {
    light(target);
    detail.textContent = "";
    if (!target) { detail.innerHTML = hint; return; }
    var i = target.getAttribute("data-i");
    if (i === null) {
      detail.appendChild(el("h3", target.getAttribute("data-from") + " \u2192 " + target.getAttribute("data-to")));
      detail.appendChild(el("p", target.getAttribute("data-from") === target.getAttribute("data-to") ? "the same workload" : "not probed", "hint"));
      return;
    }
    var c = cells[Number(i)];
    detail.appendChild(el("h3", c["from"] + " \u2192 " + c.to));
    var dl = el("dl");
    function row(k, v) { if (v === undefined || v === null || v === "") { return; } dl.appendChild(el("dt", k)); var dd = el("dd"); if (v instanceof Node) { dd.appendChild(v); } else { dd.textContent = String(v); } dl.appendChild(dd); }
    row("port", c.port + "/" + (c.protocol || "TCP"));
    row("via", c.via);
    row("request", c.request);
    row("verdict", badge(c.verdict));
    if (c.observed !== undefined) {
      var o = el("span"); o.appendChild(badge(c.observed));
      if (c.observed !== c.verdict) { o.appendChild(el("span", " mismatch", "mm")); }
      row("observed", o);
    }
    row("egress", c.egress);
    row("ingress", c.ingress);
    detail.appendChild(dl);
    if (c.why && c.why.length) {
      detail.appendChild(el("b", "why"));
      var ol = el("ol");
      c.why.forEach(function (w) { ol.appendChild(el("li", w)); });
      detail.appendChild(ol);
    }
    if (pinned) { detail.appendChild(el("p", "pinned: click it again or press Esc", "hint")); }
  }
  function cellOf(e) { return e.target.closest ? e.target.closest(".probe, .noprobe") : null; }
  document.addEventListener("mouseover", function (e) { if (!pinned) { var t = cellOf(e); if (t) { show(t); } } });
  function unpin() { if (pinned) { pinned.classList.remove("selected"); } pinned = null; detail.classList.remove("pinned"); }
  function pin(t) { unpin(); pinned = t; t.classList.add("selected"); detail.classList.add("pinned"); show(t); }
  document.addEventListener("click", function (e) {
    var t = cellOf(e);
    if (!t || t === pinned) { unpin(); show(t); return; }
    pin(t);
  });
  document.addEventListener("keydown", function (e) { if (e.key === "Escape" && pinned) { unpin(); show(null); } });
  var m = /^#cell-([0-9]+)$/.exec(window.location.hash);  /* page.html#cell-N opens with cell N pinned */
  if (m) { var t = document.querySelector('.probe[data-i="' + m[1] + '"]'); if (t) { pin(t); } }
})();
</script>
</body>
</html>
"""

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=False)
_TEMPLATE = _ENV.from_string(_PAGE)


def page_html(result: dict, title: str = "") -> str:
    """One self-contained HTML5 page: matrix, graph (few workloads), counts, explanations."""
    pic = Picture(result)
    matrix = _build_matrix(pic, "", id_prefix="m", swatches=False).as_svg(header="")
    graph = (_build_graph(pic, "", id_prefix="g").as_svg(header="")
             if 0 < len(pic.workloads) <= GRAPH_MAX_WORKLOADS else "")
    rows = [dict(src=c["from"], dst=c["to"], port=f"{c['port']}/{c.get('protocol') or 'TCP'}",
                 via=c.get("via") or "", request=c.get("request") or "", verdict=c["verdict"],
                 observed=c["observed"] if has_observed(c) else "", egress=c.get("egress") or "",
                 ingress=c.get("ingress") or "", why=[str(w) for w in c.get("why") or []],
                 mismatch=is_mismatch(c)) for c in pic.cells]
    fields = ("from", "to", "port", "protocol", "via", "request", "verdict", "observed", "egress", "ingress", "why")
    cells_json = [{k: c[k] for k in fields if c.get(k) is not None or k == "request"} for c in pic.cells]
    return _TEMPLATE.render(
        title=title, font=markupsafe.Markup(FONT), colours=VERDICT_COLOURS, legend=_legend_items(pic),
        # drawsvg output: text escaped by drawsvg, attributes by _a(); it is markup by construction
        matrix=markupsafe.Markup(matrix), graph=markupsafe.Markup(graph),
        cells=pic.cells, rows=rows, cells_json=cells_json, pairs=len(pic.pairs), workloads=pic.workloads,
        on_cluster=pic.on_cluster, mismatches=[i for i, c in enumerate(pic.cells) if is_mismatch(c)],
        summaries=[summary(c) for c in pic.cells])


def _svg_format(result: dict, title: str) -> str:
    return matrix_svg(result, title)


def _html_format(result: dict, title: str) -> str:
    return page_html(result, title)


def _graph_format(result: dict, title: str) -> str:
    return graph_svg(result, title)


FORMATS = {"svg": _svg_format, "html": _html_format, "graph": _graph_format}
