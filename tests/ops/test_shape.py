"""Shape ops: a reversed slice, and reshape's errors."""

from __future__ import annotations

import numpy as np
import pytest
from test_all_ops import Case, _materialise, inputs, normal

import graphaudit as ga


# x[::-1]: slice.indices() gives stop=-1, which numpy reads as "the last element".
REVERSED_SLICE = Case("slice-reversed", inputs(normal(4)), lambda x: x[::-1], lambda x: x[::-1])


def test_reversed_slice_forward():
    _, arrays, _, out = _materialise(REVERSED_SLICE, 1)
    got = ga.evaluate(out)
    np.testing.assert_array_equal(got, arrays[0][::-1])


def test_reshape_error_names_the_shapes():
    with pytest.raises(ga.ShapeError) as info:
        ga.reshape(ga.placeholder("x", (2, 3)), (4, 2))
    assert "(2, 3)" in str(info.value) and "(4, 2)" in str(info.value)


def test_reshape_rejects_negative_dimensions():
    with pytest.raises((ga.ShapeError, ValueError)):
        ga.reshape(ga.placeholder("x", (6,)), (-2, -3))
