"""Pictures of graphs and reports: DOT source, PNG and SVG files, the notebook view.

A report has two views (README.md, "Reading the pictures"). *separate*: every node of the separate
(or original) form, each ``grad`` call's nodes in their own cluster, forward nodes grey,
duplicated nodes red, canonical ones white. *merged*: the merged graph, each node shaded
and labelled (``x3``) by how many nodes of the separate form merged into it. What a box
says and how it is coloured is :mod:`graphaudit.views.picture`'s; this module lays boxes out.

``dot`` chokes on graphs of thousands of nodes, and the separate form of a deep network
has millions, so a graph above ``max_nodes`` is summarised in tiers, the first that fits
winning: the forward part as one box; then one box per grad call (separate view) or per
vjp rule (merged view); then runs of those boxes packed together. The picture's title says
what was collapsed. Pictures keep a bounded aspect ratio: unconnected boxes wrap into
rows, and a PNG or SVG taller than ``1 : MAX_ASPECT`` is folded into parts side by side.
Node ids in the DOT text are positions in a topological order, never
``id()`` or ``Node.id``, and nothing iterates a set: the same graph gives the same text in
every process.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import graphviz

from graphaudit.core.describe import abbreviate, forward_names, seconds_text, si
from graphaudit.errors import GraphauditError
from graphaudit.core.graph import Node, check_nodes, topological_order
from graphaudit.views.picture import (  # the colours are the key to every picture: importable from here too
    CANONICAL_FILL,
    DUPLICATED_FILL,  # noqa: F401
    FEED_EDGE,
    FORWARD_FILL,  # noqa: F401
    LINE_LENGTH,
    MergedView,
    SeparateView,
    View,
    operations,
)

if TYPE_CHECKING:  # reports call the drawing functions, which only read them
    from graphaudit.analysis.report import Report

MAX_NODES = 300
VIEWS = ("merged", "separate")
FORMATS = {".png": "png", ".svg": "svg", ".dot": None, ".gv": None}  # None: the DOT text itself
EDGES_PER_NODE = 4  # at most this many edges per drawn node: summaries of dense graphs stay drawable
TITLE_LENGTH = 120
ASPECT = 1.5  # unconnected boxes wrap into rows so the grid is about this wide for one high
MAX_ASPECT = 3  # a picture taller than 1 : MAX_ASPECT is folded into columns
CHAR_WIDTH, ROW_HEIGHT = 7, 75  # a label character's width and a row's height, in points (fontsize 10)



class GraphvizMissingError(GraphauditError, RuntimeError):
    """PNG or SVG was asked for, but the Graphviz ``dot`` program is not installed."""


# --- the views -------------------------------------------------------------------------------

# --- summarising ---------------------------------------------------------------------------


@dataclass
class _Box:
    """What one DOT node draws: a single graph node (``title`` empty) or a summary of many."""

    nodes: list[Node]
    title: str = ""
    forward: bool = False  # the summary of the whole forward part


def _plan(view: View, max_nodes: int) -> tuple[list[_Box], list[str]]:
    """The boxes to draw, at most ``max_nodes``, and notes saying what was collapsed (if anything)."""
    order = view.order
    if len(order) <= max_nodes:
        return [_Box([n]) for n in order], []
    notes = [f"summarised: {len(order)} nodes > max_nodes={max_nodes}"]
    forward = [n for n in order if n.call is None]
    backward = [n for n in order if n.call is not None]
    if not backward:
        boxes = [_Box(order[a:b], f"nodes {a + 1}-{b}") for a, b in _runs(len(order), max_nodes)]
        return boxes, notes + [f"runs of nodes in topological order collapsed into {len(boxes)} boxes"]
    head = [_Box(forward, "forward", forward=True)] if forward else []
    notes.append(f"the forward part ({operations(forward)} operations) collapsed into one box")
    if len(head) + len(backward) <= max_nodes:
        return head + [_Box([n]) for n in backward], notes
    groups: dict[Hashable, _Box] = {}
    kinds: dict[str, None] = {}
    for node in backward:
        key, title, kind = view.group(node)
        kinds[kind] = None
        box = groups.get(key)
        if box is None:
            box = groups[key] = _Box([], title)
        box.nodes.append(node)
    noun = " or ".join(kinds)
    notes.append(f"one box per {noun}: the backward nodes it built")
    boxes = list(groups.values())
    budget = max_nodes - len(head)
    if len(boxes) <= budget:
        return head + boxes, notes
    packed = []
    for a, b in _runs(len(boxes), budget):
        title = f"{b - a} boxes\n{boxes[a].title}\n...\n{boxes[b - 1].title}"
        packed.append(_Box([n for box in boxes[a:b] for n in box.nodes], title))
    return head + packed, notes + [f"runs of those {len(boxes)} boxes packed into {len(packed)}"]


def _runs(count: int, budget: int) -> list[tuple[int, int]]:
    """``range(count)`` cut into ``budget`` runs of (nearly) equal length, as ``(start, stop)``."""
    return [(k * count // budget, (k + 1) * count // budget) for k in range(budget)]


# --- DOT -------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _text(*lines: str, limit: int = LINE_LENGTH) -> str:
    """A DOT label: each line escaped (backslashes, quotes, ``<...>``), joined by DOT line breaks.

    Newlines inside a line become line breaks, other control characters ``?``, and long
    lines are cut, so no name can break the DOT syntax or the layout.
    """
    parts = []
    for line in lines:
        for piece in line.splitlines() or [""]:
            piece = _CONTROL.sub("?", piece)
            piece = abbreviate(piece, limit)
            parts.append(piece.replace("\\", "\\\\"))
    return graphviz.nohtml("\\n".join(parts))


def _legend(rows: list[tuple[str, str]]) -> str:
    """An HTML-like table of colour swatches: the key to the picture."""
    cells = "".join(
        f'<tr><td bgcolor="{colour}" width="18"> </td><td align="left">{html.escape(text)}</td></tr>'
        for colour, text in rows
    )
    return f'<<table border="0" cellborder="1" cellspacing="0" cellpadding="3">{cells}</table>>'


def _draw(view: View, max_nodes: int, columns: int = 1) -> str:
    """The DOT source of ``view``: nodes (or summary boxes), clusters, edges, legend and title.

    ``columns > 1`` folds a tall picture into side-by-side parts (see :func:`_fold`).
    """
    if max_nodes < 2:
        raise ValueError(f"max_nodes must be at least 2, got {max_nodes}")
    boxes, notes = _plan(view, max_nodes)
    box_of: dict[Node, int] = {}
    for index, box in enumerate(boxes):
        for node in box.nodes:
            box_of[node] = index

    graph = graphviz.Digraph("graphaudit")
    # nslimit caps dot's network-simplex passes, which otherwise take minutes on long summarised chains.
    graph.attr(rankdir="TB", labelloc="t", fontname="Helvetica", fontsize="14", nodesep="0.2", ranksep="0.3")
    graph.attr(nslimit="5")
    graph.attr("node", shape="box", style="rounded,filled", fontname="Helvetica", fontsize="10", height="0.3")
    graph.attr("edge", arrowsize="0.6")

    edges: dict[tuple[int, int], None] = {}
    for index, box in enumerate(boxes):
        for node in box.nodes:
            for source in node.inputs:
                start = box_of[source]
                summary = boxes[start].title
                # The forward box and a summary's constants feed everything: edges from them are noise.
                if start != index and not (boxes[start].forward or (summary and source.is_leaf)):
                    edges[start, index] = None
    if boxes[0].forward:
        notes.append("edges out of the forward box not drawn: every backward box reads it")
    limit = EDGES_PER_NODE * max_nodes
    if len(edges) > limit:
        notes.append(f"only the first {limit} of {len(edges)} edges drawn")
    drawn = list(edges)[:limit]
    part = _fold(len(boxes), drawn, columns if not view.clusters else 1)
    if max(part, default=0):
        notes.append(f"folded into {max(part) + 1} parts, left to right, so the picture is not one long strip")

    clusters: dict[object, graphviz.Digraph] = {}  # a grad call (None: the forward part), or a fold's part
    for index, box in enumerate(boxes):
        target = graph
        if view.clusters and not box.title:
            call = box.nodes[0].call
            target = clusters.get(call)
            if target is None:
                name, label = ("forward", "forward") if call is None else (f"call_{view.calls[call]}", view.call_names[call])
                target = clusters[call] = graphviz.Digraph(f"cluster_{name}")
                target.attr(label=_text(label), style="rounded", color="grey40", fontsize="11")
        elif part[-1]:
            target = clusters.get(part[index])
            if target is None:
                target = clusters[part[index]] = graphviz.Digraph(f"cluster_part_{part[index]}")
                target.attr(label=f"part {part[index] + 1}", style="dashed", color="grey70", fontsize="11")
        target.node(f"n{index}", **_node_attrs(view, box))
    for cluster in clusters.values():
        graph.subgraph(cluster)
    for start, end in drawn:
        feed = boxes[start].nodes[0].call is None and boxes[end].nodes[-1].call is not None
        graph.edge(f"n{start}", f"n{end}", **({"color": FEED_EDGE} if feed else {}),
                   **({"constraint": "false", "style": "dashed"} if part[start] != part[end] else {}))
    _wrap(graph, boxes, drawn)

    legend = view.legend() + ([(CANONICAL_FILL, view.summary_legend)] if any(box.title for box in boxes) else [])
    graph.node("legend", _legend(legend), shape="plaintext", style="", fontsize="9")
    graph.attr(label=_text(view.title, *notes, limit=TITLE_LENGTH))
    return graph.source


def _fold(count: int, edges: list[tuple[int, int]], columns: int) -> list[int]:
    """Each box's part when a tall picture is folded into ``columns`` side by side.

    A box's rank is its longest path from a source; ranks are cut into ``columns`` equal
    runs. Edges between parts do not constrain the ranking (``constraint=false``), so each
    part starts at the top, beside the one before it.
    """
    if columns <= 1 or count == 0:
        return [0] * count
    rank = [0] * count
    for start, end in sorted(edges, key=lambda edge: edge[1]):  # by target: inputs are ranked first
        if start < end:
            rank[end] = max(rank[end], rank[start] + 1)
    depth = max(rank) + 1
    return [r * columns // depth for r in rank]


def _wrap(graph: graphviz.Digraph, boxes: list[_Box], edges: list[tuple[int, int]]) -> None:
    """Lay unconnected boxes out in rows (invisible edges), not in one endless row.

    A summary of 100 grad calls is 100 boxes with no edges between them, which ``dot``
    would put side by side. The rows are as long as keeps the grid about ``ASPECT`` wide
    for one high, judged from the boxes' label lengths.
    """
    linked = {end for edge in edges for end in edge}
    loose = [index for index in range(len(boxes)) if index not in linked]
    if not loose:
        return
    chars = max(len(line) for index in loose for line in (boxes[index].title or "x" * 20).splitlines())
    width = CHAR_WIDTH * min(chars, LINE_LENGTH) + 40
    row = max(2, math.ceil(math.sqrt(ASPECT * len(loose) * ROW_HEIGHT / width)))
    for above, below in zip(loose, loose[row:]):
        graph.edge(f"n{above}", f"n{below}", style="invis")


def _node_attrs(view: View, box: _Box) -> dict[str, str]:
    if box.title:
        count, colours = view.tally(box.nodes)
        return {"label": _text(box.title, count), "peripheries": "2", **colours}
    node = box.nodes[0]
    if node.is_leaf:
        shape = "plaintext" if node.op == "constant" else "ellipse"
        return {"label": _text(*view.label(node)), "shape": shape, "style": "", "fontsize": "9", "height": "0.2"}
    fill, font = view.fill(node)
    return {"label": _text(*view.label(node)), "fillcolor": fill, "fontcolor": font}


# --- public API ------------------------------------------------------------------------------


def to_dot(outputs: Node | Sequence[Node], *, max_nodes: int = MAX_NODES) -> str:
    """DOT source of any graph: forward nodes grey, backward white, each grad call a cluster."""
    outputs = [outputs] if isinstance(outputs, Node) else check_nodes(outputs, "to_dot: outputs")
    order = topological_order(outputs)
    title = f"graph: {operations(order)} operations"
    names = forward_names(order) if len(order) <= max_nodes else {}  # only drawn nodes need names
    return _draw(View(order, names, title), max_nodes)


def report_dot(report: Report, view: str = "merged", *, max_nodes: int = MAX_NODES, columns: int = 1) -> str:
    """DOT source of a report's ``"merged"`` or ``"separate"`` view (see the module docstring)."""
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}: choose one of {', '.join(map(repr, VIEWS))}")
    audited = report.audited_form
    result = report.merges[audited]
    duplicated = report.duplicated["nodes"]
    form = f"{audited} form" if report.kind == "grad" else "graph"
    semantic = report.semantic_duplicates
    also = f", {len(semantic)} more semantic (orange)" if semantic else ""
    grads = report.kind == "grad"
    if view == "separate":
        order = topological_order(report.forms[audited].outputs)
        calls = f"{len(report.wrt)} grad calls, one per parameter; " if grads else ""
        title = f"{form}: {calls}{operations(order)} operations, {duplicated} duplicated (red){also}"
        return _draw(SeparateView(order, report.names, title, result, grads, frozenset(semantic)), max_nodes, columns)
    order = topological_order(result.outputs)
    title = f"merged {form}: {operations(order)} operations; xN: N copies in the {audited} form merged into one{also}"
    merged = frozenset(result.mapping[node] for node in semantic)
    return _draw(MergedView(order, report.names, title, result, grads, merged), max_nodes, columns)


def render(dot_source: str, path: str | Path) -> str:
    """Write ``dot_source`` to ``path`` as PNG, SVG or DOT, by its suffix. Returns the path."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"cannot render to {str(path)!r}: unknown suffix {suffix!r} (use {', '.join(FORMATS)})")
    folder = target.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot render to {str(path)!r}: the folder {str(folder)!r} does not exist")
    file_format = FORMATS[suffix]
    if file_format is None:
        target.write_text(dot_source, encoding="utf-8")
    else:
        target.write_bytes(_pipe(dot_source, file_format))
    return str(path)


def render_report(report: Report, path: str | Path, view: str = "merged", **options: int) -> str:
    """Write a report's view to ``path`` (PNG, SVG or DOT by suffix); ``options`` go to :func:`report_dot`.

    A PNG or SVG taller than ``1 : MAX_ASPECT`` is laid out again folded into columns.
    """
    source = report_dot(report, view, **options)
    if FORMATS.get(Path(path).suffix.lower()):
        columns = _columns_for(source)
        if columns > 1:
            source = report_dot(report, view, columns=columns, **options)
    return render(source, path)


def _columns_for(dot_source: str) -> int:
    """How many side-by-side parts bring a tall layout's height to about ``ASPECT`` times its width."""
    header = _pipe(dot_source, "plain").split(b"\n", 1)[0].split()  # graph <scale> <width> <height>
    width, height = float(header[2]), float(header[3])
    if height <= MAX_ASPECT * width:
        return 1
    return math.ceil(math.sqrt(height / width / ASPECT))


def report_html(report: Report) -> str:
    """The notebook view: the forms as a table, then the merged picture (when ``dot`` is installed)."""
    data = report.to_dict()
    columns = ("form", "nodes", "backward", "FLOPs", "matmul FLOPs", "bytes", "build")
    head = "<tr>" + "".join(f"<th>{c}</th>" for c in columns) + "</tr>"
    rows = "".join(
        f"<tr><td>{html.escape(name.replace('_', ' '))}</td><td>{f['nodes']}</td><td>{f['backward_nodes']}</td>"
        f"<td>{si(f['flops'], 'FLOP')}</td><td>{si(f['matmul_flops'], 'FLOP')}</td><td>{si(f['bytes'], 'B')}</td>"
        f"<td>{seconds_text(f['build_seconds'])}</td></tr>"
        for name, f in data["forms"].items()
    )
    headline, verdict = report.headline(), report.verdict()
    try:
        svg = _pipe(report_dot(report, "merged"), "svg").decode("utf-8")
        picture = svg[svg.index("<svg") :]
    except GraphvizMissingError as error:
        picture = f"<p><i>{html.escape(str(error))}</i></p>"
    return (
        f'<div class="graphaudit-report"><p><b>{html.escape(headline)}</b></p>'
        f"<table>{head}{rows}</table><p>{html.escape(verdict)}</p>{picture}</div>"
    )


def _pipe(dot_source: str, file_format: str) -> bytes:
    """``dot_source`` laid out by ``dot`` as ``file_format`` bytes."""
    try:
        return graphviz.pipe("dot", file_format, dot_source.encode("utf-8"))
    except graphviz.ExecutableNotFound:
        raise GraphvizMissingError(
            f"{file_format.upper()} output needs the Graphviz `dot` program, which is not on PATH: "
            "install Graphviz: apt-get install graphviz (macOS: brew install graphviz); "
            "a .dot file can be written without it"
        ) from None
