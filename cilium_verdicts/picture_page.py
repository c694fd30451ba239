"""The HTML page: one self-contained file (inline CSS/JS) with the matrix, the graph, counts and every
cell's explanation."""
from __future__ import annotations

import functools

from .picture_data import (
    FONT,
    GRAPH_MAX_WORKLOADS,
    VERDICT_COLOURS,
    Picture,
    has_observed,
    is_mismatch,
    lazy_module,
    repeat_text,
)
from .picture_graph import _build_graph
from .picture_matrix import _build_matrix, _legend_items

jinja2 = lazy_module("jinja2")
markupsafe = lazy_module("markupsafe")


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
.figure { overflow: auto; max-width: 100%; max-height: 85vh; flex: 0 1 auto; }
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
thead th { position: sticky; top: 0; z-index: 1; }
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
    row("identical probe", c.repeat);
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
  var fig = document.getElementById("matrix"), svg = fig.querySelector("svg");
  var sticky = [[".row-header", 1, 0], [".col-header", 0, 1], [".corner", 1, 1]].map(function (s) {
    return [svg ? svg.querySelector(s[0]) : null, s[1], s[2]];
  });
  function stick() {  /* the row and column headers stay in view while the matrix scrolls */
    var box = svg.getBoundingClientRect(), k = box.width ? svg.viewBox.baseVal.width / box.width : 1;
    sticky.forEach(function (s) {
      if (s[0]) { s[0].setAttribute("transform", "translate(" + fig.scrollLeft * k * s[1] + "," + fig.scrollTop * k * s[2] + ")"); }
    });
  }
  if (svg) { fig.addEventListener("scroll", stick); }
  var m = /^#cell-([0-9]+)$/.exec(window.location.hash);  /* page.html#cell-N opens with cell N pinned */
  if (m) { var t = document.querySelector('.probe[data-i="' + m[1] + '"]'); if (t) { pin(t); } }
})();
</script>
</body>
</html>
"""

@functools.cache
def _template():
    """The page's template, compiled once, when a page is first drawn (jinja2 is imported then)."""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=False)
    return env.from_string(_PAGE)


def page_html(result: dict, title: str = "") -> str:
    """One self-contained HTML5 page: matrix, graph (few workloads), counts, explanations."""
    pic = Picture(result)
    matrix = _build_matrix(pic, "", id_prefix="m", swatches=False).as_svg(header="")
    graph = (_build_graph(pic, "", id_prefix="g").as_svg(header="")
             if 0 < len(pic.workloads) <= GRAPH_MAX_WORKLOADS else "")
    rows = [dict(src=c["from"], dst=c["to"], port=f"{c['port']}/{c.get('protocol') or 'TCP'}",
                 via=c.get("via") or "",
                 request=(c.get("request") or "") + repeat_text(pic.repeats.get(i)), verdict=c["verdict"],
                 observed=c["observed"] if has_observed(c) else "", egress=c.get("egress") or "",
                 ingress=c.get("ingress") or "", why=[str(w) for w in c.get("why") or []],
                 mismatch=is_mismatch(c)) for i, c in enumerate(pic.cells)]
    fields = ("from", "to", "port", "protocol", "via", "request", "verdict", "observed", "egress", "ingress", "why")
    cells_json = [{k: c[k] for k in fields if c.get(k) is not None or k == "request"} for c in pic.cells]
    for i, (n, of) in pic.repeats.items():
        cells_json[i]["repeat"] = f"#{n} of {of}, in probe order"
    return _template().render(
        title=title, font=markupsafe.Markup(FONT), colours=VERDICT_COLOURS, legend=_legend_items(pic),
        # drawsvg output: text escaped by drawsvg, attributes by _a(); it is markup by construction
        matrix=markupsafe.Markup(matrix), graph=markupsafe.Markup(graph),
        cells=pic.cells, rows=rows, cells_json=cells_json, pairs=len(pic.pairs), workloads=pic.workloads,
        on_cluster=pic.on_cluster, mismatches=[i for i, c in enumerate(pic.cells) if is_mismatch(c)],
        summaries=[pic.summary(i) for i in range(len(pic.cells))])


