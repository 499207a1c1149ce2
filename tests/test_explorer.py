"""The Model Explorer export, loaded with the real ``model_explorer`` package's own schemas."""

import json

import pytest

import graphaudit as ga
from graphaudit import models

model_explorer = pytest.importorskip("model_explorer", reason="needs ai-edge-model-explorer (pip install 'graphaudit[explorer]')")
dacite = pytest.importorskip("dacite")
from model_explorer import graph_builder, node_data_builder  # noqa: E402
from model_explorer.utils import convert_adapter_response  # noqa: E402

STRICT = dacite.Config(strict=True)


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    model = models.seed_mlp(batch=4, widths=(12, 10, 8, 6, 4))
    report = ga.audit(model.loss, model.params)
    folder = tmp_path_factory.mktemp("explorer")
    paths = report.to_model_explorer(str(folder))
    return report, folder, paths


def test_the_graphs_load_as_model_explorer_graph_collection(export):
    report, folder, paths = export
    data = json.loads((folder / "graphs.json").read_text())
    collection = dacite.from_dict(graph_builder.GraphCollection, data, config=STRICT)
    assert [g.id for g in collection.graphs] == ["separate", "merged"]
    round_trip = convert_adapter_response({"graphCollections": [collection]})["graphCollections"][0]
    separate = round_trip["graphs"][0]
    assert [n["id"] for n in separate["nodes"]] == [n["id"] for n in data["graphs"][0]["nodes"]]
    ids = {n["id"] for n in separate["nodes"]}
    assert all(e["sourceNodeId"] in ids for n in separate["nodes"] for e in n["incomingEdges"])
    operations = [n for n in separate["nodes"] if n["label"] not in ("parameter", "placeholder")]
    assert len(operations) == report.forms["separate"].cost.nodes
    namespaces = {n["namespace"].split("/")[0] for n in operations}
    assert namespaces == {"forward"} | {f"grad(cost, [{w}])" for w in report.wrt}


def test_the_overlays_load_as_node_data_and_say_what_the_report_says(export):
    report, folder, paths = export
    assert sorted(p.rsplit("/", 1)[1] for p in paths) == ["copies.json", "grad_calls.json", "graphs.json",
                                                           "wasted_flops.json"]
    wasted = json.loads((folder / "wasted_flops.json").read_text())
    for graph_id, data in wasted.items():
        node_data = dacite.from_dict(node_data_builder.GraphNodeData, data, config=STRICT)
        total = sum(result.value for result in node_data.results.values())
        assert total == report.duplicated["flops"], graph_id
    copies = json.loads((folder / "copies.json").read_text())["merged"]["results"]
    assert max(r["value"] for r in copies.values()) == len(report.wrt)  # the loss's adjoint: built by every call
    config = model_explorer.config().add_model_from_path(str(folder / "graphs.json"))
    for path in paths[1:]:
        config.add_node_data_from_path(path)
    assert len(config.node_data_sources) == 3
