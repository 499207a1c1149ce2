"""The interactive HTML report: one self-contained file that works offline.

The page holds the report's summary (the text report's headline, table and verdicts), its
top duplicated subexpressions, and both views of the graph (:mod:`graphaudit.views.overlay`) as
compact JSON columns. The browser draws the graph (``assets/report.js``): groups start
collapsed, and only the groups the user has opened are laid out, each by the vendored dagre
(``vendor/dagre.min.js``, MIT), so a 50k-node separate form opens as fast as a small one.
Everything is inlined: the page makes no network request.

The same report gives the same bytes in every process: the JSON is built from lists in
topological order, never from sets or ``id()``.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from pathlib import Path

from graphaudit.core.describe import seconds_text, si
from graphaudit.views.groups import Group
from graphaudit.views.overlay import VIEWS, ViewData, view_data

_KIND = {"root": 0, "forward": 1, "call": 2, "scope": 3, "block": 4, "source": 5}


GROUP_BY = ("scope", "source")  # the model's hierarchy, or the user's lines


def report_page(report, group_by: str = "scope") -> str:
    """The whole HTML page of ``report`` (a materialised :class:`~graphaudit.analysis.report.Report`), its
    graph first grouped by ``group_by``: ``"scope"`` (grad call, then the model's hierarchy) or
    ``"source"`` (grad call, then the user's ``file:line``); the page switches between them."""
    if group_by not in GROUP_BY:
        raise ValueError(f"group_by must be one of {', '.join(GROUP_BY)}, got {group_by!r}")
    # retraced: in a grad audit, copies of forward nodes are re-traced forward passes, drawn grey with
    # their multiplicity; in audit_graph's report they are the duplicated work itself
    payload = {"groupBy": group_by,
               "views": {view: {**_view_payload(view_data(report, view)), "retraced": report.kind == "grad"}
                         for view in VIEWS}}
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).replace("<", "\\u003c")
    title = html.escape(report.headline())
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{title}</title>\n<style>{_asset('assets/report.css')}</style></head>\n<body>\n"
        f"{_summary(report)}\n{_graph_panel()}\n"
        f'<script type="application/json" id="graphaudit-data">{data}</script>\n'
        f"<script>{_asset('vendor/dagre.min.js')}</script>\n<script>{_asset('assets/report.js')}</script>\n"
        "</body></html>\n"
    )


def write_html(report, path: str | Path, group_by: str = "scope") -> str:
    """Write :func:`report_page` to ``path``; returns the path."""
    Path(path).write_text(report_page(report, group_by), encoding="utf-8")
    return str(path)


def _asset(name: str) -> str:
    return resources.files("graphaudit.views").joinpath(name).read_text(encoding="utf-8")


# --- the summary ---------------------------------------------------------------------------------


def _summary(report) -> str:
    """Headline, forms table, verdicts and the top duplicated subexpressions, from the report's own words."""
    head = "".join(f"<th>{c}</th>" for c in ("form", "nodes", "backward", "FLOPs", "matmul FLOPs", "bytes", "build"))
    rows = "".join(
        f"<tr><td>{html.escape(name.replace('_', ' '))}</td><td>{f.cost.nodes}</td><td>{f.cost.backward_nodes}</td>"
        f"<td>{si(f.cost.flops, 'FLOP')}</td><td>{si(f.cost.matmul_flops, 'FLOP')}</td><td>{si(f.cost.bytes, 'B')}</td>"
        f"<td>{seconds_text(f.build_seconds)}</td></tr>"
        for name, f in report.forms.items()
    )
    top = report.duplicated["top"]
    top_rows = "".join(
        f"<tr><td>{rank}</td><td><code>{html.escape(row['expression'])}</code></td><td>{html.escape(row['shapes'])}</td>"
        f"<td>x{row['copies']}</td><td>{si(row['wasted_flops'], 'FLOP')}</td><td>{_source_cell(row['source'])}</td></tr>"
        for rank, row in enumerate(top, start=1)
    )
    top_table = (
        "<h2>Top duplicated subexpressions</h2><table class=\"top\"><tr><th>#</th><th>expression</th><th>shapes</th>"
        f"<th>copies</th><th>wasted</th><th>source</th></tr>{top_rows}</table>" if top else ""
    )
    return (
        f'<header><h1>{html.escape(report.headline())}</h1>'
        f'<table class="forms"><tr>{head}</tr>{rows}</table>'
        f'<p class="verdict">{html.escape(report.verdict())}</p>{top_table}'
        f"<details><summary>full text report</summary><pre>{html.escape(report.to_text())}</pre></details></header>"
    )


def _source_cell(source: dict | None) -> str:
    if source is None:
        return ""
    return f'<code title="{html.escape(source["code"])}">{html.escape(source["file"])}:{source["line"]}</code>'


def _graph_panel() -> str:
    return (
        '<section id="explorer"><div id="toolbar">'
        '<span class="views"><button data-view="separate" class="on">separate</button>'
        '<button data-view="merged">merged</button></span>'
        '<label>colour by <select id="colour"><option value="copies">copies</option>'
        '<option value="wasted">wasted FLOPs</option></select></label>'
        '<label>group by <select id="group-by"><option value="scope">scope</option>'
        '<option value="source">source line</option></select></label>'
        '<input id="search" type="search" placeholder="search a node by name (Enter)" autocomplete="off">'
        '<button id="fit">fit</button><span id="caption"></span></div>'
        '<div id="results"></div>'
        '<div id="main"><svg id="canvas" xmlns="http://www.w3.org/2000/svg"><g id="viewport"></g></svg>'
        '<aside id="details"><p>Click a box to open a group, or a node to see its copies.</p></aside></div>'
        '<p id="legend"></p></section>'
    )


# --- the data ------------------------------------------------------------------------------------


def _view_payload(data: ViewData) -> dict:
    """Columns the page reads: nodes, their inputs (CSR), each grouping's tree in pre-order."""
    ops: dict[str, int] = {}
    position = {node.id: p for p, node in enumerate(data.nodes)}
    starts, inputs = [0], []
    for node in data.nodes:
        inputs.extend(position[i.id] for i in node.inputs if i.id in position)
        starts.append(len(inputs))
    call_sets: dict[tuple[int, ...], int] = {}
    sources: dict[tuple[str, int, str], int] = {}  # each distinct line once: [file, line, code]
    source_column = [-1 if s is None else sources.setdefault(tuple(s), len(sources)) for s in data.sources]
    return {
        "title": data.title,
        "callLabels": data.call_labels,
        "callSets": [list(s) for s in _index(call_sets, data.calls)],
        "sources": [list(s) for s in sources],
        "ops": list(_index(ops, [n.op for n in data.nodes])),
        "node": {
            "name": data.names,
            "op": [ops[n.op] for n in data.nodes],
            "shape": data.shapes,
            "flops": data.flops,
            "copies": data.copies,
            "wasted": data.wasted,
            "calls": [call_sets[c] for c in data.calls],
            "dup": [int(d) for d in data.duplicate],
            "kind": [2 if n.is_leaf else (0 if n.call is None else 1) for n in data.nodes],
            "source": source_column,  # a position in "sources", -1: not known
        },
        "inStart": starts,
        "inputs": inputs,
        "groupings": {"scope": _grouping(data.tree, len(data.nodes)),
                      "source": _grouping(data.source_tree, len(data.nodes))},
    }


def _grouping(tree: Group, nodes: int) -> dict:
    """One group tree as columns: each group's label, kind, parent and code (pre-order), each node's group."""
    groups: list[Group] = []
    parents: list[int] = []
    node_group = [0] * nodes

    def visit(group: Group, parent: int) -> None:
        index = len(groups)
        groups.append(group)
        parents.append(parent)
        for member in group.members:
            node_group[member] = index
        for child in group.children:
            visit(child, index)

    visit(tree, -1)
    return {"group": {"label": [g.label for g in groups], "kind": [_KIND[g.kind] for g in groups],
                      "parent": parents, "code": [g.code for g in groups]},
            "nodeGroup": node_group}


def _index(table: dict, values: list) -> dict:
    """Give each distinct value a number in order of first appearance; returns ``table``."""
    for value in values:
        table.setdefault(value, len(table))
    return table
