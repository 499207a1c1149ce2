"""attrs.py: merge keys are type-strict, and merge and digests agree by construction."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import graphaudit as ga
from graphaudit.core.attrs import StrictAttrs, attrs_text, canonical_attrs, typed_text
from graphaudit.core.ops import define_imported, elementwise_cost

define_imported("test_attrs.scale", kind="elementwise", cost=elementwise_cost,
                impl=lambda node, x: x * node.attr("factor"))

# Values that Python's == mixes up: 1, 1.0, True, np.float32(1) and np.int64(1) are all == 1;
# 0.0 == -0.0; (1,) == (1.0,) == (True,).
TRICKY = [1, 1.0, True, np.float32(1.0), np.int64(1), 0, 0.0, -0.0, False, "1", None, (1,), (1.0,), (True,),
          float("nan"), np.dtype("float32"), "float32"]


def scale(x, factor):
    return ga.Node("test_attrs.scale", (x,), (("factor", factor),), x.shape, x.dtype)


def same_type_and_repr(a, b) -> bool:
    return typed_text(a) == typed_text(b)


def test_hand_made_nodes_merge_only_when_their_attrs_match_in_type():
    x = ga.placeholder("x", (3,), "float64")
    nodes = [scale(x, value) for value in TRICKY] + [scale(x, value) for value in TRICKY]
    result = ga.merge(nodes)
    digest = ga.digests(nodes)
    n = len(TRICKY)
    for i, j in itertools.combinations(range(len(nodes)), 2):
        merged = result.mapping[nodes[i]] is result.mapping[nodes[j]]
        expected = same_type_and_repr(TRICKY[i % n], TRICKY[j % n])
        assert merged == expected, (TRICKY[i % n], TRICKY[j % n])
        assert (digest[nodes[i]] == digest[nodes[j]]) == merged
    assert result.nodes_after == n  # each value once, its second copy merged into the first


def test_attrs_read_back_as_given():
    x = ga.placeholder("x", (3,), "float64")
    node = scale(x, np.float32(2.0))
    assert type(node.attr("factor")) is np.float32 and dict(node.attrs) == {"factor": np.float32(2.0)}
    assert type(node.attrs) is StrictAttrs
    (value,) = ga.evaluate([node], {x: np.ones(3)})
    np.testing.assert_array_equal(value, [2.0, 2.0, 2.0])


def test_plain_attrs_stay_plain_tuples_and_strict_ones_are_interned():
    assert type(canonical_attrs({"axis": (0, 1), "name": "a", "n": None}.items())) is tuple
    first = canonical_attrs([("keepdims", True), ("axis", (0,))])
    second = canonical_attrs([("axis", (0,)), ("keepdims", True)])
    assert first is second and tuple(first) == (("axis", (0,)), ("keepdims", True))  # sorted, one object
    assert first != tuple(first)  # never equal to plain attrs: those hold no bool
    assert canonical_attrs([("keepdims", 1), ("axis", (0,))]) != first
    assert attrs_text(first) != attrs_text(canonical_attrs([("keepdims", 1), ("axis", (0,))]))


def test_own_ops_with_bool_attrs_still_merge():
    x = ga.placeholder("x", (3, 4), "float64")
    result = ga.merge([ga.sum(x, axis=1, keepdims=True), ga.sum(x, axis=1, keepdims=True),
                       ga.sum(x, axis=1, keepdims=False)])
    assert result.nodes_before == 3 and result.nodes_after == 2


@given(st.lists(st.sampled_from(range(len(TRICKY))), min_size=2, max_size=6),
       st.lists(st.sampled_from(range(len(TRICKY))), min_size=2, max_size=6))
def test_merge_and_digests_agree_on_random_attrs(first, second):
    x = ga.placeholder("x", (2,), "float64")
    nodes = [ga.Node("test_attrs.scale", (x,), tuple((f"k{i}", TRICKY[v]) for i, v in enumerate(values)),
                     x.shape, x.dtype) for values in (first, second)]
    merged = ga.merge(nodes).mapping
    digests = ga.digests(nodes)
    same = len(first) == len(second) and all(same_type_and_repr(TRICKY[a], TRICKY[b]) for a, b in zip(first, second))
    assert (merged[nodes[0]] is merged[nodes[1]]) == same == (digests[nodes[0]] == digests[nodes[1]])


@pytest.mark.parametrize("bad", [[("k", [1, 2])], [("k", {"a": 1})]])
def test_unhashable_attr_values_are_compared_by_their_text(bad):
    x = ga.placeholder("x", (2,), "float64")
    a = ga.Node("test_attrs.scale", (x,), tuple(bad), x.shape, x.dtype)
    b = ga.Node("test_attrs.scale", (x,), tuple(bad), x.shape, x.dtype)
    assert ga.merge([a, b]).nodes_after == 1
