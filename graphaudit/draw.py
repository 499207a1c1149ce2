"""Pictures of graphs and reports: DOT source, PNG and SVG files, the notebook view.

A report has two views (DESIGN.md, "Pictures"). *separate*: every node of the separate
(or original) form, each ``grad`` call's nodes in their own cluster, forward nodes grey,
duplicated nodes red, canonical ones white. *merged*: the merged graph, each node shaded
and labelled (``x3``) by how many nodes of the separate form merged into it.

``dot`` chokes on graphs of thousands of nodes, and the separate form of a deep network
has millions, so a graph above ``max_nodes`` is summarised in tiers, the first that fits
winning: the forward part as one box; then one box per grad call (separate view) or per
vjp rule (merged view); then runs of those boxes packed together. The picture's title says
what was collapsed. Node ids in the DOT text are positions in a topological order, never
``id()`` or ``Node.id``, and nothing iterates a set: the same graph gives the same text in
every process.
"""

from __future__ import annotations

import html
import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import graphviz

from graphaudit.describe import adjoint_target, forward_names, leaf_text, operand_text, seconds_text, si
from graphaudit.errors import GraphauditError
from graphaudit.graph import GradCall, Node, check_nodes, topological_order
from graphaudit.merge import MergeResult

if TYPE_CHECKING:  # reports call the drawing functions, which only read them
    from graphaudit.report import Report

MAX_NODES = 300
VIEWS = ("merged", "separate")
FORMATS = {".png": "png", ".svg": "svg", ".dot": None, ".gv": None}  # None: the DOT text itself
EDGES_PER_NODE = 4  # at most this many edges per drawn node: summaries of dense graphs stay drawable
LINE_LENGTH = 48  # longer label lines are cut: a node is a box, not a paragraph
TITLE_LENGTH = 120
ROW = 8  # unconnected boxes per row

FORWARD_FILL = "lightgrey"
CANONICAL_FILL = "white"
DUPLICATED_FILL = "#f26b63"
SEMANTIC_FILL = "#f5b041"  # found only by semantic merging: an equal value written differently
FEED_EDGE = "grey65"  # edges from forward nodes into the backward pass: context, not the story
# ColorBrewer "Reds", for 2, 3, ... copies; beyond 9 copies the scale stretches to the maximum.
SHADES = ("#fee0d2", "#fcbba1", "#fc9272", "#fb6a4a", "#ef3b2c", "#cb181d", "#a50f15", "#67000d")
DARK_SHADES = 3  # the last three shades need white text


class GraphvizMissingError(GraphauditError, RuntimeError):
    """PNG or SVG was asked for, but the Graphviz ``dot`` program is not installed."""


# --- the views -------------------------------------------------------------------------------


class _View:
    """How to draw one graph: the plain picture (forward grey, backward white, a cluster per call).

    Subclasses change the colours, the extra label line and how backward nodes are grouped
    when the graph must be summarised.
    """

    group_noun = "grad call"
    clusters = True
    summary_legend = "double border: a summary of many nodes"

    def __init__(self, order: list[Node], names: dict[Node, str], title: str):
        self.order = order
        self.names = names
        self.title = title
        self.calls: dict[GradCall, int] = {}  # each grad call's position, by first appearance
        for node in order:
            if node.call is not None and node.call not in self.calls:
                self.calls[node.call] = len(self.calls)

    def source(self, node: Node) -> Node:
        """The node of the user's graph that ``node`` stands for (its labels and provenance)."""
        return node

    def label(self, node: Node) -> list[str]:
        """``matmul = d(sigmoid_1)`` over ``128x3000 @ 3000x5000``; a leaf by its name."""
        if node.is_leaf:
            return [leaf_text(node)]
        node = self.source(node)
        head = self.name(node)
        target = adjoint_target(node)
        if target is not None:
            head = f"{head} = d({self.name(target)})"
        return [head, operand_text(node)]

    def name(self, node: Node) -> str:
        """A leaf's name, a forward node's readable name (``sigmoid_2``), else its op."""
        return leaf_text(node) if node.is_leaf else self.names.get(node, node.op)

    def fill(self, node: Node) -> tuple[str, str]:
        """Fill and font colour of an operation."""
        return (FORWARD_FILL if node.call is None else CANONICAL_FILL), "black"

    def group(self, node: Node) -> tuple[Hashable, str]:
        """Key and title of the summary box a backward node goes into: its grad call."""
        call = node.call
        return self.calls[call], call.label

    def tally(self, nodes: list[Node]) -> tuple[str, dict[str, str]]:
        """A summary box's count line and its colours."""
        return _count(nodes), {"fillcolor": _base_fill(nodes)}

    def legend(self) -> list[tuple[str, str]]:
        return [(FORWARD_FILL, "forward"), (CANONICAL_FILL, "backward (built by a grad call)")]


class _SeparateView(_View):
    """Every node of the separate form: red where merging finds an equal, earlier node."""

    summary_legend = "double border: a summary; its red share is the duplicated share"

    def __init__(self, order: list[Node], names: dict[Node, str], title: str, result: MergeResult,
                 semantic: frozenset[Node] = frozenset()):
        super().__init__(order, names, title)
        self.duplicates = result.duplicates
        self.semantic = semantic

    def fill(self, node: Node) -> tuple[str, str]:
        if node in self.duplicates:
            return DUPLICATED_FILL, "black"
        if node in self.semantic:
            return SEMANTIC_FILL, "black"
        return super().fill(node)

    def tally(self, nodes: list[Node]) -> tuple[str, dict[str, str]]:
        ops = _operations(nodes)
        duplicated = sum(1 for n in nodes if n in self.duplicates and not n.is_leaf)
        if not duplicated:
            return f"{_count(nodes)}, none duplicated", {"fillcolor": _base_fill(nodes)}
        if duplicated == ops:
            return f"{_count(nodes)}, all duplicated", {"fillcolor": DUPLICATED_FILL}
        # Stripes: the red share of the box is the duplicated share of its nodes.
        stripes = f"{DUPLICATED_FILL};{duplicated / ops:.2f}:{_base_fill(nodes)}"
        return f"{_count(nodes)}: {duplicated} duplicated, {ops - duplicated} canonical", {
            "fillcolor": stripes,
            "style": "striped",
        }

    def legend(self) -> list[tuple[str, str]]:
        return [
            (FORWARD_FILL, "forward"),
            (CANONICAL_FILL, "canonical: first of its kind"),
            (DUPLICATED_FILL, "duplicated: equal to an earlier node"),
        ] + ([(SEMANTIC_FILL, "semantic duplicate: an equal value written differently, or read only by one")]
             if self.semantic else [])


class _MergedView(_View):
    """The merged graph: each node shaded and labelled by how many nodes merged into it."""

    group_noun = "vjp rule"
    clusters = False
    summary_legend = "double border: a summary, shaded by its largest xN"

    def __init__(self, order: list[Node], names: dict[Node, str], title: str, result: MergeResult,
                 semantic: frozenset[Node] = frozenset()):
        super().__init__(order, names, title)
        self.result = result
        self.semantic = semantic
        self.originals: dict[Node, Node] = {}
        for original, merged in result.mapping.items():  # insertion order: the first copy wins
            self.originals.setdefault(merged, original)
        self.most = max((result.copies(n) for n in order if not n.is_leaf), default=1)

    def source(self, node: Node) -> Node:
        return self.originals.get(node, node)

    def label(self, node: Node) -> list[str]:
        lines = super().label(node)
        copies = self.result.copies(node)
        if not node.is_leaf and (node.call is not None or copies > 1):
            lines.append(f"x{copies}")
        return lines

    def fill(self, node: Node) -> tuple[str, str]:
        copies = self.result.copies(node)
        if node in self.semantic:
            return SEMANTIC_FILL, "black"
        if node.call is None and copies == 1:
            return FORWARD_FILL, "black"
        return _shade(copies, self.most)

    def group(self, node: Node) -> tuple[Hashable, str]:
        origin = self.source(node).origin
        if origin is None:
            return super().group(node)
        return origin, f"vjp of {self.name(origin)}"

    def tally(self, nodes: list[Node]) -> tuple[str, dict[str, str]]:
        copies = [self.result.copies(n) for n in nodes if not n.is_leaf]
        low, high = min(copies, default=1), max(copies, default=1)
        span = f"x{low}" if low == high else f"x{low}-x{high}"
        fill, font = (_base_fill(nodes), "black") if high == 1 else _shade(high, self.most)
        return f"{_count(nodes)}, {span}", {"fillcolor": fill, "fontcolor": font}

    def legend(self) -> list[tuple[str, str]]:
        rows = [(FORWARD_FILL, "forward"), (CANONICAL_FILL, "x1: built once")]
        runs: dict[str, list[int]] = {}
        for copies in range(2, self.most + 1):
            runs.setdefault(_shade(copies, self.most)[0], []).append(copies)
        for colour, run in runs.items():
            low, high = run[0], run[-1]
            text = f"x{low}: built {low} times" if low == high else f"x{low}-x{high}: built {low} to {high} times"
            rows.append((colour, text))
        if self.semantic:
            rows.append((SEMANTIC_FILL, "semantic duplicate: an equal value written differently, or read only by one"))
        return rows


def _shade(copies: int, most: int) -> tuple[str, str]:
    """Fill and font colour for ``copies``: white for one, darker reds for more."""
    if copies <= 1:
        return CANONICAL_FILL, "black"
    if most <= len(SHADES) + 1:
        index = copies - 2
    else:
        index = (copies - 2) * (len(SHADES) - 1) // (most - 2)
    return SHADES[index], ("white" if index >= len(SHADES) - DARK_SHADES else "black")


def _base_fill(nodes: list[Node]) -> str:
    """Grey for a box of forward nodes, white for backward ones (a box never mixes them)."""
    return FORWARD_FILL if nodes[-1].call is None else CANONICAL_FILL


def _count(nodes: Sequence[Node]) -> str:
    """``1 node``, ``12 nodes``: operations only, as in the report."""
    ops = _operations(nodes)
    return "1 node" if ops == 1 else f"{ops} nodes"


def _operations(nodes: Sequence[Node]) -> int:
    return sum(1 for n in nodes if not n.is_leaf)


# --- summarising ---------------------------------------------------------------------------


@dataclass
class _Box:
    """What one DOT node draws: a single graph node (``title`` empty) or a summary of many."""

    nodes: list[Node]
    title: str = ""
    forward: bool = False  # the summary of the whole forward part


def _plan(view: _View, max_nodes: int) -> tuple[list[_Box], list[str]]:
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
    notes.append(f"the forward part ({_operations(forward)} operations) collapsed into one box")
    if len(head) + len(backward) <= max_nodes:
        return head + [_Box([n]) for n in backward], notes
    groups: dict[Hashable, _Box] = {}
    for node in backward:
        key, title = view.group(node)
        box = groups.get(key)
        if box is None:
            box = groups[key] = _Box([], title)
        box.nodes.append(node)
    notes.append(f"the backward nodes of each {view.group_noun} collapsed into one box")
    boxes = list(groups.values())
    budget = max_nodes - len(head)
    if len(boxes) <= budget:
        return head + boxes, notes
    packed = []
    for a, b in _runs(len(boxes), budget):
        title = f"{b - a} {view.group_noun}s\n{boxes[a].title}\n...\n{boxes[b - 1].title}"
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
            if len(piece) > limit:
                piece = piece[: limit - 3] + "..."
            parts.append(piece.replace("\\", "\\\\"))
    return graphviz.nohtml("\\n".join(parts))


def _legend(rows: list[tuple[str, str]]) -> str:
    """An HTML-like table of colour swatches: the key to the picture."""
    cells = "".join(
        f'<tr><td bgcolor="{colour}" width="18"> </td><td align="left">{html.escape(text)}</td></tr>'
        for colour, text in rows
    )
    return f'<<table border="0" cellborder="1" cellspacing="0" cellpadding="3">{cells}</table>>'


def _draw(view: _View, max_nodes: int) -> str:
    """The DOT source of ``view``: nodes (or summary boxes), clusters, edges, legend and title."""
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

    clusters: dict[GradCall | None, graphviz.Digraph] = {}  # None: the forward part
    for index, box in enumerate(boxes):
        target = graph
        if view.clusters and not box.title:
            call = box.nodes[0].call
            target = clusters.get(call)
            if target is None:
                name, label = ("forward", "forward") if call is None else (f"call_{view.calls[call]}", call.label)
                target = clusters[call] = graphviz.Digraph(f"cluster_{name}")
                target.attr(label=_text(label), style="rounded", color="grey40", fontsize="11")
        target.node(f"n{index}", **_node_attrs(view, box))
    for cluster in clusters.values():
        graph.subgraph(cluster)

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
    for start, end in drawn:
        feed = boxes[start].nodes[0].call is None and boxes[end].nodes[-1].call is not None
        graph.edge(f"n{start}", f"n{end}", **({"color": FEED_EDGE} if feed else {}))
    _wrap(graph, boxes, drawn)

    legend = view.legend() + ([(CANONICAL_FILL, view.summary_legend)] if any(box.title for box in boxes) else [])
    graph.node("legend", _legend(legend), shape="plaintext", style="", fontsize="9")
    graph.attr(label=_text(view.title, *notes, limit=TITLE_LENGTH))
    return graph.source


def _wrap(graph: graphviz.Digraph, boxes: list[_Box], edges: list[tuple[int, int]]) -> None:
    """Lay unconnected boxes out in rows of ``ROW`` (invisible edges), not in one endless row.

    A summary of 100 grad calls is 100 boxes with no edges between them, which ``dot``
    would put side by side.
    """
    linked = {end for edge in edges for end in edge}
    loose = [index for index in range(len(boxes)) if index not in linked]
    for above, below in zip(loose, loose[ROW:]):
        graph.edge(f"n{above}", f"n{below}", style="invis")


def _node_attrs(view: _View, box: _Box) -> dict[str, str]:
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
    title = f"graph: {_operations(order)} operations"
    names = forward_names(order) if len(order) <= max_nodes else {}  # only drawn nodes need names
    return _draw(_View(order, names, title), max_nodes)


def report_dot(report: Report, view: str = "merged", *, max_nodes: int = MAX_NODES) -> str:
    """DOT source of a report's ``"merged"`` or ``"separate"`` view (see the module docstring)."""
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}: choose one of {', '.join(map(repr, VIEWS))}")
    subject = report.subject
    result = report.merges[subject]
    duplicated = report.duplicated["nodes"]
    form = f"{subject} form" if report.kind == "grad" else "graph"
    semantic = report.semantic_duplicates
    also = f", {len(semantic)} more semantic (orange)" if semantic else ""
    if view == "separate":
        order = topological_order(report.forms[subject].outputs)
        calls = f"{len(report.wrt)} grad calls, one per parameter; " if report.kind == "grad" else ""
        title = f"{form}: {calls}{_operations(order)} operations, {duplicated} duplicated (red){also}"
        return _draw(_SeparateView(order, report.names, title, result, frozenset(semantic)), max_nodes)
    order = topological_order(result.outputs)
    title = f"merged {form}: {_operations(order)} operations; xN: N copies in the {subject} form merged into one{also}"
    merged = frozenset(result.mapping[node] for node in semantic)
    return _draw(_MergedView(order, report.names, title, result, merged), max_nodes)


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
    """Write a report's view to ``path`` (PNG, SVG or DOT by suffix); ``options`` go to :func:`report_dot`."""
    return render(report_dot(report, view, **options), path)


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
