"""frontends/pytensor/indexing.py: every indexing op imports to the same nodes under PyTensor 2.x and 3.x.

PyTensor 2.x keeps a Subtensor's index as types and its advanced ops without an index list;
3.x keeps positions. Each expression here is evaluated by graphaudit and by PyTensor, its
gradient too (the ``*IncSubtensor`` ops), and its node's ``idx_list`` is compared with the
form written out by hand.
"""

from __future__ import annotations

import numpy as np
import pytest

import graphaudit as ga

pytensor = pytest.importorskip("pytensor")
pt = pytest.importorskip("pytensor.tensor")
gp = pytest.importorskip("graphaudit.frontends.pytensor")

X = pt.matrix("x")
I = pt.lvector("i")
K = X.shape[0] - 2  # a bound computed from a shape: graphaudit knows its value while importing
SHAPES = {"x": (5, 4), "i": (3,)}
VALUES = {"x": np.arange(20.0).reshape(5, 4) - 7.5, "i": np.array([3, 0, 2])}

# expression -> the index list of its (last) indexing node, in the one form both lines import to
CASES = {
    "x[1:k]": (X[1:K], (("slice", 0, 1, None),)),
    "x[k]": (X[K], (0,)),
    "x[:, k]": (X[:, K], (("slice", None, None, None), 0)),
    "x[::-1, 1]": (X[::-1, 1], (("slice", None, None, 0), 1)),
    "x[i]": (X[I], (0,)),
    "x[:, i]": (X[:, I], (("slice", None, None, None), 0)),
    "x[i, i]": (X[I, I[::-1] % 4], (0, 1)),
    "x[mask]": (X[np.arange(20).reshape(5, 4) % 3 == 0], (0,)),  # a constant mask: its count is known
    "x[k:, i]": (X[K:, I], (("slice", 0, None, None), 1)),
}


def _run(expression):
    inputs = [v for v in (X, I) if v in pytensor.graph.traversal.graph_inputs([expression])]
    imported = gp.from_pytensor(expression, shapes={v.name: SHAPES[v.name] for v in inputs})
    expected = pytensor.function(inputs, expression, mode="FAST_COMPILE")(*(VALUES[v.name] for v in inputs))
    return imported, ga.evaluate(imported.outputs[0], {v.name: VALUES[v.name] for v in inputs}), expected


@pytest.mark.parametrize("text", list(CASES))
def test_indexing_evaluates_as_pytensor_does_with_the_index_list_in_one_form(text):
    expression, idx_list = CASES[text]
    imported, value, expected = _run(expression)
    assert imported.outputs[0].shape == expected.shape
    np.testing.assert_array_equal(value, expected)
    assert imported.outputs[0].attr("idx_list") == idx_list


@pytest.mark.parametrize("text", list(CASES))
def test_gradients_through_indexing_write_with_inc_subtensor_as_pytensor_does(text):
    expression, _ = CASES[text]
    gradient = pytensor.grad(pt.sum(pt.sin(expression) ** 2), X)
    imported, value, expected = _run(gradient)
    increments = [n for n in ga.topological_order(imported.outputs) if "IncSubtensor" in n.op]
    assert increments
    np.testing.assert_allclose(value, expected, rtol=1e-13, atol=1e-15)


def test_a_new_axis_inside_an_advanced_index_adds_an_axis_of_length_one():
    expression = X[I, None]
    _, value, expected = _run(expression)
    assert value.shape == expected.shape == (3, 1, 4)
    np.testing.assert_array_equal(value, expected)


def test_equal_indexing_merges_and_different_indexing_does_not():
    a, b, c = X[1:K], X[1:K], X[K:]
    imported = gp.from_pytensor([a, b, c], shapes={"x": (5, 4)})
    merged = ga.merge(imported.outputs).outputs
    assert merged[0] is merged[1] and merged[0] is not merged[2]
