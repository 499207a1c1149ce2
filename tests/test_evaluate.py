"""The numpy interpreter: feeds, dtypes, run-time errors, and no mutation of what it is given."""

from __future__ import annotations

import numpy as np
import pytest

import graphaudit as ga
from graphaudit import models


def test_missing_feed_names_the_placeholder():
    x = ga.placeholder("inputs_x", (2, 3))
    with pytest.raises(ga.EvaluationError, match="inputs_x"):
        ga.evaluate(ga.sum(x))


def test_missing_parameter_value_names_it():
    w = ga.parameter("w_missing", (2, 2))
    with pytest.raises(ga.EvaluationError, match="w_missing"):
        ga.evaluate(w * 2.0)


def test_wrong_fed_shape_names_both_shapes():
    x = ga.placeholder("x", (2, 3))
    with pytest.raises(ga.EvaluationError) as info:
        ga.evaluate(ga.sum(x), {x: np.ones((3, 2))})
    message = str(info.value)
    assert "(2, 3)" in message and "(3, 2)" in message and "'x'" in message


def test_unsafe_cast_of_a_feed_raises():
    y = ga.placeholder("labels", (3,), "int64")
    with pytest.raises(ga.EvaluationError, match="labels"):
        ga.evaluate(y * 2, {y: np.array([0.5, 1.0, 2.0])})


def test_feeding_by_name_and_by_node_agree():
    x = ga.placeholder("x", (2, 3), "float64")
    w = ga.parameter("w", (3, 2), "float64")
    out = ga.tanh(x @ w)
    rng = np.random.default_rng(0)
    x_val, w_val = rng.standard_normal((2, 3)), rng.standard_normal((3, 2))
    expected = np.tanh(x_val @ w_val)
    np.testing.assert_array_equal(ga.evaluate(out, {"x": x_val, "w": w_val}), expected)
    np.testing.assert_array_equal(ga.evaluate(out, {x: x_val, w: w_val}), expected)
    np.testing.assert_array_equal(ga.evaluate(out, {x: x_val, "w": w_val}), expected)


def test_feed_by_node_wins_over_name_and_feed_overrides_a_parameter_value():
    p = ga.parameter("p", np.array([1.0, 2.0]))
    np.testing.assert_array_equal(ga.evaluate(p * 1.0), [1.0, 2.0])
    np.testing.assert_array_equal(ga.evaluate(p * 1.0, {"p": np.array([3.0, 4.0])}), [3.0, 4.0])
    np.testing.assert_array_equal(
        ga.evaluate(p * 1.0, {"p": np.array([3.0, 4.0]), p: np.array([5.0, 6.0])}), [5.0, 6.0]
    )


def test_bad_feed_key_raises_type_error():
    x = ga.placeholder("x", (1,))
    with pytest.raises(TypeError):
        ga.evaluate(x, {1: np.ones(1)})


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_evaluation_keeps_dtypes(dtype):
    model = models.seed_mlp(batch=3, widths=(5, 4, 3), dtype=dtype)
    feed = model.make_feed(seed=0)
    outputs = [model.loss, *ga.grad(model.loss, model.params)]
    values = ga.evaluate(outputs, feed)
    for node, value in zip(outputs, values):
        assert node.dtype == np.dtype(dtype)
        assert value.dtype == np.dtype(dtype) and value.shape == node.shape


def test_float64_feed_is_cast_into_a_float32_placeholder():
    x = ga.placeholder("x", (3,), "float32")
    value = np.array([0.1, 0.2, 0.3])
    for output in (x, x * 1.0):
        got = ga.evaluate(output, {x: value})
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, value.astype(np.float32))


def test_single_node_in_array_out_and_list_in_list_out():
    x = ga.parameter("x", np.arange(3.0))
    single = ga.evaluate(x + 1.0)
    assert isinstance(single, np.ndarray)
    both = ga.evaluate([x + 1.0, x * 2.0])
    assert isinstance(both, list) and len(both) == 2
    np.testing.assert_array_equal(both[1], 2 * np.arange(3.0))


def test_shared_intermediate_is_kept_while_it_has_consumers():
    x = ga.parameter("x", np.arange(4.0))
    h = ga.exp(x)
    outs = ga.evaluate([h * 2.0, ga.sum(h), h])
    e = np.exp(np.arange(4.0))
    np.testing.assert_array_equal(outs[0], e * 2.0)
    np.testing.assert_array_equal(outs[1], np.sum(e))
    np.testing.assert_array_equal(outs[2], e)


@pytest.mark.parametrize("bad", [7, -8])
def test_index_out_of_range_names_index_and_axis(bad):
    x = ga.placeholder("x", (4, 3), "float64")
    idx = ga.placeholder("idx", (4,), "int64")
    out = x[ga.arange(4), idx]
    feed = {x: np.zeros((4, 3)), idx: np.array([0, bad, 1, 2])}
    with pytest.raises((ga.EvaluationError, IndexError)) as info:
        ga.evaluate(out, feed)
    message = str(info.value)
    assert str(bad) in message and "axis 1" in message


def test_index_add_out_of_range_raises():
    g = ga.placeholder("g", (2,), "float64")
    node = ga.apply("index_add", (g, ga.constant(np.array([0, 9]))), shape=(3,))
    with pytest.raises((ga.EvaluationError, IndexError), match="9"):
        ga.evaluate(node, {g: np.ones(2)})


def test_feed_and_fed_arrays_are_not_mutated():
    model = models.residual_mlp(depth=2, width=3, batch=4, classes=3, dtype="float64")
    feed = model.make_feed(seed=2)
    snapshot = {node: array.copy() for node, array in feed.items()}
    keys = list(feed)
    grads = ga.grad(model.loss, model.params)
    values = ga.evaluate([model.loss, *grads], feed)
    assert list(feed) == keys
    for node, array in feed.items():
        np.testing.assert_array_equal(array, snapshot[node])
        assert array.dtype == snapshot[node].dtype
    # and a second run on the same feed gives the same results
    again = ga.evaluate([model.loss, *grads], feed)
    for a, b in zip(values, again):
        np.testing.assert_array_equal(a, b)


def test_parameter_value_is_a_read_only_copy():
    value = np.arange(3.0)
    p = ga.parameter("p", value)
    value[0] = 100.0
    np.testing.assert_array_equal(ga.evaluate(p * 1.0), [0.0, 1.0, 2.0])
    with pytest.raises(ValueError):
        p.value[0] = 5.0


def test_numpy_errors_are_reported_with_the_node():
    base = ga.constant(np.array([2, 3]))
    node = ga.pow(base, ga.constant(np.array([-1, 1])))
    with pytest.raises(ga.EvaluationError, match="pow"):
        ga.evaluate(node)


def test_inf_and_nan_propagate_like_numpy():
    x = ga.parameter("x", np.array([0.0, -1.0, 1.0]))
    got = ga.evaluate(ga.log(x))
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(got, np.log(np.array([0.0, -1.0, 1.0])))
