"""frontends/jax/ops.py: how imported JAX primitives count, run and stay apart.

Cost rules are checked against hand counts; a primitive with no row in the table is
reported, not dropped, and still runs through JAX; random draws merge (pure functions of
the key), stateful and effectful primitives never do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

import graphaudit as ga  # noqa: E402
from graphaudit.analysis.cost import node_flops  # noqa: E402
from graphaudit.core.describe import operand_text  # noqa: E402
from graphaudit.frontends import jax as gj  # noqa: E402
from graphaudit.frontends.jax.ops import PRIMITIVES  # noqa: E402
from jax_functions import cond_program, sorted_loss  # noqa: E402

HERE = Path(__file__).resolve().parent


def test_cost_rules_of_imported_primitives():
    b, i, j, k = 2, 3, 4, 5
    n, c, h, w, o, kh, kw, groups = 2, 4, 6, 7, 6, 3, 2, 2

    def f(p, q, image, kernel, updates):
        batched = jnp.einsum("bij,bjk->bik", p, q)
        conv = jax.lax.conv_general_dilated(image, kernel, (1, 1), "VALID", feature_group_count=groups)
        scattered = jnp.zeros(10).at[jnp.array([1, 3, 3])].add(updates)
        return batched, conv, scattered, jnp.sum(batched, axis=1)

    args = (jnp.ones((b, i, j)), jnp.ones((b, j, k)), jnp.ones((n, c, h, w)), jnp.ones((o, c // groups, kh, kw)),
            jnp.ones(3))
    batched, conv, scattered, summed = gj.from_jaxpr(jax.make_jaxpr(f)(*args))
    assert batched.op == "jax.dot_general" and ga.OPS[batched.op].kind == "matmul"
    assert node_flops(batched) == 2 * b * i * j * k
    assert conv.op == "jax.conv_general_dilated" and conv.shape == (n, o, h - kh + 1, w - kw + 1)
    assert node_flops(conv) == 2 * conv.size * (c // groups) * kh * kw
    assert scattered.op == "jax.scatter-add" and node_flops(scattered) == 3
    assert summed.op == "jax.reduce_sum" and node_flops(summed) == b * i * k  # one per input element


def test_dot_general_text_shows_the_contraction_as_it_is():
    m, k, n, b = 6, 4, 3, 2

    def products(a, c, t, u, v):
        return (a @ c,  # a plain product
                jax.lax.dot_general(a, t, (((1,), (1,)), ((), ()))),  # a @ t.T, contracting (1, 1)
                jax.lax.dot_general(u, a, (((0,), (0,)), ((), ()))),  # u.T @ a
                jnp.einsum("bij,bjk->bik", v, jnp.ones((b, k, n))))  # batched

    args = (jnp.ones((m, k)), jnp.ones((k, n)), jnp.ones((n, k)), jnp.ones((m, n)), jnp.ones((b, m, k)))
    texts = [operand_text(node) for node in gj.from_jaxpr(jax.make_jaxpr(products)(*args))]
    assert texts == [f"{m}x{k} @ {k}x{n}", f"{m}x{k} @ ({n}x{k})ᵀ", f"({m}x{n})ᵀ @ {m}x{k}",
                     f"{b}x{m}x{k} · {b}x{k}x{n} over 2·1, batch 0·0"]


def test_pooling_costs_each_window_it_reads():
    n, c, h, w, k, stride = 2, 3, 8, 7, 3, 2
    pooled = n * c * -(-h // stride) * -(-w // stride)  # SAME padding: ceil(size / stride) windows per axis
    window, strides = (1, 1, k, k), (1, 1, stride, stride)

    def pools(x):
        maximum = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, window, strides, "SAME")
        total = jax.lax.reduce_window(x, 0.0, jax.lax.add, window, strides, "SAME")
        minimum = jax.lax.reduce_window(x, jnp.inf, jax.lax.min, window, strides, "SAME")
        product = jax.lax.reduce_window(x, 1.0, jax.lax.mul, window, strides, "SAME")  # the generic primitive
        return maximum, total, minimum, product

    x = jnp.ones((n, c, h, w))
    nodes = gj.from_jaxpr(jax.make_jaxpr(pools)(x))
    assert [node.op for node in nodes] == ["jax.reduce_window_max", "jax.reduce_window_sum",
                                           "jax.reduce_window_min", "jax.reduce_window"]
    assert [node_flops(node) for node in nodes] == [pooled * k * k] * 4

    def max_pool(x):
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, window, strides, "SAME")

    def max_pool_loss(x):
        return jnp.sum(max_pool(x) ** 2)

    order = ga.topological_order(gj.from_jaxpr(jax.make_jaxpr(jax.grad(max_pool_loss))(x)))
    (scatter,) = [node for node in order if node.op == "jax.select_and_scatter_add"]
    assert scatter.shape == x.shape and node_flops(scatter) == pooled * k * k  # one pick per window element
    tangent = gj.from_jaxpr(jax.make_jaxpr(lambda x, t: jax.jvp(max_pool, (x,), (t,))[1])(x, x))
    (gather,) = [node for node in ga.topological_order(tangent) if node.op == "jax.select_and_gather_add"]
    assert node_flops(gather) == pooled * k * k
    (value,) = ga.evaluate(nodes[:1], {"x": np.arange(x.size, dtype=np.float32).reshape(x.shape)})
    np.testing.assert_array_equal(value, np.asarray(pools(jnp.arange(x.size, dtype=jnp.float32).reshape(x.shape))[0]))


def test_unknown_primitives_are_reported_not_dropped():
    rng = np.random.default_rng(0)
    w, x = rng.standard_normal((4, 5), dtype=np.float32), rng.standard_normal((3, 4), dtype=np.float32)
    report = gj.audit(sorted_loss, w, x, argnums=0)
    assert ga.OPS["jax.sort"].cost is None
    for form in ("separate", "joint"):
        order = ga.topological_order(report.forms[form].outputs)
        sorts = sum(1 for n in order if n.op == "jax.sort")
        assert sorts >= 1
        assert dict(report.forms[form].cost.no_cost_rule) == {"jax.sort": sorts}
        assert report.forms[form].cost.nodes == sum(1 for n in order if not n.is_leaf)
    assert "no cost rule, FLOPs not counted: jax.sort" in report.to_text()
    (value,) = ga.evaluate(report.forms["joint"].outputs, gj.named_leaves(sorted_loss, w, x))  # sort: 2 results
    np.testing.assert_allclose(value, np.asarray(jax.grad(sorted_loss)(w, x)), rtol=1e-5, atol=1e-7)


def dropout_loss(p, x, key):
    """The issue's reproduction: a dropout mask drawn from ``key``, the same in every trace."""
    keep = jax.random.bernoulli(key, 0.5, (4, 8))
    return jnp.sum((jnp.where(keep, jnp.tanh(x @ p["a"]), 0.0) @ p["b"]) ** 2)


@pytest.mark.slow
@pytest.mark.parametrize("make_key", [jax.random.PRNGKey, jax.random.key], ids=["raw uint32 key", "typed key"])
def test_random_draws_are_pure_functions_of_the_key_and_merge(make_key):
    rng = np.random.default_rng(2)
    params = {"a": rng.standard_normal((8, 8), dtype=np.float32), "b": rng.standard_normal((8, 2), dtype=np.float32)}
    args = (params, rng.standard_normal((4, 8), dtype=np.float32), make_key(0))
    report = gj.audit(dropout_loss, *args, xla=make_key is jax.random.PRNGKey)  # XLA asked once
    assert ga.OPS["jax.random_bits"].pure and ga.OPS["jax.random_wrap"].pure

    def draws(form):
        return sum(1 for n in ga.topological_order(report.forms[form].outputs) if n.op == "jax.random_bits")

    assert draws("joint") == draws("separate_merged") == 1
    assert draws("separate") == len(report.wrt)  # one mask per trace, all the same
    assert report.merged_equals_joint is True
    assert report.forms["separate_merged"].cost.nodes == report.forms["joint_merged"].cost.nodes
    if "compile_check" in report.framework:
        compiled = report.framework["compile_check"]["rows"][0]
        assert compiled["separate"]["dots"] == compiled["joint"]["dots"]  # and XLA agrees
    values = gj.evaluate(report.forms["separate_merged"].outputs, gj.named_leaves(dropout_loss, *args))
    for value, reference in zip(values, jax.tree_util.tree_leaves(jax.grad(dropout_loss)(*args))):
        np.testing.assert_allclose(value, np.asarray(reference), rtol=1e-5, atol=1e-6)


def test_stateful_draws_never_merge():
    """``rng_uniform`` draws from XLA's hidden state: two equal-looking calls give different numbers."""
    closed = jax.make_jaxpr(lambda lo: jax.lax.rng_uniform(lo, 1.0, (3,)) + jax.lax.rng_uniform(lo, 1.0, (3,)))(0.0)
    (out,) = gj.from_jaxpr(closed)
    assert ga.OPS["jax.rng_uniform"].pure is False
    assert ga.merge([out]).removed == 0


@pytest.fixture
def unseen_loops():
    """``jax.cond`` and ``jax.while`` not yet registered, as in a fresh process; the registry is the
    process's and other tests read it, so it comes back as it was after the test."""
    saved_ops, saved_primitives = dict(ga.OPS), dict(PRIMITIVES)
    for name in ("jax.cond", "jax.while"):
        ga.OPS.pop(name, None)
        PRIMITIVES.pop(name, None)
    yield
    ga.OPS.clear()
    ga.OPS.update(saved_ops)
    PRIMITIVES.clear()
    PRIMITIVES.update(saved_primitives)


def cond_jaxpr(with_effect):
    """A ``lax.cond`` on data (imported whole) whose equation has side effects or not."""
    taken = (lambda u: (jax.debug.print("{}", u), u * 2)[1]) if with_effect else (lambda u: u * 2)
    return jax.make_jaxpr(lambda v: jax.lax.cond(v.sum() > 0, taken, lambda u: u, v))(jnp.ones(3))


def while_jaxpr(with_effect):
    """A ``lax.while_loop`` (always imported whole) whose equation has side effects or not."""
    body = (lambda v: (jax.debug.print("{}", v), v - 1)[1]) if with_effect else (lambda v: v - 1)
    return jax.make_jaxpr(lambda v: jax.lax.while_loop(lambda u: u > 0, body, v))(3)


def test_purity_is_part_of_the_name_so_the_order_of_audits_does_not_matter(unseen_loops):
    """An equation with side effects is ``jax.<primitive>[effects]``, impure; without, ``jax.<primitive>``,
    pure: one process imports both, in either order, and each as a fresh process would."""
    (effectful,) = gj.from_jaxpr(cond_jaxpr(with_effect=True))  # one result of the cond kept whole
    (plain,) = gj.from_jaxpr(cond_jaxpr(with_effect=False))
    assert effectful.inputs[0].op == "jax.cond[effects]" and plain.inputs[0].op == "jax.cond"
    for unit in (effectful.inputs[0], plain.inputs[0]):  # what reports say a cond kept whole runs
        assert ga.OPS[unit.op].operand_text(unit) == "cond 2 branches"
    assert ga.OPS["jax.cond[effects]"].pure is False and ga.OPS["jax.cond"].pure is True
    (plain_while,) = gj.from_jaxpr(while_jaxpr(with_effect=False))
    (effectful_while,) = gj.from_jaxpr(while_jaxpr(with_effect=True))  # pure first, then effectful: no refusal
    assert ga.OPS["jax.while"].pure is True and ga.OPS["jax.while[effects]"].pure is False


def test_one_process_audits_a_pure_then_an_effectful_then_the_pure_program_alike(unseen_loops):
    def loss(with_effect):
        def branch(u):
            if with_effect:
                jax.debug.print("{}", u)
            return jnp.tanh(u) * 2
        return lambda w, x: jnp.sum(jax.lax.cond(x.sum() > 0, branch, lambda u: u, x @ w) ** 2)

    w, x = np.ones((3, 2)), np.ones((4, 3))
    first = gj.audit(loss(False), w, x, argnums=0, loop_budget=0).to_dict(timings=False)
    effectful = gj.audit(loss(True), w, x, argnums=0, loop_budget=0)
    again = gj.audit(loss(False), w, x, argnums=0, loop_budget=0).to_dict(timings=False)
    assert "jax.cond[effects]" in {n.op for n in ga.core.graph.topological_order(effectful.forms["joint"].outputs)}
    assert first == again


@pytest.mark.subprocess
def test_pure_then_effectful_then_pure_again_report_as_in_fresh_processes():
    """One process audits a program whose cond is pure, then one where the same cond has a side effect,
    then the first again: each report is the one a fresh process gives."""
    script = (f"import json, sys; sys.path.insert(0, {str(HERE)!r})\n"
              "from graphaudit.frontends import jax as gj\nfrom jax_functions import cond_program\n"
              "fn, args = cond_program(with_effect=sys.argv[1] == 'effectful')\n"
              "print(json.dumps(gj.audit(fn, *args, argnums=(0, 1)).to_dict(timings=False)))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    fresh = {}
    for kind in ("pure", "effectful"):
        result = subprocess.run([sys.executable, "-c", script, kind], capture_output=True, text=True, env=env,
                                timeout=120)
        assert result.returncode == 0, result.stderr
        fresh[kind] = json.loads(result.stdout.splitlines()[-1])
    for kind in ("pure", "effectful", "pure"):
        fn, args = cond_program(with_effect=kind == "effectful")
        assert json.loads(json.dumps(gj.audit(fn, *args, argnums=(0, 1)).to_dict(timings=False))) == fresh[kind]
    # what tells them apart: the two grad calls' copies of the cond merge (one copy is duplicated) only when pure
    assert fresh["pure"]["duplicated"]["by_op"]["jax.cond"]["nodes"] == 2 - 1  # grad calls for w1 and w2
    assert not any(op.startswith("jax.cond") for op in fresh["effectful"]["duplicated"]["by_op"])
