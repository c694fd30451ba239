"""The graph view (Stars-like): nodes, arrows only for allowed pairs; namespaces past a dozen workloads."""
from __future__ import annotations

import math
from collections import Counter

from .picture_data import (
    FONT,
    GRAPH_MAX_WORKLOADS,
    MISMATCH_STROKE,
    VERDICT_COLOURS,
    WORLD_GROUP,
    Picture,
    _a,
    _grouped,
    _r,
    _text_width,
    is_mismatch,
    lazy_module,
    split_endpoint,
)

dw = lazy_module("drawsvg")


def _node_name(pic: Picture, endpoint: str) -> str:
    ns, name = split_endpoint(endpoint)
    if name == "*" and ns in pic.group_sizes:  # a namespace node
        return f"{ns} ({pic.group_sizes[ns]} workload{'s' if pic.group_sizes[ns] != 1 else ''})"
    return name


def _build_graph(pic: Picture, title: str, id_prefix: str = "g") -> dw.Drawing:
    allowed = pic.allowed_pairs()
    nodes = list(dict.fromkeys(pic.rows + [e for e in pic.cols if e.startswith(f"{WORLD_GROUP}:")]))
    nodes = [e for _, members in _grouped(nodes, world_last=True) for e in members]
    n = len(nodes)
    node_r = 22
    radius = max(150, n * 30)
    label_room = max([_text_width(_node_name(pic, e), 12) for e in nodes] + [40]) + node_r + 12
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
        probes = pic.pairs[(src, dst)]
        g.append_title("; ".join(pic.summary(i) for i in probes[:8])
                       + (f"; \u2026 {len(probes) - 8} more probes" if len(probes) > 8 else ""))
        if len(ports) > 4:
            port_text = ", ".join(str(p) for p in ports[:4]) + ", \u2026"
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
        g.append(dw.Text(_node_name(pic, e), 12, lx, ly, text_anchor=anchor, dominant_baseline=base, fill="#222",
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
    """The graph view as a standalone SVG document: an arrow per pair with an allowed probe. Past
    GRAPH_MAX_WORKLOADS workloads the nodes are namespaces (an arrow where any workload of one may reach
    one of the other); past that many namespaces it refuses (ValueError): a hairball says nothing."""
    pic = Picture(result)
    if len(pic.workloads) > GRAPH_MAX_WORKLOADS:
        pic = _namespace_picture(pic)
    return _build_graph(pic, title).as_svg()


def _namespace_picture(pic: Picture) -> Picture:
    """The same cells between namespaces (``ns/*``; world destinations stay)."""
    def group(endpoint: str) -> str:
        return endpoint if endpoint.startswith(f"{WORLD_GROUP}:") else f"{split_endpoint(endpoint)[0]}/*"
    sizes = Counter(split_endpoint(w)[0] for w in pic.workloads if not w.startswith(f"{WORLD_GROUP}:"))
    nodes = list(dict.fromkeys(group(w) for w in pic.workloads)
                 | dict.fromkeys(group(c["to"]) for c in pic.cells))
    if len(nodes) > GRAPH_MAX_WORKLOADS:
        raise ValueError(f"graph: {len(pic.workloads)} workloads in {len(nodes)} namespaces and world "
                         f"destinations are too many to draw (at most {GRAPH_MAX_WORKLOADS} nodes); "
                         "use the matrix (--format svg or html)")
    grouped = Picture({"workloads": [group(w) for w in pic.workloads],
                       "cells": [{**c, "from": group(c["from"]), "to": group(c["to"])} for c in pic.cells]})
    grouped.group_sizes = dict(sizes)
    return grouped


