"""The connectivity picture: matrix SVG, graph SVG and HTML page, checked against the JSON they draw.

SVG is parsed with xml.etree (well-formed XML, root ``{http://www.w3.org/2000/svg}svg``); HTML with
html5lib in strict mode (any WHATWG parse error fails). Every cell of the JSON must appear exactly once
as a sub-cell with its data attributes and colour; unprobed pairs are grey; the legend counts are the
JSON's; mismatch marks sit exactly where observed != verdict; graph arrows exactly on allowed pairs.
"""
from __future__ import annotations

import ast
import colorsys
import copy
import json
import math
import pathlib
import re
import xml.etree.ElementTree as ET
from collections import Counter

import html5lib
import pytest

from cilium_verdicts import picture, picture_bench
from cilium_verdicts.picture import FORMATS, graph_svg, matrix_svg, page_html

ROOT = pathlib.Path(__file__).resolve().parents[3]
SVG = "{http://www.w3.org/2000/svg}"
GREY = {"#d5d9de", "#eceef1"}

HOSTILE = 'evil"ns<&>\'/x"<script>alert(1)</script>'


def cell(src, dst, port, verdict, *, request=None, via="pod-ip", observed=None, why=None, protocol="TCP"):
    c = {"from": src, "to": dst, "port": port, "protocol": protocol, "via": via, "request": request,
         "verdict": verdict, "egress": f"egress of {src}", "ingress": f"ingress of {dst}",
         "why": why if why is not None else [f"{src} -> {dst}:{port} is {verdict}"]}
    if observed is not None:
        c["observed"] = observed
    return c


def small() -> dict:
    """Hand-made: two namespaces, a world destination, several probes on one pair, every verdict,
    an unprobed pair, on-cluster observations with two mismatches, hostile strings."""
    w = ["shop/web", "shop/db", "ops/<monitor>", HOSTILE]
    cells = [
        cell("shop/web", "shop/db", 5432, "allow", observed="allow"),
        cell("shop/web", "shop/db", 80, "l7-deny", request="POST /admin", via="service-name", observed="l7-deny"),
        cell("shop/web", "shop/db", 80, "allow", request="GET /health", via="service-name", observed="refused"),
        cell("shop/web", "shop/db", 80, "drop", observed="drop"),
        cell("shop/db", "shop/web", 8080, "drop", observed="allow"),
        cell("ops/<monitor>", "shop/web", 8080, "allow", observed="allow",
             why=['rule "a" & <b>', "</script><script>alert(2)</script>"]),
        cell("ops/<monitor>", "world:api.example.com", 443, "dns-fail", via="fqdn", observed="dns-fail"),
        cell("shop/web", "world:api.example.com", 443, "allow", via="fqdn", observed="allow"),
        cell(HOSTILE, "shop/db", 5432, "drop", observed="drop", why=[HOSTILE]),
    ]
    return {"workloads": w, "cells": cells}


STARS_ALLOWED = {("client/client", "stars/frontend"), ("stars/frontend", "stars/backend"),
                 ("management-ui/management-ui", "client/client"),
                 ("management-ui/management-ui", "stars/frontend"),
                 ("management-ui/management-ui", "stars/backend")}


def stars() -> dict:
    """Stars final state, built here from the documented arrows (not from picture_bench)."""
    ports = {"management-ui/management-ui": 9001, "stars/frontend": 80, "stars/backend": 6379,
             "client/client": 9000}
    cells = [cell(s, d, ports[d], "allow" if (s, d) in STARS_ALLOWED else "drop")
             for s in ports for d in ports if s != d]
    return {"workloads": list(ports), "cells": cells}


@pytest.fixture(scope="module")
def thirty() -> dict:
    result = picture_bench.synthetic()
    assert len(result["workloads"]) == 30
    return result


# ------------------------------------------------------------------------------------- helpers

def parse_svg(text: str) -> ET.Element:
    root = ET.fromstring(text.encode("utf-8"))
    assert root.tag == f"{SVG}svg"
    return root


def parse_html(text: str) -> ET.Element:
    assert text.startswith("<!DOCTYPE html>")
    return html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(text)


def classes(e: ET.Element) -> set[str]:
    return set((e.get("class") or "").split())


def by_class(root: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in root.iter() if name in classes(e)]


def hue(fill: str) -> float:
    r, g, b = (int(fill[i:i + 2], 16) / 255 for i in (1, 3, 5))
    h, _, s = colorsys.rgb_to_hls(r, g, b)
    assert s > 0.4, fill  # a real colour, not a grey
    return h * 360


def assert_colour(verdict: str, fill: str):
    h = hue(fill)
    expected = {"allow": (90, 160), "drop": (-15, 15), "l7-deny": (30, 50), "dns-fail": (260, 300)}[verdict]
    lo, hi = expected
    assert lo <= (h if h < 345 else h - 360) <= hi, (verdict, fill, h)


def probe_identity(c: dict) -> tuple:
    return (c["from"], c["to"], str(c["port"]), c.get("protocol") or "", c.get("request") or "",
            c.get("via") or "", c["verdict"], c.get("observed"))


def element_identity(e: ET.Element) -> tuple:
    return (e.get("data-from"), e.get("data-to"), e.get("data-port"), e.get("data-protocol"),
            e.get("data-request"), e.get("data-via"), e.get("data-verdict"), e.get("data-observed"))


def mismatch(c: dict) -> bool:
    return c.get("observed") is not None and c["observed"] != c["verdict"]


def rows_and_cols(result: dict) -> tuple[list[str], list[str]]:
    rows = list(dict.fromkeys(result["workloads"] + [c["from"] for c in result["cells"]]))
    cols = list(dict.fromkeys(result["workloads"] + [c["to"] for c in result["cells"]]))
    return rows, cols


def check_matrix(svg: ET.Element, result: dict, legend: bool = True):
    """Everything the matrix promises about ``result``, read back from the drawing."""
    cells = result["cells"]
    probes = by_class(svg, "probe")
    # every JSON cell exactly once, with its data attributes
    assert Counter(element_identity(e) for e in probes) == Counter(probe_identity(c) for c in cells)
    for e in probes:
        assert e.tag == f"{SVG}rect"
        assert_colour(e.get("data-verdict"), e.get("fill"))
        assert e.get("fill") == picture.VERDICT_COLOURS[e.get("data-verdict")]
        title = e.find(f"{SVG}title")
        assert title is not None and e.get("data-from") in title.text and e.get("data-to") in title.text
        assert e.get("data-verdict") in title.text
    # mismatches: marked exactly where observed differs
    marked = [e for e in probes if e.get("data-mismatch") == "true"]
    assert Counter(element_identity(e) for e in marked) == Counter(probe_identity(c) for c in cells if mismatch(c))
    assert all(e.get("stroke") == "#111111" and float(e.get("stroke-width")) >= 2 for e in marked)
    assert all(e.get("data-mismatch") is None for e in probes if e not in marked)
    marks = by_class(svg, "mismatch-mark")
    assert sorted(m.get("data-i") for m in marks) == sorted(e.get("data-i") for e in marked)
    assert all(m.text == "!" for m in marks)
    # grey for every pair without a probe, and nothing else grey
    rows, cols = rows_and_cols(result)
    probed = {(c["from"], c["to"]) for c in cells}
    unprobed = [(r, c) for r in rows for c in cols if (r, c) not in probed]
    noprobe = by_class(svg, "noprobe")
    assert Counter((e.get("data-from"), e.get("data-to")) for e in noprobe) == Counter(unprobed)
    assert all(e.get("fill") in GREY and e.get("data-verdict") is None for e in noprobe)
    assert {(e.get("data-from"), e.get("data-to")) for e in by_class(svg, "self")} == \
        {(r, c) for r, c in unprobed if r == c}
    # labels: rows and columns grouped by namespace (contiguous), world:* columns last
    row_labels = [e.get("data-endpoint") for e in by_class(svg, "row-label")]
    col_labels = [e.get("data-endpoint") for e in by_class(svg, "col-label")]
    assert sorted(row_labels) == sorted(rows) and sorted(col_labels) == sorted(cols)
    for labels in (row_labels, col_labels):
        groups = [picture.split_endpoint(e)[0] for e in labels]
        seen = [g for i, g in enumerate(groups) if i == 0 or g != groups[i - 1]]
        assert len(seen) == len(set(seen)), f"namespaces not contiguous: {groups}"
    world = [e.startswith("world:") for e in col_labels]
    assert world == sorted(world), "world:* columns come last"
    # geometry: each pair's sub-cells sit in that row and column, ordered by port then request
    row_y = {e.get("data-endpoint"): float(e.get("y")) for e in by_class(svg, "row-label")}
    col_x = {e.get("data-endpoint"): float(e.get("x")) for e in by_class(svg, "col-label")}
    pairs: dict[tuple, list[ET.Element]] = {}
    for e in probes:
        pairs.setdefault((e.get("data-from"), e.get("data-to")), []).append(e)
    for (src, dst), subs in pairs.items():
        x0 = min(float(e.get("x")) for e in subs)
        x1 = max(float(e.get("x")) + float(e.get("width")) for e in subs)
        y0 = min(float(e.get("y")) for e in subs)
        y1 = max(float(e.get("y")) + float(e.get("height")) for e in subs)
        assert x0 < col_x[dst] < x1 and y0 < row_y[src] < y1, (src, dst)
        reading_order = reading(subs)
        keys = [(int(e.get("data-port")), e.get("data-request")) for e in reading_order]
        assert keys == sorted(keys), (src, dst, keys)
    if legend:
        check_legend_counts(svg, result)


def reading(subs: list[ET.Element]) -> list[ET.Element]:
    """Sub-cells in reading order: by sub-row (centres within 2 px), then left to right."""
    def centre(e, a, d):  # centres: a mismatch's inset border leaves them where they were
        return float(e.get(a)) + float(e.get(d)) / 2
    out, row, row_y = [], [], None
    for e in sorted(subs, key=lambda e: centre(e, "y", "height")):
        if row_y is not None and centre(e, "y", "height") - row_y > 2:
            out += sorted(row, key=lambda e: centre(e, "x", "width"))
            row = []
        if not row:
            row_y = centre(e, "y", "height")
        row.append(e)
    return out + sorted(row, key=lambda e: centre(e, "x", "width"))


def check_legend_counts(root: ET.Element, result: dict):
    cells = result["cells"]
    items = [e for e in root.iter() if e.get("data-legend")]
    counts = {e.get("data-legend"): int(e.get("data-count")) for e in items}
    expected = Counter(c["verdict"] for c in cells)
    for verdict in ("allow", "drop", "l7-deny", "dns-fail"):
        assert counts[verdict] == expected.get(verdict, 0), verdict
    rows, cols = rows_and_cols(result)
    probed = {(c["from"], c["to"]) for c in cells}
    assert counts["not-probed"] == sum(1 for r in rows for c in cols if r != c and (r, c) not in probed)
    if any(c.get("observed") is not None for c in cells):
        assert counts["mismatch"] == sum(1 for c in cells if mismatch(c))
    else:
        assert "mismatch" not in counts
    for e in items:  # the number is also written, not only in the attribute
        text = "".join(e.itertext())
        assert re.search(rf"\b{e.get('data-count')}\b", text), text


# ------------------------------------------------------------------------------------- matrix

@pytest.mark.parametrize("make", [small, stars], ids=["small", "stars"])
def test_matrix_svg_draws_every_cell_once(make):
    result = make()
    check_matrix(parse_svg(matrix_svg(result, "a <title> & more")), result)


def test_matrix_svg_thirty_workloads(thirty):
    svg = parse_svg(matrix_svg(thirty, "thirty"))
    check_matrix(svg, thirty)
    assert len(by_class(svg, "probe")) == len(thirty["cells"]) > 30 * 30


def test_matrix_without_observations_has_no_mismatch_legend():
    result = stars()
    assert not any("observed" in c for c in result["cells"])
    svg = parse_svg(matrix_svg(result))
    check_matrix(svg, result)
    assert not [e for e in svg.iter() if e.get("data-observed") or e.get("data-mismatch")]


def test_matrix_title_and_hostile_strings_are_escaped():
    result = small()
    text = matrix_svg(result, 'pack "x" <&>')
    svg = parse_svg(text)
    assert "<script" not in text and "<monitor>" not in text
    assert any(e.text == 'pack "x" <&>' for e in by_class(svg, "title"))
    labels = {e.get("data-endpoint") for e in by_class(svg, "row-label")}
    assert HOSTILE in labels and "ops/<monitor>" in labels


def test_matrix_probe_labels_only_when_they_fit(thirty):
    big = parse_svg(matrix_svg(stars()))
    assert sorted(e.text for e in by_class(big, "probe-label")) == sorted(
        str(c["port"]) for c in stars()["cells"])
    assert by_class(parse_svg(matrix_svg(thirty)), "probe-label") == []


def test_matrix_subcell_key_names_the_common_probe_set(thirty):
    svg = parse_svg(matrix_svg(thirty))
    key = by_class(svg, "subcell-key")
    assert len(key) == 1
    text = " ".join(t.text for t in key[0].iter(f"{SVG}text"))
    assert "1 = 80/TCP via pod-ip" in text and "2 = 80/TCP GET /headers via service-name" in text


# ------------------------------------------------------------------------------------- graph

def edges(svg: ET.Element) -> Counter:
    return Counter((e.get("data-from"), e.get("data-to")) for e in by_class(svg, "edge"))


def test_graph_stars_final_has_exactly_the_documented_arrows():
    svg = parse_svg(graph_svg(stars(), "Stars"))
    assert edges(svg) == Counter(STARS_ALLOWED)
    assert len(by_class(svg, "edge")) == 5
    nodes = [e.get("data-endpoint") for e in by_class(svg, "node")]
    assert sorted(nodes) == sorted(stars()["workloads"])
    ids = {e.get("id") for e in svg.iter() if e.get("id")}
    for e in by_class(svg, "edge"):
        path = e.find(f"{SVG}path")
        ref = re.fullmatch(r"url\(#(.+)\)", path.get("marker-end"))
        assert ref and ref.group(1) in ids  # the arrowhead is defined in the same document
        assert e.find(f"{SVG}title") is not None


@pytest.mark.parametrize("make", [small, stars], ids=["small", "stars"])
def test_graph_arrows_exactly_for_allowed_pairs(make):
    result = make()
    svg = parse_svg(graph_svg(result))
    allowed = {(c["from"], c["to"]) for c in result["cells"] if c["verdict"] == "allow"}
    assert edges(svg) == Counter(allowed)
    labels = [e.text for e in by_class(svg, "edge-label")]
    assert len(labels) == len(allowed)
    for e in by_class(svg, "edge"):  # the label names the allowed ports
        ports = sorted({c["port"] for c in result["cells"] if (c["from"], c["to"]) ==
                        (e.get("data-from"), e.get("data-to")) and c["verdict"] == "allow"})
        assert e.get("data-ports") == ", ".join(map(str, ports))


def test_graph_world_destinations_are_nodes():
    svg = parse_svg(graph_svg(small()))
    assert "world:api.example.com" in {e.get("data-endpoint") for e in by_class(svg, "node")}


def test_graph_self_loop():
    result = {"workloads": ["a/x"], "cells": [cell("a/x", "a/x", 80, "allow")]}
    assert edges(parse_svg(graph_svg(result))) == Counter({("a/x", "a/x"): 1})


# ------------------------------------------------------------------------------------- page

def svg_in(page: ET.Element, container_id: str) -> ET.Element | None:
    container = [e for e in page.iter() if e.get("id") == container_id]
    if not container:
        return None
    svgs = [e for e in container[0] if e.tag == f"{SVG}svg"]
    assert len(svgs) == 1
    return svgs[0]


def check_page(text: str, result: dict, *, graph: bool):
    page = parse_html(text)
    # no external resource of any kind: no URL but the SVG namespace names
    stripped = text.replace('xmlns="http://www.w3.org/2000/svg"', "").replace(
        'xmlns:xlink="http://www.w3.org/1999/xlink"', "")
    assert "http://" not in stripped and "https://" not in stripped
    for e in page.iter():
        for attr in ("src", "href", "{http://www.w3.org/1999/xlink}href", "xlink:href", "action", "data"):
            value = e.get(attr)
            assert value is None or value.startswith("#"), (e.tag, attr, value)
    assert not [e for e in page.iter() if e.tag in ("link", "iframe", "object", "embed", "img", "base")]
    assert "@import" not in text and "@font-face" not in text and "url(" not in stripped.replace("url(#", "")
    scripts = [e for e in page.iter() if e.tag == "script"]
    assert len(scripts) == 2 and all(s.get("src") is None and (s.text or "").strip() for s in scripts)
    assert [s.get("type") for s in scripts] == ["application/json", None]
    assert len([e for e in page.iter() if e.tag == "style"]) == 1
    # the matrix, inline, with every cell; the counts as an HTML legend
    matrix = svg_in(page, "matrix")
    check_matrix(matrix, result, legend=False)
    check_legend_counts(page.find(".//ul[@id='counts']"), result)
    # the graph only for few workloads
    g = svg_in(page, "graph")
    if graph:
        allowed = {(c["from"], c["to"]) for c in result["cells"] if c["verdict"] == "allow"}
        assert edges(g) == Counter(allowed)
    else:
        assert g is None
    ids = [e.get("id") for e in page.iter() if e.get("id")]
    assert len(ids) == len(set(ids)), "ids are unique across the two inline drawings"
    # explanations: the data the hover/click panel shows, and the table, both per cell
    data = json.loads(next(s for s in scripts if s.get("type") == "application/json").text)
    assert len(data) == len(result["cells"])
    for i, (got, want) in enumerate(zip(data, result["cells"])):
        for key in ("from", "to", "port", "verdict", "egress", "ingress", "why", "request"):
            assert got[key] == want[key], (i, key)
        assert got.get("observed") == want.get("observed")
    by_i = {e.get("data-i"): e for e in by_class(matrix, "probe")}
    for i, c in enumerate(result["cells"]):  # data-i leads from the drawn cell to its explanation
        assert element_identity(by_i[str(i)]) == probe_identity(c)
    rows = page.findall(".//details[@id='all-probes']//tbody/tr")
    assert len(rows) == len(result["cells"])
    for tr, c in zip(rows, result["cells"]):
        tds = tr.findall("td")
        assert tds[0].text == c["from"] and tds[1].text == c["to"]
        assert [li.text for li in tr.findall(".//ol/li")] == c["why"]
        assert ("mismatch" in classes(tr)) == mismatch(c)
    # the script wires hover and click to the cells
    js = scripts[1].text
    for needle in ('"mouseover"', '"click"', '"Escape"', "cells-data", ".probe"):
        assert needle in js
    return page


def test_page_small_with_mismatches():
    result = small()
    page = check_page(page_html(result, "small <pack>"), result, graph=True)
    assert page.find(".//title").text == "small <pack>"
    listed = [li.text for li in page.findall(".//ul[@id='mismatches']/li")]
    assert len(listed) == 2 and all("MISMATCH" in t for t in listed)


def test_page_stars():
    check_page(page_html(stars(), "Stars"), stars(), graph=True)


def test_page_thirty_workloads_has_no_graph(thirty):
    check_page(page_html(thirty, "thirty"), thirty, graph=False)


def test_page_hostile_text_stays_text():
    result = small()
    text = page_html(result, "<script>alert(3)</script>")
    page = parse_html(text)
    assert [s.get("type") for s in page.iter("script")] == ["application/json", None]
    assert "<script>alert" not in text and "</script><script>" not in text


# ------------------------------------------------------------------------------------- edges

def test_formats_registry():
    result = small()
    assert set(FORMATS) == {"svg", "html", "graph"}
    assert FORMATS["svg"](result, "t") == matrix_svg(result, "t")
    assert FORMATS["html"](result, "t") == page_html(result, "t")
    assert FORMATS["graph"](result, "t") == graph_svg(result, "t")


def test_empty_result_renders():
    empty = {"workloads": [], "cells": []}
    parse_svg(matrix_svg(empty))
    parse_svg(graph_svg(empty))
    check_page(page_html(empty), empty, graph=False)


def test_workloads_without_cells_are_grey():
    result = {"workloads": ["a/x", "b/y"], "cells": []}
    svg = parse_svg(matrix_svg(result))
    check_matrix(svg, result)
    assert len(by_class(svg, "noprobe")) == 4


def test_null_observed_is_no_observation():
    result = stars()
    for c in result["cells"]:
        c["observed"] = None
    svg = parse_svg(matrix_svg(result))
    assert not [e for e in svg.iter() if e.get("data-observed") or e.get("data-mismatch")]
    assert "mismatch" not in {e.get("data-legend") for e in svg.iter()}


def test_input_does_not_change():
    result = small()
    before = copy.deepcopy(result)
    for fn in FORMATS.values():
        fn(result, "")
    assert result == before


@pytest.mark.parametrize("bad, message", [
    ({"cells": [{"from": "a/x", "to": "a/y", "port": 80, "verdict": "maybe"}]}, "cells[0]: verdict 'maybe'"),
    ({"cells": [{"from": "a/x", "port": 80, "verdict": "allow"}]}, "cells[0]: missing to"),
    ({"cells": "nope"}, "result:"),
    ({"cells": [{"from": "a/x", "to": "a/y", "port": "80", "verdict": "allow"}]}, "cells[0]: port '80'"),
])
def test_bad_input_is_named(bad, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        matrix_svg(bad)


def test_picture_modules_are_pure():
    for name in ("picture.py", "picture_bench.py"):
        tree = ast.parse((ROOT / "cilium_verdicts" / name).read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0].startswith("pulumi") for n in names), name


def test_bench_prints_times_and_writes_examples(tmp_path, capsys):
    assert picture_bench.main(["--repeat", "1", "--write-examples", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  svg +[0-9.]+ ms", out, re.M) and re.search(r"^  html +[0-9.]+ ms", out, re.M)
    for path in sorted(tmp_path.iterdir()):
        if path.suffix == ".svg":
            parse_svg(path.read_text())
        else:
            parse_html(path.read_text())


def test_docs_examples_are_current():
    """docs/ holds what the code draws now (regenerate: python3 -m cilium_verdicts.picture_bench
    --write-examples docs)."""
    stars_docs = picture_bench.stars_final()
    assert {(c["from"], c["to"]) for c in stars_docs["cells"] if c["verdict"] == "allow"} == STARS_ALLOWED
    for name, text in picture_bench.examples().items():
        assert (ROOT / "docs" / name).read_text() == text, f"docs/{name} is stale"


# ------------------------------------------------------------------------------------- issue 21, contract 8
# A new user's look at the pictures: a title, labels that never overlap, verdicts without colour, a graph
# that does not become a hairball, headers that stay in view, identical probes told apart.
EKS_STAGE = "allow-order-ingress-fail-debug"


def _cli(capsys, *argv) -> str:
    from model.__main__ import main as model_main
    assert model_main(["verdicts", *argv]) == 0
    return capsys.readouterr().out


@pytest.fixture
def eks(capsys) -> tuple[dict, str, str]:
    """eks-retail at the seed's fail-debug stage: the JSON, the SVG matrix and the HTML page."""
    args = ("--scenario", "eks-retail", "--stage", EKS_STAGE)
    return (json.loads(_cli(capsys, *args, "--format", "json")), _cli(capsys, *args, "--format", "svg"),
            _cli(capsys, *args, "--format", "html"))


def test_title_names_scenario_and_stage_or_files(eks, capsys, tmp_path):
    _, svg, html = eks
    title = [e.text for e in by_class(parse_svg(svg), "title")]
    assert title == [f"verdicts: scenario eks-retail, stage {EKS_STAGE}"]
    page = parse_html(html)
    assert page.find(".//title").text == page.find(".//h1").text == title[0]
    (tmp_path / "pods.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n")
    svg = parse_svg(_cli(capsys, "-f", str(tmp_path / "pods.yaml"), "--format", "svg"))
    assert [e.text for e in by_class(svg, "title")] == [f"verdicts: {tmp_path / 'pods.yaml'}"]


def _text_box(e: ET.Element) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of a one-line text, widths as the layout estimates them (picture._text_width)."""
    size, x, y = float(e.get("font-size")), float(e.get("x")), float(e.get("y"))
    w = picture._text_width(e.text, size) if len(e.text) > 1 else picture._text_width("M", size)
    x0 = {"start": x, "middle": x - w / 2, "end": x - w}[e.get("text-anchor") or "start"]
    return x0, y - size / 2, x0 + w, y + size / 2


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.parametrize("which", ["eks", "stars", "thirty"])
def test_subcell_texts_stay_inside_their_subcell_and_never_overlap(which, eks, thirty):
    """eks-retail fail-debug's ui -> catalog read "30 GET80 GET": two labels wider than their sub-cells."""
    result = {"eks": eks[0], "stars": stars(), "thirty": thirty}[which]
    svg = parse_svg(matrix_svg(result, which))
    rects = {e.get("data-i"): e for e in by_class(svg, "probe")}
    texts = by_class(svg, "probe-label") + by_class(svg, "probe-glyph")
    assert texts
    boxes = []
    for t in texts:
        r = rects[t.get("data-i")]
        x, y, w, h = (float(r.get(k)) for k in ("x", "y", "width", "height"))
        box = _text_box(t)
        assert x <= box[0] and box[2] <= x + w and y <= box[1] and box[3] <= y + h, (t.text, box, (x, y, w, h))
        boxes.append(box)
    assert not [(a, b) for n, a in enumerate(boxes) for b in boxes[n + 1:] if _overlap(a, b)]


# Machado, Oliveira & Fernandes (2009), "A Physiologically-based Model for Simulation of Color Vision
# Deficiency", IEEE TVCG 15(6): deuteranopia, severity 1.0, on linear RGB.
MACHADO_DEUTERANOPIA = ((0.367322, 0.860646, -0.227968), (0.280085, 0.672501, 0.047413),
                        (-0.011820, 0.042940, 0.968881))


def _deuteranope_lab(colour: str) -> tuple[float, float, float]:
    def linear(c):
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    rgb = [linear(int(colour[i:i + 2], 16) / 255) for i in (1, 3, 5)]
    r, g, b = (min(max(sum(m * c for m, c in zip(row, rgb)), 0), 1) for row in MACHADO_DEUTERANOPIA)
    x, y, z = (0.4124 * r + 0.3576 * g + 0.1805 * b, 0.2126 * r + 0.7152 * g + 0.0722 * b,
               0.0193 * r + 0.1192 * g + 0.9505 * b)

    def f(t):
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116
    fx, fy, fz = f(x / 0.95047), f(y), f(z / 1.08883)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def test_verdict_colours_stay_apart_for_deuteranopes():
    """CIE76 colour difference of every two verdict colours as a deuteranope sees them: at least 20
    (about 2.3 is a just-noticeable difference; the old green/red pair was 13.8)."""
    labs = {v: _deuteranope_lab(c) for v, c in picture.VERDICT_COLOURS.items()}
    for a, b in [(a, b) for n, a in enumerate(labs) for b in list(labs)[n + 1:]]:
        assert math.dist(labs[a], labs[b]) >= 20, (a, b, math.dist(labs[a], labs[b]))


def test_every_verdict_readable_without_colour(eks):
    """A glyph per verdict (distinct), and a hatching per verdict but allow (distinct patterns), on every
    sub-cell: the glyph where it fits, the hatching always."""
    result = small()
    svg = parse_svg(matrix_svg(result))
    assert len(set(picture.VERDICT_GLYPHS.values())) == 4
    glyphs = {e.get("data-i"): e for e in by_class(svg, "probe-glyph")}
    hatches = {e.get("data-i"): e for e in by_class(svg, "probe-hatch")}
    patterns = {e.get("id"): e.get("data-verdict") for e in svg.iter(f"{SVG}pattern")}
    for e in by_class(svg, "probe"):
        verdict, i = e.get("data-verdict"), e.get("data-i")
        if e.get("data-mismatch") != "true":
            assert glyphs[i].text == picture.VERDICT_GLYPHS[verdict]
        if verdict == "allow":
            assert i not in hatches
        else:
            ref = re.fullmatch(r"url\(#(.+)\)", hatches[i].get("fill")).group(1)
            assert patterns[ref] == verdict
    assert len(set(patterns.values())) == 3
    tiny = parse_svg(matrix_svg(picture_bench.synthetic()))  # 30 workloads: hatching even where no glyph fits
    assert len(by_class(tiny, "probe-hatch")) == sum(1 for e in by_class(tiny, "probe")
                                                     if e.get("data-verdict") != "allow")


def test_graph_groups_by_namespace_past_twelve_workloads_and_refuses_past_twelve_nodes(thirty, capsys):
    svg = parse_svg(graph_svg(thirty))
    nodes = [e.get("data-endpoint") for e in by_class(svg, "node")]
    def group(e):  # a workload's namespace node; world destinations stay nodes of their own
        return e if e.startswith("world:") else picture.split_endpoint(e)[0] + "/*"
    namespaces = {group(w) for w in thirty["workloads"]} | {group(c["to"]) for c in thirty["cells"]}
    assert len(nodes) == len(namespaces) < 12 and set(nodes) == namespaces
    allowed = {(group(c["from"]), group(c["to"])) for c in thirty["cells"] if c["verdict"] == "allow"}
    assert set(edges(svg)) == allowed
    many = {"workloads": [f"ns{i}/w" for i in range(13)], "cells": []}
    with pytest.raises(ValueError, match="13 namespaces"):
        graph_svg(many)
    assert set(edges(parse_svg(graph_svg(stars())))) == STARS_ALLOWED  # few workloads: as before


def test_html_headers_stay_visible_while_scrolling(eks):
    """The matrix scrolls inside its box; its row and column headers (each on its own background, drawn
    over the cells) are moved by the scroll handler; the table's header row is sticky."""
    page = parse_html(eks[2])
    style = page.find(".//style").text
    assert re.search(r"thead th \{[^}]*position: sticky; top: 0", style)
    assert re.search(r"\.figure \{[^}]*overflow: auto;[^}]*max-height", style)
    matrix = svg_in(page, "matrix")
    order = [next(iter(classes(e) & {"cells", "row-header", "col-header", "corner"}), None) for e in matrix]
    order = [o for o in order if o]
    assert order == ["cells", "row-header", "col-header", "corner"]
    for name in ("row-header", "col-header", "corner"):
        group = by_class(matrix, name)[0]
        assert "header-bg" in classes(group[0]) and group[0].get("fill") == "#ffffff"
    js = [e for e in page.iter("script") if e.get("type") is None][0].text
    assert '"scroll"' in js and ".row-header" in js and ".col-header" in js and "translate(" in js


def test_identical_probes_are_told_apart(eks):
    """eks-retail's catalog -> catalog-mysql:3306 twice: before and after ``kubectl rollout restart``."""
    result, svg_text, html = eks
    same = [i for i, c in enumerate(result["cells"]) if (c["from"], c["to"]) == ("catalog/catalog", "catalog/catalog-mysql")]
    assert len(same) == 2
    svg = parse_svg(svg_text)
    subs = [e for e in by_class(svg, "probe") if e.get("data-i") in {str(i) for i in same}]
    assert sorted(e.get("data-repeat") for e in subs) == ["1/2", "2/2"]
    titles = [e.find(f"{SVG}title").text for e in subs]
    assert len(set(titles)) == 2 and all("identical probe #" in t for t in titles)
    labels = sorted(e.text for e in by_class(svg, "probe-label") if e.get("data-i") in {str(i) for i in same})
    assert labels in (["#1", "#2"], ["3306 #1", "3306 #2"])
    page = parse_html(html)
    data = json.loads(next(s for s in page.iter("script") if s.get("type") == "application/json").text)
    assert [data[i]["repeat"] for i in same] == ["#1 of 2, in probe order", "#2 of 2, in probe order"]
