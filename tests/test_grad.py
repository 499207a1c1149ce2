"""Reverse mode: second order, the shared models against finite differences, errors,
call semantics (list in/list out, fresh nodes, provenance) and separate vs joint."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from conftest import central_difference, np_mlp_loss, np_residual_loss

import graphaudit as ga
from graphaudit import models

SMALL_WIDTHS = (6, 5, 4, 3, 2)


def backward_ops(outputs):
    """The backward op nodes (non-leaf, built by some grad call) that ``outputs`` depend on."""
    return [n for n in ga.topological_order(outputs) if n.is_backward and not n.is_leaf]


# --- second order ----------------------------------------------------------------------------


def _second_order_setup():
    rng = np.random.default_rng(11)
    x_val = rng.standard_normal((3, 2))
    a = ga.constant(rng.standard_normal((4, 3)))
    c = ga.constant(rng.standard_normal((4, 2)))
    x = ga.parameter("x", x_val)
    f = ga.sum(ga.tanh(a @ x) * c) + ga.sum(x**3) + ga.max(ga.log_softmax(x, axis=0))
    g = ga.grad(f, x)

    def first_order(value):
        return ga.evaluate(g, {x: value})

    return rng, x, x_val, g, first_order


def test_hessian_vector_product_matches_differences_of_the_gradient():
    rng, x, x_val, g, first_order = _second_order_setup()
    v = rng.standard_normal(x_val.shape)
    hv = ga.grad(ga.sum(g * ga.constant(v)), x)
    eps = 1e-6
    expected = (first_order(x_val + eps * v) - first_order(x_val - eps * v)) / (2 * eps)
    np.testing.assert_allclose(ga.evaluate(hv), expected, rtol=1e-6, atol=1e-8)


def test_gradient_of_squared_gradient_norm_matches_central_differences():
    _, x, x_val, g, first_order = _second_order_setup()
    gg = ga.grad(ga.sum(g**2), x)
    expected = central_difference(lambda value: float(np.sum(first_order(value) ** 2)), [x_val], 0)
    np.testing.assert_allclose(ga.evaluate(gg), expected, rtol=1e-6, atol=1e-8)


def test_second_order_through_the_seed_loss():
    """A Hessian-vector product of the seed MLP's loss: runs the vjps of every backward op."""
    model = models.seed_mlp(batch=4, widths=SMALL_WIDTHS, dtype="float64")
    feed = model.make_feed(seed=5)
    w2 = model.params[2]
    g = ga.grad(model.loss, w2)
    v = np.random.default_rng(2).standard_normal(w2.shape)
    hv = ga.grad(ga.sum(g * ga.constant(v)), w2)
    eps = 1e-6

    def first_order(value):
        return ga.evaluate(g, {**feed, w2: value})

    expected = (first_order(feed[w2] + eps * v) - first_order(feed[w2] - eps * v)) / (2 * eps)
    np.testing.assert_allclose(ga.evaluate(hv, feed), expected, rtol=1e-6, atol=1e-8)


def test_nested_call_tags_its_own_nodes():
    _, x, _, g, _ = _second_order_setup()
    gg = ga.grad(ga.sum(g**2), x)
    first_calls = {n.call for n in backward_ops([g])}
    assert len(first_calls) == 1
    second = {n.call for n in backward_ops([gg])} - first_calls
    assert len(second) == 1 and gg.call in second


# --- the shared models against central differences --------------------------------------------


def _check_model_against_differences(model, reference):
    feed = model.make_feed(seed=0)
    x, y = (n for n in feed if n.op == "placeholder")
    values = [feed[p] for p in model.params]
    np.testing.assert_allclose(ga.evaluate(model.loss, feed), reference(feed[x], feed[y], values), rtol=1e-12)
    grads = ga.evaluate(ga.grad(model.loss, model.params), feed)

    def loss(*params):
        return reference(feed[x], feed[y], list(params))

    for position, (param, got) in enumerate(zip(model.params, grads)):
        assert got.shape == param.shape and got.dtype == param.dtype
        expected = central_difference(loss, values, position)
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9, err_msg=param.name)


def test_seed_mlp_gradients_match_central_differences():
    model = models.seed_mlp(batch=4, widths=SMALL_WIDTHS, dtype="float64")
    assert len(model.params) == 2 * (len(SMALL_WIDTHS) - 1)
    _check_model_against_differences(model, np_mlp_loss)


def test_deep_chain_gradients_match_central_differences():
    model = models.deep_chain(depth=3, width=3, batch=2, classes=2, dtype="float64")
    _check_model_against_differences(model, np_mlp_loss)


def test_residual_mlp_gradients_match_central_differences():
    model = models.residual_mlp(depth=2, width=3, batch=2, classes=2, dtype="float64")
    _check_model_against_differences(model, np_residual_loss)


def test_gradient_wrt_an_intermediate_node():
    x_val = np.random.default_rng(4).standard_normal(5)
    x = ga.parameter("x", x_val)
    h = x * 2.0
    got = ga.evaluate(ga.grad(ga.sum(ga.tanh(h)), h))
    np.testing.assert_allclose(got, 1 - np.tanh(2 * x_val) ** 2, rtol=1e-12)


# --- errors -------------------------------------------------------------------------------------


def test_non_scalar_cost_raises_value_error_naming_the_shape():
    x = ga.parameter("x", (3,))
    with pytest.raises(ValueError, match=r"\(3,\)"):
        ga.grad(x * 2.0, x)


def test_integer_cost_raises():
    with pytest.raises(TypeError):
        ga.grad(ga.sum(ga.arange(3)), ga.parameter("x", (1,)))


def test_disconnected_wrt_raises_naming_the_node():
    x, w9 = ga.parameter("x", (3,)), ga.parameter("w9", (2, 2))
    with pytest.raises(ga.DisconnectedInputError, match="w9"):
        ga.grad(ga.sum(x), [x, w9])


def test_disconnected_zero_returns_zeros():
    x_val = np.arange(3.0)
    x = ga.parameter("x", x_val)
    w9 = ga.parameter("w9", (2, 2), dtype="float32")
    gx, gw = ga.grad(ga.sum(x * x), [x, w9], disconnected="zero")
    assert gw.shape == w9.shape and gw.dtype == w9.dtype
    gx_val, gw_val = ga.evaluate([gx, gw])
    np.testing.assert_array_equal(gw_val, np.zeros((2, 2), np.float32))
    assert gw_val.dtype == np.float32
    np.testing.assert_array_equal(gx_val, 2 * x_val)


def test_bad_disconnected_option_raises():
    x = ga.parameter("x", (3,))
    with pytest.raises(ValueError, match="disconnected"):
        ga.grad(ga.sum(x), x, disconnected="ignore")


@pytest.mark.parametrize("wrt", [np.ones(3), "x", 3.0, [np.ones(3)]], ids=["array", "str", "float", "list-array"])
def test_wrt_that_is_not_a_node_raises_type_error(wrt):
    x = ga.parameter("x", (3,))
    with pytest.raises(TypeError):
        ga.grad(ga.sum(x), wrt)


def test_cost_that_is_not_a_node_raises_type_error():
    with pytest.raises(TypeError):
        ga.grad(1.0, ga.parameter("x", (3,)))


@pytest.mark.parametrize("empty", [[], ()], ids=["list", "tuple"])
def test_empty_wrt_raises_value_error(empty):
    x = ga.parameter("x", (3,))
    with pytest.raises(ValueError, match="empty"):
        ga.grad(ga.sum(x), empty)


# --- call semantics -----------------------------------------------------------------------------


def test_list_in_list_out_and_node_in_node_out():
    model = models.seed_mlp(batch=2, widths=(4, 3, 2))
    out = ga.grad(model.loss, model.params)
    assert isinstance(out, list) and len(out) == len(model.params)
    assert [g.shape for g in out] == [p.shape for p in model.params]
    one = ga.grad(model.loss, model.params[0])
    assert isinstance(one, ga.Node) and one.shape == model.params[0].shape
    single_list = ga.grad(model.loss, [model.params[0]])
    assert isinstance(single_list, list) and len(single_list) == 1


def test_duplicate_wrt_returns_the_same_node():
    model = models.seed_mlp(batch=2, widths=(4, 3, 2))
    w1, b1 = model.params[:2]
    first, second, third = ga.grad(model.loss, [w1, b1, w1])
    assert first is third and first is not second


def test_each_call_makes_fresh_nodes():
    model = models.seed_mlp(batch=2, widths=(4, 3, 2))
    w1 = model.params[0]
    g_a, g_b = ga.grad(model.loss, w1), ga.grad(model.loss, w1)
    ids_a = {n.id for n in backward_ops([g_a])}
    ids_b = {n.id for n in backward_ops([g_b])}
    assert ids_a and ids_b and not ids_a & ids_b
    assert {n.call for n in backward_ops([g_a])} != {n.call for n in backward_ops([g_b])}
    forward = {n.id for n in ga.topological_order([model.loss])}
    assert not ids_a & forward


def test_provenance_of_forward_and_backward_nodes():
    model = models.seed_mlp(batch=2, widths=(4, 3, 2))
    forward = ga.topological_order([model.loss])
    assert all(n.call is None and n.origin is None and not n.is_backward for n in forward)
    grads = ga.grad(model.loss, model.params)
    forward_ids = {id(n) for n in forward}
    built = [n for n in ga.topological_order(grads) if id(n) not in forward_ids]
    assert built
    calls = {n.call for n in built}
    assert len(calls) == 1
    (call,) = calls
    assert isinstance(call, ga.GradCall)
    assert call.wrt_names == tuple(p.name for p in model.params)
    for node in built:
        assert node.is_backward
        assert id(node.origin) in forward_ids, node
    # the adjoint of each weight comes from its own matmul's rule, of each bias from its add
    for param, g in zip(model.params, grads):
        assert param in g.origin.inputs


def _nodes_built_by(build):
    """``build()`` and the number of nodes (leaves included) created while it ran."""
    before = ga.constant(0.0).id
    result = build()
    return result, ga.constant(0.0).id - before - 1


@pytest.mark.parametrize(
    "build",
    [lambda: models.seed_mlp(batch=2, widths=(4, 3, 3, 2)), lambda: models.residual_mlp(depth=2, width=3, batch=2)],
    ids=["seed_mlp", "residual_mlp"],
)
def test_a_call_builds_only_what_its_outputs_use(build):
    """Rules build only what is wanted: every node a call makes is reachable from its result."""
    model = build()
    for wrt in [model.params, *model.params]:
        grads, built = _nodes_built_by(lambda: ga.grad(model.loss, wrt))
        outputs = grads if isinstance(grads, list) else [grads]
        used = [n for n in ga.topological_order(outputs) if n.is_backward]
        assert built == len(used), wrt


def _per_call_backward_ops(layers: int, layer: int, kind: str) -> Counter:
    """Backward op nodes of ``grad(loss, w_layer)`` or ``grad(loss, b_layer)`` in models.mlp.

    Derived from the vjp rules in graphaudit/core/ops/ for the loss ``neg(mean(index(log(softmax(z)))))``:
      neg: neg; mean: reshape (g to kept dims), div (by the count), broadcast_to;
      index: index_add; log: div; softmax: mul, sum, sub, mul;
      each layer k above ``layer``: add passes g through unchanged (same shape), matmul's rule
        for its input h is transpose + matmul, sigmoid's rule is sub, mul, mul;
      at ``layer``: w gets transpose + matmul, b gets the sum over the batch (unbroadcast).
    Leaves (the constants 1, count, 1) are not counted.
    """
    ops = Counter(neg=1, reshape=1, div=2, broadcast_to=1, index_add=1, mul=2, sum=1, sub=1)
    above = layers - layer
    ops.update(matmul=above, transpose=above, sub=above, mul=2 * above)
    ops.update(Counter(transpose=1, matmul=1) if kind == "w" else Counter(sum=1))
    return ops


def _joint_backward_ops(layers: int) -> Counter:
    """The joint call runs each rule once: head, every w and b, and layers-1 hidden adjoints."""
    ops = Counter(neg=1, reshape=1, div=2, broadcast_to=1, index_add=1, mul=2, sum=1, sub=1)
    ops.update(matmul=layers, transpose=layers, sum=layers)  # w's matmul, b's sum
    hidden = layers - 1
    ops.update(matmul=hidden, transpose=hidden, sub=hidden, mul=2 * hidden)
    return ops


def test_separate_calls_build_more_backward_ops_than_one_joint_call():
    model = models.seed_mlp()  # the seed's sizes: building is cheap, nothing is evaluated
    layers = len(model.params) // 2
    separate = [ga.grad(model.loss, p) for p in model.params]
    joint = ga.grad(model.loss, model.params)
    separate_ops = backward_ops(separate)
    joint_ops = backward_ops(joint)
    assert len(separate_ops) > len(joint_ops)

    assert Counter(n.op for n in joint_ops) == _joint_backward_ops(layers)
    expected_total = Counter()
    for position, (param, g) in enumerate(zip(model.params, separate)):
        layer, kind = position // 2 + 1, "wb"[position % 2]
        assert param.name == f"{kind}{layer}"
        expected = _per_call_backward_ops(layers, layer, kind)
        assert Counter(n.op for n in backward_ops([g])) == expected, param.name
        expected_total += expected
    assert Counter(n.op for n in separate_ops) == expected_total
    # in closed form: 2L calls of a 10-op head, 5 ops per layer above, 3 at the layer; 8L+5 joint
    head = 10
    assert len(separate_ops) == 2 * layers * head + 5 * layers * (layers - 1) + 3 * layers
    assert len(joint_ops) == 8 * layers + 5


@pytest.mark.parametrize(
    "build",
    [
        lambda: models.seed_mlp(batch=4, widths=SMALL_WIDTHS, dtype="float64"),
        lambda: models.seed_mlp(batch=4, widths=SMALL_WIDTHS, dtype="float32"),
        lambda: models.deep_chain(depth=4, width=5, batch=3, classes=3, dtype="float64"),
        lambda: models.residual_mlp(depth=3, width=4, batch=3, classes=3, dtype="float64"),
    ],
    ids=["seed-f64", "seed-f32", "deep_chain", "residual_mlp"],
)
def test_separate_and_joint_gradients_are_identical(build):
    model = build()
    feed = model.make_feed(seed=1)
    joint = ga.evaluate(ga.grad(model.loss, model.params), feed)
    separate = ga.evaluate([ga.grad(model.loss, p) for p in model.params], feed)
    for param, a, b in zip(model.params, joint, separate):
        assert a.dtype == b.dtype == param.dtype
        assert np.array_equal(a, b), param.name
        assert np.any(a != 0), param.name


def test_integer_wrt_gives_float_zeros_when_asked():
    """The seed's labels are int64 indices: no gradient; disconnected='zero' gives zeros of the cost's dtype."""
    model = models.seed_mlp(batch=4, widths=(6, 5, 4))
    labels = next(n for n in ga.topological_order([model.loss]) if n.op == "placeholder" and n.dtype.kind == "i")
    with pytest.raises(ga.DisconnectedInputError, match=labels.name):
        ga.grad(model.loss, labels)
    w, zero = ga.grad(model.loss, [model.params[0], labels], disconnected="zero")
    assert zero.dtype == model.loss.dtype and zero.shape == labels.shape and zero.op == "zeros"
    (value,) = ga.evaluate([zero], model.make_feed())
    assert value.dtype == model.loss.dtype and not value.any()
    assert w is not None and w.shape == model.params[0].shape
