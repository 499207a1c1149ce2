"""frontends/jax/importer.py: jaxprs as nodes, params as stable attrs, pytrees as named leaves."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

import graphaudit as ga  # noqa: E402
from graphaudit.analysis.cost import node_flops  # noqa: E402
from graphaudit.frontends import jax as gj  # noqa: E402

sys.path.insert(0, str(ROOT / "examples"))
import jax_transformer  # noqa: E402


def test_from_jaxpr_inlines_calls_and_names_inputs():
    def f(params, x):
        return jnp.sum(jax.nn.relu(jax.jit(jnp.tanh)(x @ params["w"])))

    traced = jax.make_jaxpr(f)({"w": jnp.ones((3, 2))}, jnp.ones((4, 3)))
    (out,) = gj.from_jaxpr(traced)
    order = ga.topological_order([out])
    leaves = [n for n in order if n.op == "placeholder"]
    assert sorted(n.name for n in leaves) == ["params['w']", "x"]
    ops = [n.op for n in order if not n.is_leaf]
    assert "jax.jit" not in ops and "jax.custom_jvp_call" not in ops
    assert {"jax.dot_general", "jax.tanh", "jax.max", "jax.reduce_sum"} <= set(ops)
    assert all(n.call is None for n in order)  # no transpose: all forward


def test_from_jaxpr_shares_given_inputs_and_checks_them():
    traced = jax.make_jaxpr(lambda a, b: a @ b)(jnp.ones((2, 3)), jnp.ones((3, 4)))
    a, b = ga.placeholder("a", (2, 3)), ga.parameter("b", (3, 4))
    first, second = gj.from_jaxpr(traced, [a, b]), gj.from_jaxpr(traced, [a, b])
    assert first[0].inputs == second[0].inputs == (a, b)
    assert ga.merge(first + second).removed == 1
    with pytest.raises(ValueError, match="2 inputs"):
        gj.from_jaxpr(traced, [a])
    with pytest.raises(ValueError, match=r"inputs\[1\] \(b\) is float32\[3, 5\].*float32\[3, 4\]"):
        gj.from_jaxpr(traced, [a, ga.parameter("b", (3, 5))])
    with pytest.raises(TypeError, match="expected a jaxpr"):
        gj.from_jaxpr(lambda a: a)


def test_params_become_hashable_stable_attrs():
    assert gj.hashable_param([np.int64(1), [2, np.int32(3)]]) == (1, (2, 3))
    assert type(gj.hashable_param((np.int64(1),))[0]) is int
    left = gj.hashable_param({"k": np.array([0.0], np.float32)})
    same = gj.hashable_param({"k": np.array([0.0], np.float32)})
    other = gj.hashable_param({"k": np.array([-0.0], np.float32)})
    assert isinstance(left, gj.Opaque) and left == same and hash(left) == hash(same)
    assert left != other  # 0.0 and -0.0 differ by their bytes
    assert "0x" not in repr(left) and left.digest in repr(left)
    jaxprs = [jax.make_jaxpr(lambda v: jnp.sin(v))(jnp.ones(3)).jaxpr for _ in range(2)]  # two traces
    assert jaxprs[0] is not jaxprs[1] and gj.hashable_param(jaxprs[0]) == gj.hashable_param(jaxprs[1])
    assert gj.hashable_param(jax.make_jaxpr(jnp.cos)(jnp.ones(3)).jaxpr) != gj.hashable_param(jaxprs[0])


@pytest.mark.slow
def test_pytree_params_are_flattened_and_named_by_path():
    fn, args, argnums = jax_transformer.build(batch=2, seq=4, d_model=8, heads=2, d_ff=16)
    report = gj.audit(fn, *args, argnums=argnums)
    leaves = jax.tree_util.tree_flatten_with_path(args[0])[0]
    assert report.wrt == ["params" + jax.tree_util.keystr(path) for path, _ in leaves]
    assert "params['attn']['wq']" in report.wrt and "params['mlp']['b2']" in report.wrt
    assert report.framework["traces"]["separate"] == len(leaves)
    assert report.merged_equals_joint is True
    assert report.forms["separate_merged"].cost.matmul_flops == report.forms["joint"].cost.matmul_flops
    values = gj.evaluate(report.forms["separate_merged"].outputs, gj.named_leaves(fn, *args))
    for value, reference in zip(values, jax.tree_util.tree_leaves(jax.jit(jax.grad(fn))(*args))):
        np.testing.assert_allclose(value, np.asarray(reference), rtol=1e-4, atol=1e-6)


def test_a_grad_inside_the_function_is_forward_work_of_the_audited_grad():
    """Meta-learning through one SGD step: ``f(w - lr * grad(f)(w))``. The inner grad's backward
    product is part of the function the audit differentiates: forward, re-traced by every call."""
    n, d, k = 5, 3, 4
    product = 2 * n * d * k  # every product below is an (n, d) by (d, k) contraction, one way or another

    def f(w, b, x):
        return jnp.sum(jnp.tanh(x @ w + b))

    def meta_loss(w, b, x):
        return f(w - 0.1 * jax.grad(f)(w, b, x), b, x)

    rng = np.random.default_rng(5)
    args = (rng.standard_normal((d, k), dtype=np.float32), np.zeros(k, np.float32),
            rng.standard_normal((n, d), dtype=np.float32))
    report = gj.audit(meta_loss, *args, argnums=(0, 1))

    def matmul_flops(form, backward):
        order = ga.topological_order(report.forms[form].outputs)
        return sum(node_flops(n) for n in order if n.op == "jax.dot_general" and (n.call is not None) == backward)

    # forward: x @ w, the inner grad's x^T @ dz, x @ w'; backward: dw' = x^T dz', ds = x dg, dw = x^T dz
    forward, joint_backward = 3 * product, 3 * product
    separate_backward = joint_backward + 2 * product  # b's call needs dw' and ds too, not dw
    assert matmul_flops("joint", backward=False) == forward
    assert matmul_flops("joint", backward=True) == joint_backward
    assert matmul_flops("separate", backward=True) == separate_backward
    assert report.framework["retraced_forward"]["matmul_flops"] == forward  # two traces: one re-traced
    assert report.duplicated["matmul_flops"] == forward + separate_backward - joint_backward
    joint_order = ga.topological_order(report.forms["joint"].outputs)
    assert report.forms["joint"].cost.backward_nodes == sum(1 for n in joint_order if n.call is not None)
    values = gj.evaluate(report.forms["separate_merged"].outputs, gj.named_leaves(meta_loss, *args))
    for value, reference in zip(values, jax.grad(meta_loss, argnums=(0, 1))(*args)):
        np.testing.assert_allclose(value, np.asarray(reference), rtol=1e-5, atol=1e-6)


# --- new with the package: the jaxpr text rule, and a lazy JAX ---------------------------------


def test_jaxprs_have_their_own_canonical_text():
    closed = jax.make_jaxpr(lambda v: jnp.sin(v) * 2.0)(jnp.ones(3))
    jaxpr_text, closed_text = gj.canonical_text(closed.jaxpr), gj.canonical_text(closed)
    assert jaxpr_text.startswith("jaxpr(") and "sin" in jaxpr_text and " at 0x" not in jaxpr_text
    assert closed_text.startswith("closed_jaxpr(") and closed_text.endswith("; consts=list())")
    assert gj.canonical_text([1, "a"]) == "list(int:1, str:'a')"  # other values: the common rules


@pytest.mark.subprocess
def test_importing_the_front_end_imports_no_jax():
    script = "import sys, graphaudit.frontends.jax as gj; gj.hashable_param({'k': 1}); print('jax' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_imported_params_that_differ_only_in_type_stay_apart():
    """``exponent_bits=8`` and ``exponent_bits=8.0`` are == in Python; the nodes must not merge."""
    from jax.extend.core import ClosedJaxpr

    closed = jax.make_jaxpr(lambda v: jax.lax.reduce_precision(v, exponent_bits=8, mantissa_bits=7))(jnp.ones(3))

    def with_bits(bits):
        (eqn,) = closed.jaxpr.eqns
        jaxpr = closed.jaxpr.replace(eqns=[eqn.replace(params={**eqn.params, "exponent_bits": bits})])
        return ClosedJaxpr(jaxpr, closed.consts)

    x = ga.placeholder("x", (3,), "float32")
    (as_int,), (as_float,), (again,) = (gj.from_jaxpr(with_bits(b), [x]) for b in (8, 8.0, 8))
    result = ga.merge([as_int, as_float, again])
    assert result.mapping[as_int] is result.mapping[again] is not result.mapping[as_float]
    digests = ga.digests([as_int, as_float, again])
    assert digests[as_int] == digests[again] != digests[as_float]


def test_imported_views_write_no_bytes():
    from graphaudit.analysis.cost import node_bytes

    closed = jax.make_jaxpr(lambda a, b: jnp.reshape(a.T @ b, (-1,))[1:5])(jnp.ones((3, 4)), jnp.ones((3, 2)))
    (out,) = gj.from_jaxpr(closed)
    written = {n.op: node_bytes(n) for n in ga.topological_order([out]) if not n.is_leaf}
    assert written["jax.transpose"] == written["jax.reshape"] == written["jax.slice"] == 0
    assert written["jax.dot_general"] == 4 * 2 * 4  # the product's float32 result
