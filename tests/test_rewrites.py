"""Each rewrite rule alone: both sides evaluate equal on random inputs, and the rule makes exactly one merge.

For every rule, :data:`CASES` builds two nodes that the rule (and no other) proves
equal. The test evaluates both on random inputs (bit for bit for an exact rule, to float
tolerance for one that holds up to rounding), and saturates the graph with that rule
alone (one node merged) and with no rule (none merged). Negative cases: what a rule
must not merge (an identity that would widen or promote, a transpose that is not an inverse).
"""

from __future__ import annotations

import numpy as np
import pytest

import graphaudit as ga
from graphaudit.analysis.rewrites import ASSOCIATIVITY, RULES
from graphaudit.analysis.semantic import Limits, semantic_classes

pytest.importorskip("egglog")

x = ga.placeholder("x", (3, 4), "float64")
y = ga.placeholder("y", (3, 4), "float64")
z = ga.placeholder("z", (3, 4), "float64")
a = ga.placeholder("a", (3, 5), "float64")
b = ga.placeholder("b", (5, 4), "float64")
t = ga.placeholder("t", (2, 3, 4), "float64")
v = ga.placeholder("v", (4,), "float64")
n = ga.placeholder("n", (3, 4), "int64")
zero, one = ga.constant(0.0), ga.constant(1.0)

CASES = {
    "add-commutes": lambda: (x + y, y + x),
    "mul-commutes": lambda: (x * y, y * x),
    "maximum-commutes": lambda: (ga.maximum(x, y), ga.maximum(y, x)),
    "equal-commutes": lambda: (ga.equal(x, y), ga.equal(y, x)),
    "neg-neg": lambda: (x, -(-x)),
    "sub-is-add-neg": lambda: (x + -y, x - y),
    "neg-out-of-mul": lambda: (-(x * y), -x * y),
    "transpose-transpose": lambda: (t, ga.transpose(ga.transpose(t, (1, 2, 0)), (2, 0, 1))),
    "transpose-identity": lambda: (t, ga.transpose(t, (0, 1, 2))),
    "reshape-reshape": lambda: (ga.reshape(x, (2, 6)), ga.reshape(ga.reshape(x, (12,)), (2, 6))),
    "reshape-identity": lambda: (x, ga.reshape(x, (3, 4))),
    "broadcast-broadcast": lambda: (ga.broadcast_to(v, (2, 3, 4)), ga.broadcast_to(ga.broadcast_to(v, (3, 4)), (2, 3, 4))),
    "broadcast-identity": lambda: (x, ga.broadcast_to(x, (3, 4))),
    "add-zero": lambda: (x, x + zero),
    "sub-zero": lambda: (x, x - zero),
    "mul-one": lambda: (x, x * one),
    "div-one": lambda: (x, x / one),
    "transpose-of-matmul": lambda: (ga.transpose(a @ b), ga.transpose(b) @ ga.transpose(a)),
    "sigmoid-through-exp": lambda: (ga.sigmoid(x), one / (one + ga.exp(-x))),
    "add-associates": lambda: ((x + y) + z, x + (y + z)),
    "mul-associates": lambda: ((x * y) * z, x * (y * z)),
}

# Rules over a framework's imported ops, tested where that framework is.
ELSEWHERE = {"dot-general-swapped": "tests/frontends/jax/test_jax_semantic.py",
             "square-is-mul": "tests/frontends/jax/test_jax_semantic.py"}
TESTED_HERE = [rule for rule in RULES + ASSOCIATIVITY if rule.name in CASES]

# Pairs that look like a rule's pattern but are not equal values: no rule may merge them.
NOT_EQUAL = {
    "a 0 that widens x": lambda: (v, v + ga.constant(np.zeros((3, 4)))),
    "a 1.0 that promotes an int": lambda: (n, n * one),
    "a transpose that is not the inverse": lambda: (t, ga.transpose(ga.transpose(t, (1, 2, 0)), (1, 2, 0))),
    "a transpose of a square matrix": lambda: (ga.transpose(y) @ x, ga.transpose(ga.transpose(y) @ x) * one),
    "subtraction does not commute": lambda: (x - y, y - x),
}

RNG = np.random.default_rng(7)
FEED = {node: RNG.standard_normal(node.shape) for node in (x, y, z, a, b, t, v)}
FEED[n] = np.arange(12).reshape(3, 4)


def merged(outputs, rules) -> int:
    """How many operations saturating with ``rules`` merges into an earlier, equal node (leaves included)."""
    result = ga.merge(outputs)
    _, classes, _ = semantic_classes(result.source, result.canonical, result.leaf, rules=rules)
    syntactic = np.count_nonzero(result.canonical != np.arange(len(result.source)))
    return int(np.count_nonzero(classes != np.arange(len(result.source)))) - syntactic


def test_every_rule_has_a_case():
    assert sorted([*CASES, *ELSEWHERE]) == sorted(rule.name for rule in RULES + ASSOCIATIVITY)


@pytest.mark.parametrize("rule", TESTED_HERE, ids=lambda rule: rule.name)
def test_both_sides_are_equal_values(rule):
    left, right = ga.evaluate(list(CASES[rule.name]()), FEED)
    assert left.shape == right.shape and left.dtype == right.dtype
    if rule.exact:
        assert np.array_equal(left, right)
    else:
        np.testing.assert_allclose(left, right, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rule", TESTED_HERE, ids=lambda rule: rule.name)
def test_the_rule_alone_makes_one_merge(rule):
    outputs = list(CASES[rule.name]())
    assert merged(outputs, ()) == 0
    assert merged(outputs, (rule,)) == 1


@pytest.mark.parametrize("case", sorted(NOT_EQUAL))
def test_no_rule_merges_unequal_values(case):
    left, right = NOT_EQUAL[case]()
    values = ga.evaluate([left, right], FEED)
    assert values[0].shape != values[1].shape or values[0].dtype != values[1].dtype or not np.allclose(*values)
    result = ga.merge([left, right], semantic=True, associativity=True, limits=Limits(iterations=5))
    assert result.outputs[0] is not result.outputs[1]
