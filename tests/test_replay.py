"""Replayed vjp rules build the same graph, node for node, as running the rules in every call."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_properties import ALL, random_graph

import graphaudit as ga
from graphaudit.grad import separate_grads
from graphaudit.graph import topological_order
from graphaudit.ops import OPS
from graphaudit.replay import RuleReplays


def structure(outputs: list[ga.Node], calls: list) -> list[tuple]:
    """Every node of the graph as plain data: what it computes, from which nodes, made by whom.

    Nodes are named by their position in topological order, grad calls by their position in
    ``calls``, so two graphs built by different calls compare equal when they are the same.
    """
    order = topological_order(outputs)
    position = {node: i for i, node in enumerate(order)}
    call_position = {id(call): i for i, call in enumerate(calls)}
    rows = []
    for node in order:
        value = None if node.value is None else (node.value.dtype.str, node.value.shape, node.value.tobytes())
        rows.append((
            node.op, node.attrs, node.shape, node.dtype.str, node.name, value,
            tuple(position[i] for i in node.inputs),
            None if node.call is None else call_position[id(node.call)],
            None if node.origin is None else position.get(node.origin, node.origin.label),
        ))
    return rows


def calls_of(outputs: list[ga.Node]) -> list:
    """The grad calls that built ``outputs``, in the order of the outputs."""
    return [g.call for g in outputs]


def assert_same_as_separate_calls(cost: ga.Node, wrt: list[ga.Node]) -> list[ga.Node]:
    replayed = separate_grads(cost, wrt)
    each = [ga.grad(cost, w) for w in wrt]
    assert structure(replayed, calls_of(replayed)) == structure(each, calls_of(each))
    for a, b in zip(replayed, each):  # and outputs in the same places
        assert (a.op, a.shape, a.dtype) == (b.op, b.shape, b.dtype)
    return replayed


MODELS = {
    "seed_mlp": lambda: ga.models.seed_mlp(widths=(6, 5, 4, 3, 2), batch=3),
    "deep_chain": lambda: ga.models.deep_chain(6, width=4, batch=3),
    "residual_mlp": lambda: ga.models.residual_mlp(4, width=4, batch=3),
    "relu_mlp": lambda: ga.models.mlp([5, 4, 4, 3], 3, "relu", "float64"),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_replayed_separate_form_is_the_same_graph_as_separate_calls(name):
    model = MODELS[name]()
    replayed = assert_same_as_separate_calls(model.loss, model.params)
    feed = model.make_feed()
    for a, b in zip(ga.evaluate(replayed, feed), ga.evaluate([ga.grad(model.loss, p) for p in model.params], feed)):
        np.testing.assert_array_equal(a, b)


def test_rules_run_once_per_node_and_adjoint_shape():
    model = ga.models.deep_chain(5, width=4, batch=3)
    replays = RuleReplays()
    ran = []
    node = next(n for n in topological_order([model.loss]) if n.op == "sigmoid")
    rule = OPS["sigmoid"].vjp

    def counted(*args):
        ran.append(args)
        return rule(*args)

    g = ga.placeholder("g", node.shape)
    first = replays.run(counted, node, g, (True,))
    second = replays.run(counted, node, g, (True,))
    other = replays.run(counted, node, ga.placeholder("g2", node.shape, "float64"), (True,))
    assert len(ran) == 2  # the float64 adjoint is another recipe
    assert first[0] is not second[0]  # fresh nodes every time
    assert structure(first, []) == structure(second, [])
    assert other[0].dtype == np.float64


def test_adjoints_passed_on_unchanged_are_replayed_as_such():
    # add's rule hands g itself to both inputs when no broadcasting is undone
    a, b = ga.parameter("a", (3,), "float64"), ga.parameter("b", (3,), "float64")
    cost = ga.sum(ga.tanh(a + b) * ga.constant(np.arange(3.0)))
    assert_same_as_separate_calls(cost, [a, b, a])


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_replayed_separate_form_is_the_same_graph_on_random_graphs(data):
    cost, params, _ = random_graph(data, ALL)
    assert_same_as_separate_calls(cost, params)
