"""Sources: forward values of arange, one_hot and zeros; random draws are impure, seeded and give no gradient."""

from __future__ import annotations

import numpy as np
import pytest

import graphaudit as ga


def test_arange_forward():
    for n, dtype in ((5, "int64"), (0, "int64"), (4, "float32")):
        node = ga.arange(n, dtype=dtype)
        got = ga.evaluate(node)
        expected = np.arange(n, dtype=dtype)
        assert node.shape == expected.shape and got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)


def test_one_hot_forward():
    index = np.array([[0, 3], [2, 2], [1, 0]])
    depth = 4
    node = ga.one_hot(ga.constant(index), depth, dtype="float64")
    got = ga.evaluate(node)
    expected = np.eye(depth)[index]
    assert node.shape == index.shape + (depth,)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, expected)


def test_one_hot_out_of_range_raises_at_evaluate():
    node = ga.one_hot(ga.constant(np.array([0, 5])), 3)
    with pytest.raises((ga.EvaluationError, IndexError), match="5"):
        ga.evaluate(node)


def test_zeros_forward():
    node = ga.zeros((2, 3), dtype="float32")
    got = ga.evaluate(node)
    assert node.shape == (2, 3) and got.dtype == np.float32
    np.testing.assert_array_equal(got, np.zeros((2, 3), np.float32))


def test_random_ops_are_impure_and_seeded_by_key():
    assert ga.OPS["uniform"].pure is False
    assert ga.OPS["normal"].pure is False
    own = [name for name, op in ga.OPS.items() if op.infer is not None]  # graphaudit's ops (front-ends import theirs)
    deterministic = [name for name in own if ga.OPS[name].kind != "random"]
    assert all(ga.OPS[name].pure for name in deterministic)
    u = ga.evaluate(ga.uniform((50,), key=7, dtype="float64"))
    assert u.shape == (50,) and u.dtype == np.float64
    assert ((0 <= u) & (u < 1)).all()
    np.testing.assert_array_equal(u, ga.evaluate(ga.uniform((50,), key=7, dtype="float64")))
    assert not np.array_equal(u, ga.evaluate(ga.uniform((50,), key=8, dtype="float64")))
    n = ga.evaluate(ga.normal((2, 3), key=1, dtype="float32"))
    assert n.shape == (2, 3) and n.dtype == np.float32


def test_random_draws_have_no_gradient():
    x = ga.parameter("x", np.ones(3))
    noise = ga.uniform((3,), key=0, dtype="float64")
    g = ga.evaluate(ga.grad(ga.sum(x * noise), x))
    np.testing.assert_array_equal(g, ga.evaluate(noise))
