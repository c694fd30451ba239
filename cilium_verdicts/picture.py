"""The connectivity picture: a verdict result (the evaluator's JSON contract) drawn as a matrix SVG
(picture_matrix), a graph SVG (picture_graph) and one self-contained HTML page (picture_page), from
the data they share (picture_data). ``FORMATS``: format name -> function(result, title) -> text."""
from __future__ import annotations

from .picture_data import (  # noqa: F401
    VERDICT_COLOURS,
    VERDICT_GLYPHS,
    _text_width,
    split_endpoint,
)
from .picture_graph import graph_svg
from .picture_matrix import matrix_svg
from .picture_page import page_html


def _svg_format(result: dict, title: str) -> str:
    return matrix_svg(result, title)


def _html_format(result: dict, title: str) -> str:
    return page_html(result, title)


def _graph_format(result: dict, title: str) -> str:
    return graph_svg(result, title)


FORMATS = {"svg": _svg_format, "html": _html_format, "graph": _graph_format}
