"""Reductions: max's gradient between ties, and numpy's result dtypes for mean and sum."""

from __future__ import annotations

import numpy as np

import graphaudit as ga


def test_max_gradient_is_shared_between_ties():
    values = np.array([1.0, 3.0, 3.0, -2.0])
    x = ga.parameter("x", values)
    got = ga.evaluate(ga.grad(ga.max(x), x))
    winners = values == values.max()
    np.testing.assert_array_equal(got, winners / winners.sum())


def test_integer_mean_matches_numpy():
    a = np.array([1, 2])
    got = ga.evaluate(ga.mean(ga.constant(a)))
    np.testing.assert_array_equal(got, np.mean(a))


def test_bool_sum_counts_like_numpy():
    a = np.array([True, True, False, True])
    got = ga.evaluate(ga.sum(ga.constant(a)))
    np.testing.assert_array_equal(got, np.sum(a))
