"""Property tests on random graphs: gradients, merging, separate vs joint, pictures.

Each example is a random DAG over the op set: a few float64 parameters and an input,
then a dozen ops applied to nodes drawn from everything built so far (so nodes get
several consumers, broadcasting happens, and shape errors are simply skipped), some of
them rebuilt a second time (shared subexpressions), and a scalar cost over several of
them. The examples run derandomised (a fixed set in every run); ``pytest --slow``
draws 2000 fresh ones per property (see conftest.py).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import central_difference
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import graphaudit as ga
from graphaudit.views.draw import render

SHAPES = [(3,), (4,), (3, 4), (4, 3), (3, 1), (1, 4), ()]


def _positive(x):
    return ga.sigmoid(x) + 0.5


# Smooth builders: their gradients are checked against finite differences.
SMOOTH = {
    "tanh": (1, lambda a, d: ga.tanh(a)),
    "sigmoid": (1, lambda a, d: ga.sigmoid(a)),
    "exp": (1, lambda a, d: ga.exp(ga.tanh(a))),
    "log": (1, lambda a, d: ga.log(_positive(a))),
    "sqrt": (1, lambda a, d: ga.sqrt(_positive(a))),
    "neg": (1, lambda a, d: -a),
    "add": (2, lambda a, b, d: a + b),
    "sub": (2, lambda a, b, d: a - b),
    "mul": (2, lambda a, b, d: a * b),
    "div": (2, lambda a, b, d: a / _positive(b)),
    "pow": (2, lambda a, b, d: _positive(a) ** ga.tanh(b)),
    "matmul": (2, lambda a, b, d: a @ b),
    "sum": (1, lambda a, d: ga.sum(a, axis=_axis(a, d), keepdims=d.draw(st.booleans()))),
    "mean": (1, lambda a, d: ga.mean(a, axis=_axis(a, d), keepdims=d.draw(st.booleans()))),
    "softmax": (1, lambda a, d: ga.softmax(a, axis=_axis(a, d, allow_none=False))),
    "log_softmax": (1, lambda a, d: ga.log_softmax(a, axis=_axis(a, d, allow_none=False))),
    "transpose": (1, lambda a, d: ga.transpose(a)),
    "reshape": (1, lambda a, d: ga.reshape(a, (-1,))),
    "broadcast_to": (1, lambda a, d: ga.broadcast_to(a, (3, 4))),
    "concat": (2, lambda a, b, d: ga.concat([a, b], axis=0)),
    "slice": (1, lambda a, d: a[1:] if a.ndim else a[()]),
    "take": (1, lambda a, d: _take(a, d)),
}
# Kinked builders: fine for merging and evaluation, not for finite differences.
KINKED = {
    "relu": (1, lambda a, d: ga.relu(a)),
    "maximum": (2, lambda a, b, d: ga.maximum(a, b)),
    "max": (1, lambda a, d: ga.max(a, axis=_axis(a, d), keepdims=d.draw(st.booleans()))),
    "where": (2, lambda a, b, d: ga.where(ga.greater(a, b), a, b)),
}
ALL = {**SMOOTH, **KINKED}


def _axis(node, data, allow_none=True):
    choices = ([None] if allow_none else []) + list(range(-node.ndim, node.ndim))
    if not choices:
        raise ga.ShapeError("no axis to reduce")
    return data.draw(st.sampled_from(choices))


def _take(node, data):
    if node.ndim == 0 or node.shape[0] == 0:
        raise ga.ShapeError("nothing to index")
    rows = data.draw(st.lists(st.integers(0, node.shape[0] - 1), min_size=1, max_size=4))
    return ga.take(node, ga.constant(np.array(rows, dtype=np.int64)))


def random_graph(data, builders):
    """``(cost, params, feed)``: a random DAG built from ``builders``."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31 - 1)))
    params = [ga.parameter(f"p{i}", data.draw(st.sampled_from(SHAPES)), "float64")
              for i in range(data.draw(st.integers(1, 3)))]
    x = ga.placeholder("x", (3, 4), "float64")
    feed = {node: rng.standard_normal(node.shape) for node in [*params, x]}
    pool = [*params, x]
    names = sorted(builders)
    for _ in range(data.draw(st.integers(1, 12))):
        arity, build = builders[data.draw(st.sampled_from(names))]
        operands = [pool[data.draw(st.integers(0, len(pool) - 1))] for _ in range(arity)]
        try:
            node = build(*operands, data)
        except ga.ShapeError:
            continue
        pool.append(node)
        if data.draw(st.booleans()):  # rebuild it: a shared subexpression for merge to find
            pool.append(ga.apply(node.op, node.inputs, **dict(node.attrs)))
    chosen = [pool[i] for i in data.draw(st.lists(st.integers(0, len(pool) - 1), min_size=1, max_size=4))]
    terms = [ga.sum(node * ga.constant(rng.standard_normal(node.shape))) for node in chosen]
    terms += [ga.sum(p * ga.constant(rng.standard_normal(p.shape))) for p in params]  # every param connected
    cost = terms[0]
    for term in terms[1:]:
        cost = cost + term
    return cost, params, feed


def finite(values) -> bool:
    return all(np.all(np.isfinite(v)) and np.all(np.abs(v) < 1e6) for v in values)


@pytest.mark.slow
@given(st.data())
def test_grad_matches_central_differences(data):
    cost, params, feed = random_graph(data, SMOOTH)
    grads = ga.grad(cost, params)
    values = ga.evaluate([cost, *grads], feed)
    assume(finite(values))

    def loss(*arrays):
        return float(ga.evaluate(cost, {**feed, **dict(zip(params, arrays))}))

    arrays = [feed[p] for p in params]
    for which, analytic in enumerate(values[1:]):
        numeric = central_difference(loss, arrays, which)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-6)


@given(st.data())
def test_merged_graph_evaluates_bit_identical(data):
    cost, params, feed = random_graph(data, ALL)
    outputs = [cost, *ga.grad(cost, params), *(ga.grad(cost, p) for p in params)]
    merged = ga.merge(outputs)
    before = ga.evaluate(outputs, feed)
    after = ga.evaluate(merged.outputs, feed)
    assert [a.tobytes() for a in before] == [b.tobytes() for b in after]
    assert [a.dtype for a in before] == [b.dtype for b in after]


@given(st.data())
def test_merge_is_idempotent_and_never_grows(data):
    cost, params, _ = random_graph(data, ALL)
    outputs = [cost, *(ga.grad(cost, p) for p in params)]
    once = ga.merge(outputs)
    twice = ga.merge(once.outputs)
    assert once.nodes_after <= once.nodes_before
    assert twice.nodes_after == twice.nodes_before == once.nodes_after
    assert all(a is b for a, b in zip(once.outputs, twice.outputs))


@given(st.data())
def test_separate_and_joint_merge_to_the_same_graph(data):
    cost, params, _ = random_graph(data, ALL)
    report = ga.audit(cost, params)
    assert report.merged_equals_joint
    forms = report.to_dict()["forms"]
    assert forms["separate_merged"]["nodes"] == forms["joint_merged"]["nodes"]
    assert forms["separate_merged"]["flops"] == forms["joint_merged"]["flops"]
    assert forms["separate"]["nodes"] - report.duplicated["nodes"] == forms["separate_merged"]["nodes"]


@pytest.mark.slow
@settings(max_examples=60)
@given(data=st.data())
def test_pictures_are_valid_dot(tmp_path_factory, data):
    cost, params, _ = random_graph(data, ALL)
    report = ga.audit(cost, params)
    for view in ("separate", "merged"):
        source = report.to_dot(view)
        assert source.startswith("digraph") and source.rstrip().endswith("}")
        if shutil.which("dot"):
            path = tmp_path_factory.mktemp("dot") / f"{view}.svg"
            render(source, path)
            assert path.read_text().lstrip().startswith("<?xml")
