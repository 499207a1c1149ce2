"""Nodes, leaves, walks and operator overloading."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import graphaudit as ga
from graphaudit import models
from graphaudit.core.graph import made_since, new_id_mark, paused_gc


def _reachable(outputs):
    """Every node the outputs depend on, found independently of topological_order."""
    seen, stack = {}, list(outputs)
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen[id(node)] = node
            stack.extend(node.inputs)
    return seen


# --- nodes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("attribute", ["op", "inputs", "attrs", "shape", "dtype", "name", "value", "call",
                                       "origin", "id", "brand_new"])
def test_nodes_are_immutable(attribute):
    x = ga.placeholder("x", (2,))
    y = x + 1.0
    before = getattr(y, attribute, None)
    with pytest.raises(AttributeError):
        setattr(y, attribute, 0)
    assert getattr(y, attribute, None) is before


def test_node_attributes_cannot_be_deleted():
    y = ga.placeholder("x", (2,)) + 1.0
    with pytest.raises(AttributeError):
        del y.op
    assert y.op == "add"


def test_nodes_are_small():
    node = ga.placeholder("x", (2,)) * 2.0
    assert not hasattr(node, "__dict__")


def test_node_has_no_truth_value():
    x = ga.placeholder("x", (2,))
    with pytest.raises(TypeError):
        bool(x)


def test_ids_follow_creation_order_and_labels():
    x = ga.placeholder("x", (2,))
    y = ga.exp(x)
    z = y + x
    assert x.id < y.id < z.id
    assert x.label == "x" and y.label == f"exp#{y.id}"
    assert "x" in repr(x) and "float32" in repr(x)


# --- leaves ----------------------------------------------------------------------------------


def test_parameter_with_a_shape_allocates_nothing():
    w = ga.parameter("w", (16384, 5000))
    assert w.value is None
    assert w.shape == (16384, 5000) and w.dtype == np.float32 and w.op == "parameter" and w.is_leaf
    assert w.size == 16384 * 5000


def test_parameter_with_a_value_keeps_its_shape_and_dtype():
    value = np.arange(6, dtype=np.float64).reshape(2, 3)
    w = ga.parameter("w", value)
    assert w.shape == value.shape and w.dtype == value.dtype
    np.testing.assert_array_equal(w.value, value)


@pytest.mark.parametrize(
    "build, error",
    [
        (lambda: ga.placeholder("x", (2, -1)), ValueError),
        (lambda: ga.parameter("w", (-3,)), ValueError),
        (lambda: ga.placeholder("x", (2, None)), TypeError),
        (lambda: ga.placeholder("x", (2,), dtype="not-a-dtype"), TypeError),
        (lambda: ga.constant(object()), TypeError),
    ],
    ids=["negative-dim", "negative-param-dim", "bad-shape", "bad-dtype", "object-constant"],
)
def test_bad_leaves_raise(build, error):
    with pytest.raises(error):
        build()


def test_float_dimension_is_rejected():
    with pytest.raises((TypeError, ValueError)):
        ga.placeholder("x", (2.5, 3))


def test_constant_is_read_only():
    c = ga.constant([1.0, 2.0])
    assert c.dtype == np.float64 and c.shape == (2,)
    with pytest.raises(ValueError):
        c.value[0] = 3.0


# --- topological order -----------------------------------------------------------------------


def _check_order(order, outputs):
    position = {id(n): i for i, n in enumerate(order)}
    assert len(position) == len(order), "a node appears twice"
    assert set(position) == set(_reachable(outputs)), "missing or extra nodes"
    for node in order:
        for source in node.inputs:
            assert position[id(source)] < position[id(node)]


def test_topological_order_of_the_seed_mlp_and_its_gradients():
    model = models.seed_mlp(batch=2, widths=(4, 3, 3, 2))
    grads = ga.grad(model.loss, model.params)
    for outputs in ([model.loss], grads, [model.loss, *grads], [*grads, model.loss]):
        order = ga.topological_order(outputs)
        _check_order(order, outputs)
        assert ga.topological_order(outputs) == order  # same walk, same list


def test_topological_order_with_shared_nodes_and_repeated_outputs():
    x = ga.placeholder("x", (3,))
    a = ga.exp(x)
    b = a * a
    c = a + b
    outputs = [c, a, c, b]
    order = ga.topological_order(outputs)
    _check_order(order, outputs)
    assert len(order) == len(_reachable(outputs))


def test_topological_order_is_deterministic_across_identical_builds():
    def signature():
        model = models.residual_mlp(depth=2, width=3, batch=2, classes=2)
        order = ga.topological_order(ga.grad(model.loss, model.params))
        index = {id(n): i for i, n in enumerate(order)}
        return [(n.op, n.name, n.shape, n.attrs, tuple(index[id(i)] for i in n.inputs)) for n in order]

    assert signature() == signature()


@pytest.mark.slow
def test_long_chain_needs_no_recursion():
    length = 100_000
    start = np.array([1.5, -2.0])
    x = ga.parameter("x", start)
    y = x
    for _ in range(length):
        y = -y
    order = ga.topological_order([y])
    assert len(order) == length + 1
    assert order[0] is x and order[-1] is y
    sign = (-1) ** length
    np.testing.assert_array_equal(ga.evaluate(y), sign * start)
    g = ga.grad(ga.sum(y), x)
    np.testing.assert_array_equal(ga.evaluate(g), sign * np.ones_like(start))


# --- operator overloading --------------------------------------------------------------------


def test_operators_build_the_right_ops():
    x = ga.placeholder("x", (3, 4))
    y = ga.placeholder("y", (3, 4))
    w = ga.placeholder("w", (4, 2))
    idx = ga.constant(np.array([0, 2]))
    cases = {
        "add": (x + y, (x, y)),
        "sub": (x - y, (x, y)),
        "mul": (x * y, (x, y)),
        "div": (x / y, (x, y)),
        "matmul": (x @ w, (x, w)),
        "pow": (x**y, (x, y)),
        "neg": (-x, (x,)),
        "index": (x[idx, idx], (x, idx, idx)),
        "transpose": (x.T, (x,)),
    }
    for op, (node, inputs) in cases.items():
        assert node.op == op
        assert len(node.inputs) == len(inputs) and all(a is b for a, b in zip(node.inputs, inputs))
    assert (x @ w).shape == (3, 2)
    assert x[idx, idx].shape == (2,)
    assert x.T.shape == (4, 3)


def test_reflected_operators_put_the_constant_first():
    x = ga.placeholder("x", (3,), "float64")
    for node, op in ((2.0 - x, "sub"), (2.0 / x, "div"), (2.0**x, "pow"), (2.0 + x, "add"), (2.0 * x, "mul")):
        assert node.op == op
        assert node.inputs[0].op == "constant" and node.inputs[0].value == 2.0
        assert node.inputs[1] is x
    value = np.array([1.0, 2.0, 4.0])
    np.testing.assert_allclose(ga.evaluate(2.0 - x, {x: value}), 2.0 - value)
    np.testing.assert_allclose(ga.evaluate(2.0 / x, {x: value}), 2.0 / value)
    np.testing.assert_allclose(ga.evaluate(2.0**x, {x: value}), 2.0**value)


def test_numpy_array_on_the_left_defers_to_the_node():
    x = ga.placeholder("x", (3,), "float64")
    a = np.array([1.0, 2.0, 3.0])
    for node, op in ((a + x, "add"), (a - x, "sub"), (a * x, "mul")):
        assert isinstance(node, ga.Node) and node.op == op
        assert node.inputs[1] is x
        np.testing.assert_array_equal(node.inputs[0].value, a)


def test_slicing_builds_slice_and_reshape():
    x = ga.placeholder("x", (4, 5))
    s = x[1:3, ::2]
    assert s.op == "slice" and s.shape == (2, 3)
    row = x[1]
    assert row.shape == (5,) and row.op == "reshape" and row.inputs[0].op == "slice"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_python_scalars_keep_the_float_dtype(dtype):
    x = ga.placeholder("x", (3,), dtype)
    built = [x * 2.0, 2.0 * x, x + 1, 1 - x, x / 3, 3.0 / x, x**2, -x, ga.maximum(x, 0.0),
             ga.where(ga.greater(x, 0.0), x, 0.0)]
    feed = {x: np.array([1.0, -2.0, 3.0], dtype=dtype)}
    for node, value in zip(built, ga.evaluate(built, feed)):
        assert node.dtype == np.dtype(dtype), node
        assert value.dtype == np.dtype(dtype), node


def test_python_scalars_with_integer_nodes():
    i = ga.placeholder("i", (3,), "int32")
    assert (i + 1).dtype == np.int32
    assert (i * 2.5).dtype == np.result_type(np.int32, np.float64)


def test_numpy_array_operands_promote_like_numpy():
    x = ga.placeholder("x", (3,), "float32")
    assert (x * np.ones(3, dtype=np.float64)).dtype == np.float64
    assert (x * np.ones(3, dtype=np.float32)).dtype == np.float32


class _Cyclic:
    """An object in a reference cycle: only the cyclic collector can free it."""

    def __init__(self):
        self.me = self


def test_paused_gc_pauses_and_restores_the_collector_also_on_error():
    assert gc.isenabled()
    with pytest.raises(RuntimeError), paused_gc():
        assert not gc.isenabled()
        with paused_gc():  # nested: still paused after the inner one
            pass
        assert not gc.isenabled()
        raise RuntimeError("inside")
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()


def test_cycles_made_while_paused_are_still_collected():
    with paused_gc():
        cyclic = _Cyclic()
        alive = weakref.ref(cyclic)
        del cyclic
    assert alive() is not None  # nothing collected it yet
    assert gc.get_freeze_count() == 0  # nothing left out of the collector's reach
    gc.collect()
    assert alive() is None


def test_paused_gc_leaves_what_someone_else_froze_frozen():
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 0
        with paused_gc():
            pass
        # not unfrozen (that would leave 0); a few frozen objects may die meanwhile (other threads free theirs)
        assert frozen - 100 <= gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()


def test_made_since_finds_what_was_built_after_the_mark_behind_the_outputs():
    x = ga.placeholder("x", (3,), "float64")
    before = ga.exp(x)
    mark = new_id_mark()
    inner = ga.tanh(before)
    out = inner * before
    unrelated = ga.sigmoid(x)  # made after the mark, but not behind the outputs
    assert made_since([out, None], mark) == [inner, out]
    assert made_since([before], mark) == []
    assert unrelated not in made_since([out], mark)


def test_building_sets_provenance_and_restores_it_even_after_an_error():
    from graphaudit.core.graph import build_context, building

    outer, inner = ga.GradCall(["a"]), ga.GradCall(["b"])
    origin = ga.placeholder("o", (2,))
    with building(outer):
        made_outer = ga.constant(1.0)
        with pytest.raises(RuntimeError):
            with building(inner, origin):
                made_inner = ga.constant(2.0)
                raise RuntimeError("stop")
        made_after = ga.constant(3.0)
    assert (made_outer.call, made_outer.origin) == (outer, None)
    assert (made_inner.call, made_inner.origin) == (inner, origin)
    assert (made_after.call, made_after.origin) == (outer, None)
    assert (build_context.call, build_context.origin) == (None, None)
    assert ga.constant(4.0).call is None


@pytest.mark.parametrize(
    "make, shape, dtype",
    [
        (lambda: ga.parameter("w", (3, 3)), (3, 3), "float32"),
        (lambda: ga.parameter("w", (3, 3), "float64"), (3, 3), "float64"),
        (lambda: ga.parameter("w", shape=(3, 3), dtype="float64"), (3, 3), "float64"),
        (lambda: ga.parameter("w", shape=5), (5,), "float32"),
        (lambda: ga.parameter("w", value=np.ones((2, 4), np.float16)), (2, 4), "float16"),
        (lambda: ga.parameter("w", value=np.ones((2, 4)), dtype="float32"), (2, 4), "float32"),
        (lambda: ga.parameter("w", np.ones(2, np.float64)), (2,), "float64"),
        (lambda: ga.parameter("w", 2.5), (), "float32"),
    ],
)
def test_parameter_takes_a_shape_or_a_value_by_position_or_keyword(make, shape, dtype):
    w = make()
    assert (w.op, w.name, w.shape, w.dtype) == ("parameter", "w", shape, np.dtype(dtype))
    if w.value is not None:
        assert w.value.shape == shape and w.value.dtype == np.dtype(dtype) and not w.value.flags.writeable


def test_parameter_value_is_a_copy_of_what_the_user_passed():
    array = np.ones(3)
    w = ga.parameter("w", value=array)
    array[0] = 7.0
    assert w.value[0] == 1.0 and array.flags.writeable
