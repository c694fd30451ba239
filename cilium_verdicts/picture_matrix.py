"""The matrix view: rows = from, columns = to, grouped by namespace, a sub-cell per probe."""
from __future__ import annotations

import math
from collections import Counter

from .picture_data import (
    FONT,
    MISMATCH_STROKE,
    NOT_PROBED,
    SELF_PAIR,
    VERDICT_COLOURS,
    VERDICT_GLYPHS,
    VERDICT_HATCH,
    VERDICT_INK,
    VERDICT_LABELS,
    VERDICT_ORDER,
    Picture,
    _a,
    _probe_label,
    _probe_signature,
    _r,
    _text_width,
    has_observed,
    is_mismatch,
    lazy_module,
    split_endpoint,
)

dw = lazy_module("drawsvg")


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


def _hatch(id_prefix: str, verdict: str) -> dw.Pattern:
    """The hatching pattern of a verdict (VERDICT_HATCH), white over the colour."""
    kind = VERDICT_HATCH[verdict]
    pattern = dw.Pattern(6, 6, id=f"{id_prefix}-hatch-{verdict}", class_="hatch", data_verdict=verdict,
                         **({"patternTransform": "rotate(45)"} if kind == "diagonal" else {}))
    if kind == "dots":
        pattern.append(dw.Circle(3, 3, 1.1, fill="#ffffff", fill_opacity="0.75"))
    else:
        pattern.append(dw.Line(0, 3, 6, 3, stroke="#ffffff", stroke_width="1.4", stroke_opacity="0.6"))
    return pattern


GLYPH_SIZE, LABEL_SIZE = 10, 10


def _mark_probe(marks: dw.Group, probe: dict, i: int, repeat, box, show_labels: bool) -> None:
    """The verdict's glyph, and the probe label beside it where both fit inside the sub-cell (so the
    labels of a pair's sub-cells never run into each other); the glyph alone where only it fits."""
    sx, sy, sw, sh = box
    verdict = probe["verdict"]
    glyph_w = _text_width("M", GLYPH_SIZE)
    if sw < glyph_w + 2 or sh < GLYPH_SIZE + 2:
        return  # too small for text: the hatching tells the verdict
    ink = VERDICT_INK[verdict]
    # the full label, else (identical probes) at least their number: "#2"
    options = [_probe_label(probe, repeat)] if show_labels else []
    options += [f"#{repeat[0]}"] if repeat else []
    label = next((t for t in options if glyph_w + 3 + _text_width(t, LABEL_SIZE) + 4 <= sw), None)
    with_label = label is not None and sh >= LABEL_SIZE + 4
    label_w = _text_width(label, LABEL_SIZE) if with_label else 0
    x = sx + sw / 2 - ((glyph_w + 3 + label_w) / 2 if with_label else 0)
    marks.append(dw.Text(VERDICT_GLYPHS[verdict], GLYPH_SIZE, _r(x + glyph_w / 2 if with_label else x),
                         _r(sy + sh / 2), text_anchor="middle", dominant_baseline="central", fill=ink,
                         font_weight="bold", class_="probe-glyph", data_i=str(i), data_verdict=verdict))
    if with_label:
        marks.append(dw.Text(label, LABEL_SIZE, _r(x + glyph_w + 3), _r(sy + sh / 2), text_anchor="start",
                             dominant_baseline="central", fill=ink, class_="probe-label", data_i=str(i)))


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

    # Headers: drawn after the cells, each on its own background, so the HTML page can keep them in
    # view while the matrix scrolls (it moves these groups; see _PAGE's script).
    labels = dw.Group(class_="labels row-header")
    labels.append(dw.Rectangle(0, _r(top), _r(left), _r(n_rows * cell), fill="#ffffff", class_="header-bg"))
    col_header = dw.Group(class_="labels col-header")
    col_header.append(dw.Rectangle(_r(left), 0, _r(width - left), _r(top), fill="#ffffff", class_="header-bg"))
    corner = dw.Group(class_="corner")
    corner.append(dw.Rectangle(0, 0, _r(left), _r(top), fill="#ffffff", class_="header-bg"))
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
        col_header.append(dw.Rectangle(_r(x + 1), _r(top - 4), _r(w - 2), 4, fill=colour))
        col_header.append(dw.Text(group, font + 1, _r(x + w / 2), _r(title_h + ns_band - 8 - level * 16),
                                  text_anchor="middle", font_weight="bold", fill=colour,
                                  class_="ns-label col-ns", data_group=_a(group)))
        for e in members:
            cx, cy = _r(left + col_index[e] * cell + cell / 2), _r(top - 10)
            col_header.append(dw.Text(split_endpoint(e)[1], font, cx, cy, fill="#222",
                                      transform=f"rotate(-{angle} {cx} {cy})", class_="col-label",
                                      data_endpoint=_a(e)))

    hatches = {v: _hatch(id_prefix, v) for v in VERDICT_HATCH}
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
                repeat = pic.repeats.get(i)
                if repeat:
                    attrs["data_repeat"] = f"{repeat[0]}/{repeat[1]}"
                box = (_r(sx + inset), _r(sy + inset), _r(max(sw - 2 * inset, 1)), _r(max(sh - 2 * inset, 1)))
                rect = dw.Rectangle(*box, **attrs)
                rect.append_title(pic.summary(i))
                cells.append(rect)
                if probe["verdict"] in hatches:  # the verdict without colour, at any size
                    cells.append(dw.Rectangle(*box, fill=hatches[probe["verdict"]], pointer_events="none",
                                              class_="probe-hatch", data_i=str(i),
                                              data_hatch=VERDICT_HATCH[probe["verdict"]]))
                if mismatch:
                    marks.append(dw.Text("!", _r(max(min(sh * 0.75, 20), 10)), _r(sx + sw / 2), _r(sy + sh / 2),
                                         text_anchor="middle", dominant_baseline="central",
                                         font_weight="bold", fill="#111", stroke="#ffffff",
                                         stroke_width="2.5", paint_order="stroke", class_="mismatch-mark",
                                         data_i=str(i)))
                else:
                    _mark_probe(marks, probe, i, repeat, (sx, sy, sw, sh), show_labels)
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
    d.append(labels)
    d.append(col_header)
    if title:
        corner.append(dw.Text(title, 18, pad, 24, font_weight="bold", fill="#222", class_="title"))
    corner.append(dw.Text("from \u2193   to \u2192", 11, pad, _r(top - 10), fill="#666", font_style="italic"))
    d.append(corner)

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


