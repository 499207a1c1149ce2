"""matmul: its shape errors name both operands."""

from __future__ import annotations

import pytest

import graphaudit as ga


def test_matmul_shape_mismatch_names_both_shapes():
    a, b = ga.placeholder("a", (3, 4)), ga.placeholder("b", (5, 6))
    with pytest.raises(ga.ShapeError) as info:
        a @ b
    assert "(3, 4)" in str(info.value) and "(5, 6)" in str(info.value)


def test_matmul_batch_mismatch_names_both_shapes():
    a, b = ga.placeholder("a", (2, 3, 4)), ga.placeholder("b", (3, 4, 5))
    with pytest.raises(ga.ShapeError) as info:
        ga.matmul(a, b)
    assert "(2, 3, 4)" in str(info.value) and "(3, 4, 5)" in str(info.value)


def test_matmul_needs_two_dimensions():
    with pytest.raises(ga.ShapeError, match=r"\(4,\)"):
        ga.matmul(ga.placeholder("v", (4,)), ga.placeholder("m", (4, 2)))
