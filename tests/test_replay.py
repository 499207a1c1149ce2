"""Replayed vjp rules and grad calls build the same graph, node for node, as running the rules in every call."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_properties import ALL, random_graph

import graphaudit as ga
from graphaudit.core.grad import ForwardGraph, separate_grads
from graphaudit.core.graph import topological_order
from graphaudit.core.ops import OPS
from graphaudit.core.replay import CallReplays, RuleReplays, _paths


def structure(outputs: list[ga.Node], calls: list) -> list[tuple]:
    """Every node of the graph as plain data: what it computes, from which nodes, made by whom.

    Nodes are named by their position in topological order, grad calls by their position in
    ``calls``, so two graphs built by different calls compare equal when they are the same.
    Each call's names for adjoints (``adjoint_of``, for reports) follow, in the same terms.
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
    position_of_id = {node.id: i for node, i in position.items()}
    for call in {id(call): call for call in calls}.values():
        rows.append(sorted((position_of_id.get(adjoint, -1), position.get(node, -1 - node.id))
                           for adjoint, node in call.adjoint_of.items()))
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


def test_each_call_replays_the_turns_it_shares_with_an_earlier_call(monkeypatch):
    model = ga.models.deep_chain(6, width=4, batch=3)
    replayed_turns = []
    replay = CallReplays._replay

    def counted(self, call, source, shared, *rest):
        replayed_turns.append(shared)
        return replay(self, call, source, shared, *rest)

    monkeypatch.setattr(CallReplays, "_replay", counted)
    assert_same_as_separate_calls(model.loss, model.params)
    # Parameters come input layer first: every call after the first shares all turns above its own layer.
    assert len(replayed_turns) == len(model.params) - 1
    assert all(shared > 0 for shared in replayed_turns)


def test_calls_over_several_targets_and_repeated_targets_replay_the_same_graph():
    model = ga.models.deep_chain(4, width=4, batch=3)
    w = model.params
    cost, wrt = model.loss, [w[3], w[3], [w[0], w[5]], w[1], [w[5], w[0]], w[0]]
    replayed = separate_grads(cost, wrt)
    each = [ga.grad(cost, target) for target in wrt]
    replayed, each = _flat(replayed), _flat(each)
    assert structure(replayed, calls_of(replayed)) == structure(each, calls_of(each))


def _flat(grads: list) -> list[ga.Node]:
    return [g for item in grads for g in (item if isinstance(item, list) else [item])]


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_paths_found_for_all_targets_at_once_are_the_paths_walked_for_each(data):
    cost, params, _ = random_graph(data, ALL)
    forward = topological_order([cost])
    targets = [forward[i] for i in data.draw(st.lists(st.integers(0, len(forward) - 1), max_size=6))] + params
    walked = ForwardGraph(cost)
    found = _paths(forward, {node: p for p, node in enumerate(forward)}, targets)
    for target in targets:
        on_path = walked.on_path({target})
        assert [node in on_path for node in forward] == found[target].tolist()


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_replayed_calls_over_any_targets_in_any_order_are_the_same_graph(data):
    cost, _, _ = random_graph(data, ALL)
    candidates = [n for n in topological_order([cost]) if n.dtype.kind == "f"]
    wrt = [candidates[i] for i in data.draw(st.lists(st.integers(0, len(candidates) - 1), min_size=1, max_size=8))]
    try:
        each = [ga.grad(cost, target) for target in wrt]
    except ga.DisconnectedInputError:
        with pytest.raises(ga.DisconnectedInputError):
            separate_grads(cost, wrt)
        return
    replayed = separate_grads(cost, wrt)
    assert structure(replayed, calls_of(replayed)) == structure(each, calls_of(each))


def test_a_rule_reading_a_node_from_outside_the_graph_stops_the_recording_not_the_replay(monkeypatch):
    # No built-in rule does this; a rule that did would make turns that cannot be named by index.
    outside = ga.constant(np.float32(0.5))
    rule = OPS["tanh"].vjp
    monkeypatch.setitem(OPS, "tanh", dataclasses.replace(OPS["tanh"], vjp=lambda node, g, wanted: [
        None if a is None else a * outside for a in rule(node, g, wanted)]))
    model = ga.models.mlp([4, 3, 3, 2], 3, "tanh")
    assert_same_as_separate_calls(model.loss, model.params)


def test_in_any_order_of_the_parameters_a_chain_runs_each_turn_once(monkeypatch):
    model = ga.models.deep_chain(12, width=4, batch=3)
    run = []
    turn = CallReplays.turn
    monkeypatch.setattr(CallReplays, "turn", lambda self, *args: run.append(args[0]) or turn(self, *args))
    orders = {"in order": model.params, "reversed": model.params[::-1],
              "shuffled": [model.params[i] for i in np.random.default_rng(1).permutation(len(model.params))]}
    turns_run = {}
    for name, params in orders.items():
        run.clear()
        assert_same_as_separate_calls(model.loss, params)
        turns_run[name] = len(run)
    # in order: the first call runs every turn of the deepest path, each later call only its own
    # layer's; in other orders the call that goes deepest so far is the one to share with
    assert turns_run["reversed"] == turns_run["shuffled"] == turns_run["in order"]
