"""Semantic merging of imported JAX graphs: JAX's forms of graphaudit's ops, and dot_general with swapped operands."""

from __future__ import annotations

import numpy as np
import pytest

import graphaudit as ga
import graphaudit.frontends.jax as gj
from graphaudit.analysis.rewrites import RULES
from graphaudit.analysis.semantic import semantic_classes

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
pytest.importorskip("egglog")


def imported(f, *shapes):
    traced = jax.make_jaxpr(f)(*[jnp.ones(shape, jnp.float32) for shape in shapes])
    return gj.from_jaxpr(traced)


def equal_values(result, outputs):
    rng = np.random.default_rng(0)
    leaves = [n for n in ga.topological_order(outputs) if n.op in ("placeholder", "parameter")]
    feed = {leaf: rng.standard_normal(leaf.shape).astype(np.float32) for leaf in leaves}
    for old, new in zip(gj.evaluate(outputs, feed), gj.evaluate(result.outputs, feed)):
        np.testing.assert_allclose(new, old, rtol=1e-5, atol=1e-6)


def test_a_product_written_transposed_merges():
    outputs = imported(lambda x, w: (x @ w, (w.T @ x.T).T, jnp.exp(x @ w) + jnp.exp((w.T @ x.T).T)), (4, 3), (3, 2))
    plain, semantic = ga.merge(outputs), ga.merge(outputs, semantic=True)
    assert plain.outputs[0] is not plain.outputs[1]
    assert semantic.outputs[0] is semantic.outputs[1]
    assert "transpose-of-matmul" in semantic.saturation.matches
    equal_values(semantic, outputs)


def test_dot_general_with_swapped_operands_merges():
    def f(a, b):  # one batched product, and the same product with its operands swapped, then transposed back
        ab = jax.lax.dot_general(a, b, (((2,), (1,)), ((0,), (0,))))
        ba = jax.lax.dot_general(b, a, (((1,), (2,)), ((0,), (0,))))
        return ab, jnp.transpose(ba, (0, 2, 1))

    outputs = imported(f, (2, 4, 3), (2, 3, 5))
    semantic = ga.merge(outputs, semantic=True)
    assert ga.merge(outputs).nodes_after == 3
    assert semantic.outputs[0] is semantic.outputs[1] and semantic.nodes_after == 1
    assert semantic.saturation.matches.get("dot-general-swapped")
    equal_values(semantic, outputs)
    plain = ga.merge(outputs)
    without = tuple(rule for rule in RULES if rule.name != "dot-general-swapped")
    _, classes, _ = semantic_classes(plain.source, plain.canonical, plain.leaf, rules=without)
    assert (classes == plain.canonical).all()  # no other rule merges them


def test_jax_forms_with_options_set_are_left_alone():
    """A product with a preferred element type other than its output's is not graphaudit's matmul."""
    outputs = imported(lambda x, w: (jax.lax.dot_general(x, w, (((1,), (0,)), ((), ())), precision="highest"),
                                     x @ w), (4, 3), (3, 2))
    semantic = ga.merge(outputs, semantic=True)
    assert semantic.outputs[0] is not semantic.outputs[1]


def test_a_square_is_a_product_with_itself():
    """tanh's derivative as JAX writes it (1 - t**2) and as graphaudit's vjp writes it (1 - t*t)."""
    outputs = imported(lambda x: (1.0 - jnp.tanh(x) ** 2, 1.0 - jnp.tanh(x) * jnp.tanh(x)), (3, 4))
    semantic = ga.merge(outputs, semantic=True)
    assert ga.merge(outputs).outputs[0] is not ga.merge(outputs).outputs[1]
    assert semantic.outputs[0] is semantic.outputs[1]
    assert semantic.saturation.matches.get("square-is-mul") and not semantic.saturation.rounding_merges
    rng = np.random.default_rng(1)
    feed = {leaf: rng.standard_normal(leaf.shape).astype(np.float32)
            for leaf in ga.topological_order(outputs) if leaf.op == "placeholder"}
    before, after = gj.evaluate(outputs, feed), gj.evaluate(semantic.outputs, feed)
    assert [a.tobytes() for a in before] == [b.tobytes() for b in after]  # an exact rule: bit for bit
