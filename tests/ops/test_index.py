"""Indexing: float indices and mixed index kinds are refused."""

from __future__ import annotations

import numpy as np
import pytest

import graphaudit as ga


@pytest.mark.parametrize(
    "make_index",
    [lambda: 1.5, lambda: (0, 1.0), lambda: np.array([0.0, 1.0]), lambda: ga.constant(np.array([0.0, 1.0]))],
    ids=["float", "float-in-tuple", "float-array", "float-node"],
)
def test_float_indices_raise_type_error(make_index):
    x = ga.placeholder("x", (3, 4))
    with pytest.raises(TypeError):
        x[make_index()]


def test_take_with_float_index_raises_type_error():
    with pytest.raises(TypeError, match="float"):
        ga.take(ga.placeholder("x", (3, 4)), ga.constant(np.array([0.5])))


def test_mixing_index_arrays_and_slices_raises():
    with pytest.raises(TypeError):
        ga.placeholder("x", (3, 4))[np.array([0, 1]), 1:]
