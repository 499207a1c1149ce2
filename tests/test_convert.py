"""to_networkx / from_networkx: round trips, and clear errors on bad graphs."""

import networkx as nx
import numpy as np
import pytest

import graphaudit as ga


def model_and_grads():
    model = ga.models.deep_chain(depth=2, width=4, batch=3, dtype="float64")
    return model, ga.grad(model.loss, model.params)


def test_round_trip_keeps_structure_values_and_provenance():
    model, grads = model_and_grads()
    graph = ga.to_networkx(grads)
    assert nx.is_directed_acyclic_graph(graph)
    order = ga.topological_order(grads)
    assert graph.number_of_nodes() == len(order)
    rebuilt = ga.from_networkx(graph)
    assert len(rebuilt) == len(grads)
    rebuilt_order = ga.topological_order(rebuilt)
    assert [n.op for n in rebuilt_order] == [n.op for n in order]
    assert [n.shape for n in rebuilt_order] == [n.shape for n in order]
    assert [n.call is None for n in rebuilt_order] == [n.call is None for n in order]
    # same values when fed by name (the rebuilt leaves are new nodes with the same names)
    feed = {p.name: v for p, v in model.make_feed().items()}
    for a, b in zip(ga.evaluate(grads, feed), ga.evaluate(rebuilt, feed)):
        assert np.array_equal(a, b)
    # the digests agree: the same subgraphs
    assert [ga.digests(grads)[g] for g in grads] == [ga.digests(rebuilt)[g] for g in rebuilt]


def test_graph_attributes_carry_op_shape_dtype_and_provenance():
    _, grads = model_and_grads()
    graph = ga.to_networkx(grads)
    data = [graph.nodes[k] for k in graph]
    assert {"op", "attrs", "shape", "dtype", "call", "origin", "inputs"} <= set(data[0])
    backward = [d for d in data if d["call"] is not None]
    assert backward and all(d["call"].startswith("grad(cost, [") for d in backward)
    assert all(graph.nodes[d["origin"]]["call"] is None for d in backward if d["origin"] is not None)


def test_a_hand_built_graph_with_edges_only():
    graph = nx.DiGraph()
    graph.add_node("x", op="placeholder", shape=(2, 3), dtype="float64")
    graph.add_node("w", op="parameter", shape=(3, 4), dtype="float64")
    graph.add_node("y", op="matmul")
    graph.add_edge("x", "y", position=0)
    graph.add_edge("w", "y", position=1)
    (y,) = ga.from_networkx(graph)
    assert y.op == "matmul" and y.shape == (2, 4)


def test_a_cycle_is_named():
    graph = nx.DiGraph()
    graph.add_node("a", op="exp")
    graph.add_node("b", op="exp")
    graph.add_edges_from([("a", "b"), ("b", "a")])
    with pytest.raises(ga.GraphauditError, match="cycle"):
        ga.from_networkx(graph)


def test_a_missing_attribute_is_named():
    graph = nx.DiGraph()
    graph.add_node("x", op="placeholder", dtype="float64")
    with pytest.raises(ga.GraphauditError, match=r"node 'x' has no 'shape'"):
        ga.from_networkx(graph)


def test_an_unknown_op_is_named():
    graph = nx.DiGraph()
    graph.add_node("x", op="placeholder", shape=(2,), dtype="float64")
    graph.add_node("y", op="frobnicate")
    graph.add_edge("x", "y")
    with pytest.raises(ga.UnknownOpError, match="frobnicate"):
        ga.from_networkx(graph)


def test_a_wrong_stored_shape_is_named():
    graph = nx.DiGraph()
    graph.add_node("x", op="placeholder", shape=(2, 3), dtype="float64")
    graph.add_node("y", op="exp", shape=(3, 2))
    graph.add_edge("x", "y")
    with pytest.raises(ga.ShapeError, match=r"node 'y'.*\(3, 2\).*\(2, 3\)"):
        ga.from_networkx(graph)


def test_mismatched_input_shapes_are_named():
    graph = nx.DiGraph()
    graph.add_node("a", op="placeholder", shape=(2, 3), dtype="float64")
    graph.add_node("b", op="placeholder", shape=(4, 5), dtype="float64")
    graph.add_node("y", op="matmul", inputs=["a", "b"])
    graph.add_edges_from([("a", "y"), ("b", "y")])
    with pytest.raises(ga.ShapeError, match=r"node 'y'.*\(2, 3\).*\(4, 5\)"):
        ga.from_networkx(graph)


def test_the_networkx_graph_is_not_mutated():
    _, grads = model_and_grads()
    graph = ga.to_networkx(grads)
    before = (sorted(graph.nodes(data="op")), sorted(graph.edges), dict(graph.graph))
    ga.from_networkx(graph)
    assert (sorted(graph.nodes(data="op")), sorted(graph.edges), dict(graph.graph)) == before
