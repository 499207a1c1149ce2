"""Elementwise ops: broadcasting, ties of maximum, cast's gradient, comparisons, numpy's dtypes."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import central_difference
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import graphaudit as ga


BINARY = {"add": (ga.add, np.add), "sub": (ga.sub, np.subtract), "mul": (ga.mul, np.multiply),
          "div": (ga.div, np.divide), "maximum": (ga.maximum, np.maximum)}


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(sorted(BINARY)),
    shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
    seed=st.integers(0, 2**16),
)
def test_binary_broadcasting_shapes_and_gradients(name, shapes, seed):
    fn, np_fn = BINARY[name]
    rng = np.random.default_rng(seed)
    a_val = np.asarray(rng.standard_normal(shapes.input_shapes[0]))
    sign = rng.choice([-1.0, 1.0], size=shapes.input_shapes[1])
    b_val = np.asarray(rng.uniform(0.5, 2.0, size=shapes.input_shapes[1]) * sign)  # away from 0 for div
    if name == "maximum":  # keep the two inputs apart so that the choice is stable under eps
        a_val = np.where(np.abs(a_val - b_val) < 0.1, a_val + 0.2, a_val)
    a, b = ga.parameter("a", a_val), ga.parameter("b", b_val)
    out = fn(a, b)
    assert out.shape == shapes.result_shape
    weights = rng.standard_normal(out.shape)
    ga_val, gb_val = ga.evaluate(ga.grad(ga.sum(out * ga.constant(weights)), [a, b]))

    def f(x, y):
        return float(np.sum(np_fn(x, y) * weights))

    for got, position in ((ga_val, 0), (gb_val, 1)):
        expected = central_difference(f, [a_val, b_val], position)
        assert got.shape == (a_val, b_val)[position].shape
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-8)


def test_maximum_gradient_goes_to_first_input_on_ties():
    a_val = np.array([1.0, 2.0, 3.0])
    b_val = np.array([1.0, 5.0, 0.0])
    a, b = ga.parameter("a", a_val), ga.parameter("b", b_val)
    ga_, gb = ga.evaluate(ga.grad(ga.sum(ga.maximum(a, b)), [a, b]))
    np.testing.assert_array_equal(ga_, (a_val >= b_val).astype(float))
    np.testing.assert_array_equal(gb, (b_val > a_val).astype(float))


def test_cast_from_integer_gives_no_gradient_path():
    i = ga.constant(np.arange(3))
    x = ga.parameter("x", np.ones(3))
    cost = ga.sum(ga.cast(i, "float64") * x)
    gx = ga.evaluate(ga.grad(cost, x))
    np.testing.assert_array_equal(gx, np.arange(3).astype(float))


def test_cast_gradient_keeps_the_input_dtype():
    x = ga.parameter("x", np.ones(3, dtype=np.float32))
    g = ga.grad(ga.sum(ga.cast(x, "float64") * 2.0), x)
    assert g.dtype == np.float32
    np.testing.assert_array_equal(ga.evaluate(g), np.full(3, 2.0, dtype=np.float32))


def test_comparisons_forward():
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 3, size=(3, 4)), rng.integers(0, 3, size=(4,))
    for fn, np_fn in ((ga.equal, np.equal), (ga.greater, np.greater)):
        node = fn(ga.constant(a), ga.constant(b))
        assert node.dtype == np.dtype(bool)
        np.testing.assert_array_equal(ga.evaluate(node), np_fn(a, b))


@pytest.mark.parametrize("fn", [ga.add, ga.sub, ga.mul, ga.div, ga.pow, ga.maximum, ga.equal, ga.greater])
def test_broadcast_mismatch_names_both_shapes(fn):
    a, b = ga.placeholder("a", (3, 4)), ga.placeholder("b", (5,))
    with pytest.raises(ga.ShapeError) as info:
        fn(a, b)
    assert "(3, 4)" in str(info.value) and "(5,)" in str(info.value)


def test_integer_true_division_matches_numpy():
    a, b = np.arange(5), np.array(2)
    got = ga.evaluate(ga.div(ga.constant(a), ga.constant(b)))
    np.testing.assert_array_equal(got, a / b)
