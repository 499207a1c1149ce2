"""The registry: an unknown op is named, and shape errors are value errors."""

from __future__ import annotations

import pytest

import graphaudit as ga


def test_shape_errors_are_value_errors():
    assert issubclass(ga.ShapeError, ValueError) and issubclass(ga.ShapeError, ga.GraphauditError)


def test_unknown_op_names_it():
    with pytest.raises(ga.UnknownOpError, match="nope"):
        ga.apply("nope", [])
