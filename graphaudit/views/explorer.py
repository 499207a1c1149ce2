"""Model Explorer interop: a report's two views as Model Explorer graphs, with node-data overlays.

Google's Model Explorer (``pip install ai-edge-model-explorer``) opens a JSON *graph
collection* (``{"label", "graphs": [...]}``, the ``GraphCollection`` of its
``graph_builder``) and colours nodes by *node data* files (its ``node_data_builder``:
``{graph id: {"results": {node id: {"value": v}}, "gradient": [...]}}``). We write both
with the standard library, in exactly those schemas (the tests load them with the real
package), so users see graphaudit's findings in the viewer they already use:

- ``graphs.json``: the ``separate`` and ``merged`` graphs; each node's namespace is its
  group path (grad call / scope, :mod:`graphaudit.views.groups`), so Model Explorer shows the same
  collapsible layers as the HTML report; its attributes say name, shape, FLOPs, copies and
  which grad calls built it;
- ``copies.json``, ``wasted_flops.json``, ``grad_calls.json``: one overlay each.

Open them with ``model-explorer graphs.json --node_data_paths=copies.json,wasted_flops.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

from graphaudit.views.groups import Group
from graphaudit.views.overlay import VIEWS, ViewData, view_data

GRAPHS_FILE = "graphs.json"
OVERLAYS = {  # file stem -> what the overlay shows
    "copies": "copies: nodes of the separate form equal to this one",
    "wasted_flops": "wasted FLOPs: what the copies beyond the first cost",
    "grad_calls": "grad calls that built a copy of this node",
}
GRADIENT = [{"stop": 0, "bgColor": "#fff5f0"}, {"stop": 1, "bgColor": "#a50f15"}]


def model_explorer_graphs(report) -> tuple[dict, dict[str, dict]]:
    """The graph collection and the overlays (file stem -> node data) of a materialised report."""
    views = [view_data(report, view) for view in VIEWS]
    collection = {"label": "graphaudit", "graphs": [_graph(data) for data in views]}
    overlays = {
        stem: {data.view: {"name": OVERLAYS[stem], "results": _values(data, stem), "gradient": GRADIENT}
               for data in views}
        for stem in OVERLAYS
    }
    return collection, overlays


def write_model_explorer(report, folder: str | Path) -> list[str]:
    """Write ``graphs.json`` and one node-data file per overlay into ``folder``; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    collection, overlays = model_explorer_graphs(report)
    files = {GRAPHS_FILE: collection, **{f"{stem}.json": data for stem, data in overlays.items()}}
    written = []
    for name, data in files.items():
        path = folder / name
        path.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
        written.append(str(path))
    return written


def _graph(data: ViewData) -> dict:
    namespace = [""] * len(data.nodes)

    def visit(group: Group, path: str) -> None:
        for member in group.members:
            namespace[member] = path
        for child in group.children:
            if child.kind == "block":  # Model Explorer draws its own layers: no level of our own
                visit(child, path)
            else:
                visit(child, f"{path}/{child.label.replace('/', '_')}".lstrip("/"))

    visit(data.tree, "")
    position = {node.id: p for p, node in enumerate(data.nodes)}
    nodes = []
    for p, node in enumerate(data.nodes):
        calls = [data.call_labels[c] for c in data.calls[p]]
        attrs = {
            "name": data.names[p], "shape": data.shapes[p], "dtype": str(node.dtype), "flops": str(data.flops[p]),
            "copies": str(data.copies[p]), "wasted_flops": str(data.wasted[p]),
            "duplicate": "yes" if data.duplicate[p] else "no", "grad_calls": ", ".join(calls) or "forward",
        }
        nodes.append({
            "id": str(p),
            "label": node.op,
            "namespace": namespace[p],
            "attrs": [{"key": k, "value": v} for k, v in attrs.items()],
            "incomingEdges": [
                {"sourceNodeId": str(position[i.id]), "sourceNodeOutputId": "0", "targetNodeInputId": str(slot)}
                for slot, i in enumerate(node.inputs) if i.id in position
            ],
            "outputsMetadata": [{"id": "0", "attrs": [{"key": "shape", "value": data.shapes[p]}]}],
        })
    return {"id": data.view, "nodes": nodes}


def _values(data: ViewData, stem: str) -> dict[str, dict]:
    column = {"copies": data.copies, "wasted_flops": data.wasted, "grad_calls": [len(c) for c in data.calls]}[stem]
    return {str(p): {"value": value} for p, value in enumerate(column) if not data.nodes[p].is_leaf}
