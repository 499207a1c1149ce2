"""frontends/jax/arguments.py: what audit differentiates, and how many separate calls it makes.

Half-precision leaves, ``(loss, aux)`` losses, pytrees with leaves that are not arrays
(Equinox modules), and grouping leaves into one separate grad per group; counts are hand
derivations over the widths and the batch, values are jax.grad's.
"""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

import graphaudit as ga  # noqa: E402
from graphaudit.analysis.cost import node_bytes  # noqa: E402
from graphaudit.frontends import jax as gj  # noqa: E402

WIDTHS, BATCH = (5, 4, 3, 2), 3


def layer_params(widths=WIDTHS, seed=0):
    rng = np.random.default_rng(seed)
    return [{"w": rng.standard_normal((a, b), dtype=np.float32) / np.float32(np.sqrt(a)),
             "b": rng.standard_normal(b, dtype=np.float32)} for a, b in zip(widths, widths[1:])]


def mlp_loss(params, x):
    h = x
    for layer, p in enumerate(params):
        h = h @ p["w"] + p["b"]
        if layer < len(params) - 1:
            h = jnp.tanh(h)
    return jnp.sum(h ** 2)


def products(widths=WIDTHS, batch=BATCH):
    """``P_j = 2 * n * d(j-1) * d(j)``: layer j's forward product, weight gradient and input gradient."""
    return [2 * batch * a * b for a, b in zip(widths, widths[1:])]


@pytest.fixture(scope="module")
def args():
    return layer_params(), np.random.default_rng(1).standard_normal((BATCH, WIDTHS[0]), dtype=np.float32)


def assert_grads(report, expected_tree, fn, args):
    values = gj.evaluate(report.forms["separate_merged"].outputs, gj.named_leaves(fn, *args))
    for value, reference in zip(values, jax.tree_util.tree_leaves(expected_tree)):
        np.testing.assert_allclose(value, np.asarray(reference), rtol=1e-5, atol=1e-6)


def test_has_aux_differentiates_the_loss_and_leaves_the_aux(args):
    def with_aux(params, x):
        loss = mlp_loss(params, x)
        return loss, {"loss": loss, "first": jnp.max(x @ params[0]["w"])}

    report = gj.audit(with_aux, *args, has_aux=True)
    plain = gj.audit(mlp_loss, *args)
    assert report.wrt == plain.wrt
    for form in ("separate", "joint", "separate_merged"):
        assert report.forms[form].cost == plain.forms[form].cost  # the aux is never part of a gradient
    assert_grads(report, jax.grad(with_aux, has_aux=True)(*args)[0], with_aux, args)
    with pytest.raises(TypeError, match=r"has_aux=True, but the function did not return a \(loss, aux\) pair"):
        gj.audit(mlp_loss, *args, has_aux=True)


def test_group_module_makes_one_grad_call_per_layer(args):
    report = gj.audit(mlp_loss, *args, group="module")
    p = products()
    layers = len(p)
    assert report.framework["traces"]["separate"] == layers
    assert report.framework["groups"] == [[f"params[{j}]['b']", f"params[{j}]['w']"] for j in range(layers)]
    # the call for layer j rebuilds the input gradients of the layers above it: layer i's by i - 1 calls
    backward = sum((i - 2) * p[i - 1] for i in range(2, layers + 1))
    forward = (layers - 1) * sum(p)  # and each call re-traces the forward pass
    assert report.duplicated["matmul_flops"] == backward + forward
    assert report.merged_equals_joint is True
    assert "jax.grad traces, one per group of parameters" in report.to_text()
    assert_grads(report, jax.grad(mlp_loss)(*args), mlp_loss, args)


def test_group_by_a_function_of_the_names(args):
    report = gj.audit(mlp_loss, *args, group=lambda name: name.endswith("['w']"))
    layers = len(WIDTHS) - 1
    assert report.framework["groups"] == [[f"params[{j}]['b']" for j in range(layers)],
                                          [f"params[{j}]['w']" for j in range(layers)]]
    p = products()
    # two calls: both need every input gradient, and the weights' call re-traces the forward pass
    assert report.duplicated["matmul_flops"] == sum(p[1:]) + sum(p)
    with pytest.raises(ValueError, match="group must be None, 'module' or a function"):
        gj.audit(mlp_loss, *args, group="layer")


def test_integer_leaves_inside_a_pytree_are_left_alone_and_non_arrays_are_static(args):
    params, x = args

    def loss(state, x):
        scale = 2.0 if state["train"] else 1.0  # a Python bool: static, never traced
        return state["activation"](mlp_loss(state["params"], x)) * scale + jnp.sum(state["step"])

    state = {"params": params, "step": np.arange(3, dtype=np.int32), "train": True, "activation": jnp.tanh}
    report = gj.audit(loss, state, x)
    weights = [f"state['params'][{j}]['{k}']" for j in range(len(WIDTHS) - 1) for k in ("b", "w")]
    assert report.wrt == weights  # the activation and the flag are static, the integer steps not differentiated
    assert list(gj.named_leaves(loss, state, x)) == [*weights, "state['step']", "x"]
    assert_grads(report, jax.grad(lambda p: loss({**state, "params": p}, x))(params), loss, (state, x))
    assert state["train"] is True and state["step"].tolist() == [0, 1, 2]  # nothing the user passed changed


@pytest.mark.slow
def test_equinox_modules_are_audited_whole():
    eqx = pytest.importorskip("equinox")
    in_size, width, out_size, depth = 4, 5, 2, 2
    model = eqx.nn.MLP(in_size, out_size, width, depth, key=jax.random.PRNGKey(0))
    x = np.random.default_rng(2).standard_normal((BATCH, in_size), dtype=np.float32)

    def loss(model, x):
        return jnp.mean(jax.vmap(model)(x) ** 2)

    report = gj.audit(loss, model, x, group="module")
    layers = depth + 1
    assert report.framework["groups"] == [[f"model.layers[{j}].weight", f"model.layers[{j}].bias"]
                                          for j in range(layers)]
    p = products((in_size, *[width] * depth, out_size))
    assert report.forms["joint"].cost.matmul_flops == 2 * sum(p) + sum(p[1:])  # forward, dW, input gradients
    assert report.merged_equals_joint is True
    assert_grads(report, eqx.filter_grad(loss)(model, x), loss, (model, x))


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_parameters_are_differentiated_costed_and_evaluated(dtype):
    n, d_in, d_out = 5, 3, 4
    rng = np.random.default_rng(4)
    params = {"w": jnp.asarray(rng.standard_normal((d_in, d_out)), dtype), "b": jnp.zeros(d_out, dtype)}
    x = jnp.asarray(rng.standard_normal((n, d_in)), dtype)

    def loss(p, x):
        return jnp.sum(jnp.tanh(x @ p["w"] + p["b"]).astype(jnp.float32) ** 2)

    report = gj.audit(loss, params, x)
    assert report.wrt == ["p['b']", "p['w']"] and report.merged_equals_joint is True
    order = ga.topological_order(report.forms["joint"].outputs)
    (forward,) = [node for node in order if node.op == "jax.dot_general" and node.call is None]
    assert forward.dtype == np.dtype(dtype) and node_bytes(forward) == n * d_out * 2  # two bytes an element
    assert report.forms["joint"].cost.matmul_flops == 2 * (2 * n * d_in * d_out)  # forward and dW
    expected = jax.tree_util.tree_leaves(jax.grad(loss)(params, x))
    feed = gj.named_leaves(loss, params, x)
    for values in (gj.evaluate(report.forms["separate_merged"].outputs, feed),
                   ga.evaluate(report.forms["separate"].outputs, feed)):
        for value, reference in zip(values, expected):
            assert value.dtype == np.dtype(dtype)
            np.testing.assert_allclose(value.astype(np.float32), np.asarray(reference, np.float32), rtol=2e-2)
