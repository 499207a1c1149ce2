"""Bad input: each row of the README's table, its exception type, and that the message names the culprit.

The command-line rows of the table (missing file, syntax error, wrong return, unwritable
output folder, ``dot`` missing) are in tests/cli/ and tests/test_draw.py.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

import graphaudit as ga
from graphaudit.views.draw import GraphvizMissingError, render


def vector(name="v", shape=(3,)):
    return ga.parameter(name, shape, "float64")


def _non_scalar_cost():
    v = vector()
    ga.grad(ga.exp(v), v)


def _empty_wrt():
    v = vector()
    ga.grad(ga.sum(v), [])


def _wrt_not_in_graph():
    v, w = vector("v"), vector("unused_w")
    ga.grad(ga.sum(v), [v, w])


def _wrt_not_a_node():
    v = vector()
    ga.grad(ga.sum(v), [v, "w1"])


def _matmul_mismatch():
    ga.placeholder("a", (3, 4)) @ ga.placeholder("b", (5, 6))


def _broadcast_mismatch():
    ga.placeholder("a", (3, 4)) + ga.placeholder("b", (5,))


def _index_out_of_range():
    logp = ga.placeholder("logp", (4, 3), "float64")
    labels = ga.placeholder("labels", (4,), "int64")
    picked = logp[ga.arange(4), labels]
    ga.evaluate(picked, {logp: np.zeros((4, 3)), labels: np.array([0, 1, 7, 2])})


def _float_indices():
    ga.placeholder("logp", (4, 3))[ga.arange(4), ga.placeholder("y", (4,), "float32")]


def _unknown_op():
    ga.apply("frobnicate", [vector()])


def _missing_feed():
    ga.evaluate(ga.exp(ga.placeholder("x_missing", (2,), "float64")), {})


def _wrong_feed_shape():
    x = ga.placeholder("x", (2, 3), "float64")
    ga.evaluate(ga.exp(x), {x: np.zeros((3, 2))})


def _networkx_cycle():
    graph = nx.DiGraph([("a", "b"), ("b", "a")])
    ga.from_networkx(graph)


def _networkx_missing_attribute():
    graph = nx.DiGraph()
    graph.add_node("x", op="placeholder", shape=(2,))
    ga.from_networkx(graph)


def _networkx_unknown_op():
    graph = nx.DiGraph()
    graph.add_node("x", op="placeholder", shape=(2,), dtype="float64")
    graph.add_node("y", op="conv99")
    graph.add_edge("x", "y")
    ga.from_networkx(graph)


def _audit_measure_without_feed():
    v = vector()
    ga.audit(ga.sum(v), [v], measure=True)


def _disconnected_cost_dtype():
    ga.grad(ga.sum(ga.placeholder("n", (3,), "int64")), ga.placeholder("n2", (3,), "int64"))


def _integer_wrt():
    logp = ga.log_softmax(ga.parameter("w", (4, 3), "float64"))
    labels = ga.placeholder("labels", (4,), "int64")
    ga.grad(-ga.mean(logp[ga.arange(4), labels]), [labels])


def _parameter_with_shape_and_value():
    ga.parameter("w", shape=(3, 3), value=np.ones((3, 3)))


def _parameter_with_neither():
    ga.parameter("w", dtype="float64")


def _grad_of_a_string_cost():
    ga.grad("loss", [vector()])


def _op_input_not_a_node():
    ga.apply("exp", [[1.0, 2.0]])


BAD_INPUTS = [
    # (row id, what is passed, the call, exception type, what the message must name)
    ("non-scalar cost", _non_scalar_cost, ValueError, r"scalar.*\(3,\)"),
    ("empty wrt", _empty_wrt, ValueError, r"wrt is empty"),
    ("wrt not in the graph", _wrt_not_in_graph, ga.DisconnectedInputError, r"unused_w.*disconnected='zero'"),
    ("wrt not a node", _wrt_not_a_node, TypeError, r"wrt\[1\] is a str \('w1'\), not a graphaudit Node"),
    ("cost not a node", _grad_of_a_string_cost, TypeError, r"cost is a str \('loss'\)"),
    ("op input not a node", _op_input_not_a_node, TypeError, r"exp: input 0 is a list \(\[1.0, 2.0\]\)"),
    ("integer wrt", _integer_wrt, ga.DisconnectedInputError,
     r"labels.*integer input \(int64\).*no gradient.*disconnected='zero'"),
    ("parameter with a shape and a value", _parameter_with_shape_and_value, TypeError, r"'w'.*both shape= and value="),
    ("parameter with neither shape nor value", _parameter_with_neither, TypeError, r"'w'.*got neither"),
    ("matmul shape mismatch", _matmul_mismatch, ga.ShapeError, r"\(3, 4\) @ \(5, 6\)"),
    ("broadcast mismatch", _broadcast_mismatch, ga.ShapeError, r"add: shapes \(3, 4\) and \(5,\)"),
    ("index out of range at evaluate", _index_out_of_range, ga.EvaluationError, r"index 7 .*axis 1 of size 3"),
    ("float indices", _float_indices, TypeError, r"index 1 has float dtype float32"),
    ("unknown op", _unknown_op, ga.UnknownOpError, r"'frobnicate'"),
    ("missing feed", _missing_feed, ga.EvaluationError, r"x_missing"),
    ("fed array of the wrong shape", _wrong_feed_shape, ga.EvaluationError, r"'x' has shape \(2, 3\).*\(3, 2\)"),
    ("networkx graph with a cycle", _networkx_cycle, ga.GraphauditError, r"cycle: a -> b|cycle: b -> a"),
    ("networkx node without an attribute", _networkx_missing_attribute, ga.GraphauditError, r"'x' has no 'dtype'"),
    ("networkx node with an unknown op", _networkx_unknown_op, ga.UnknownOpError, r"'conv99'"),
    ("measure without a feed", _audit_measure_without_feed, ValueError, r"needs a feed"),
    ("integer cost", _disconnected_cost_dtype, TypeError, r"floating point.*int64"),
]


@pytest.mark.parametrize("call, error, message", [row[1:] for row in BAD_INPUTS], ids=[row[0] for row in BAD_INPUTS])
def test_bad_input_gets_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_duplicate_wrt_entries_get_the_same_gradient_node():
    """Defined behaviour, as in Theano: a repeated wrt gets one gradient, returned twice."""
    v = vector()
    first, second = ga.grad(ga.sum(v * v), [v, v])
    assert first is second
    report = ga.audit(ga.sum(v * v), [v, v])
    assert report.wrt == ["v", "v"]
    by_call = report.duplicated["by_call"]
    # the second call repeats every backward node of the first; the first repeats only its own
    # internal duplicate (the two equal adjoints g*v of v*v), which the joint call has too
    assert by_call["grad(cost, [v]) #2"]["nodes"] == report.forms["joint"].cost.backward_nodes
    assert by_call["grad(cost, [v])"]["nodes"] == report.joint_duplicates["nodes"] == 1


def test_nan_and_inf_constants_evaluate_and_merge_only_with_identical_bytes():
    x = vector("x")
    outputs = [x * ga.constant(np.inf), x * ga.constant(np.inf), x + ga.constant(np.nan), x + ga.constant(-np.nan)]
    merged = ga.merge(outputs)
    assert merged.outputs[0] is merged.outputs[1]
    assert merged.outputs[2] is not merged.outputs[3]  # -nan has its sign bit set: other bytes
    values = ga.evaluate(merged.outputs, {x: np.array([1.0, -2.0, 0.5])})
    assert np.isinf(values[0]).all() and np.isnan(values[2]).all()


def test_png_without_dot_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "")
    with pytest.raises(GraphvizMissingError, match="apt-get install graphviz"):
        render(ga.to_dot([ga.exp(vector())]), tmp_path / "graph.png")
    assert not (tmp_path / "graph.png").exists()
    render(ga.to_dot([ga.exp(vector())]), tmp_path / "graph.dot")  # DOT needs no Graphviz
    assert (tmp_path / "graph.dot").read_text().startswith("digraph")


def snapshot(nodes):
    return [(n, n.op, n.inputs, n.attrs, n.shape, n.dtype, n.name, n.call, n.origin, n.id) for n in nodes]


def test_audit_mutates_neither_the_graph_nor_the_feed():
    model = ga.models.residual_mlp(depth=2, width=4, batch=3, dtype="float64")
    feed = model.make_feed()
    feed_copy = {k: v.copy() for k, v in feed.items()}
    keys = list(feed)
    nodes = ga.topological_order([model.loss])
    before = snapshot(nodes)
    report = ga.audit(model.loss, model.params, measure=True, feed=feed, repeats=1)
    ga.evaluate(report.merges["separate"].outputs, feed)
    assert snapshot(nodes) == before
    assert list(feed) == keys
    assert all(np.array_equal(feed[k], feed_copy[k]) for k in keys)


def test_a_long_culprit_is_cut_and_an_array_is_named_by_shape():
    from graphaudit.errors import REPR_LENGTH, culprit

    assert culprit(np.zeros((3, 4), np.float32)) == "an ndarray of shape (3, 4) float32"
    long = culprit("x" * 500)
    assert long.startswith("a str ('xxx") and len(long) < REPR_LENGTH + 12
