"""Elementwise ops: add sub mul div pow maximum equal greater, neg exp log sqrt tanh sigmoid relu cast, where.

Each op's block reads top to bottom: shape rule, numpy forward, vjp rule, cost, its
``define(...)``, then the public builder. ``pow`` here is the graph op, shadowing the
builtin inside this module; nothing here needs the builtin.
"""

from __future__ import annotations

import numpy as np

from graphaudit.core.graph import Node, constant
from graphaudit.core.ops.registry import apply, define, elementwise_cost, no_flops
from graphaudit.core.ops.rules import (
    as_node, broadcast_shape_of, numpy_dtype, require_float, scalar_one, scalar_zero, unbroadcast,
)


# --- elementwise binary ops ---------------------------------------------------------------


def _binary_infer(name, function):
    def infer(a: Node, b: Node):
        shape = a.shape if a.shape == b.shape else broadcast_shape_of(name, a, b)
        return shape, numpy_dtype(function, a.dtype, b.dtype)

    return infer


def _add_vjp(node, g, wanted):
    a, b = node.inputs
    return [unbroadcast(g, a) if wanted[0] else None, unbroadcast(g, b) if wanted[1] else None]


def _sub_vjp(node, g, wanted):
    a, b = node.inputs
    return [unbroadcast(g, a) if wanted[0] else None, unbroadcast(neg(g), b) if wanted[1] else None]


def _mul_vjp(node, g, wanted):
    a, b = node.inputs
    return [unbroadcast(g * b, a) if wanted[0] else None, unbroadcast(g * a, b) if wanted[1] else None]


def _div_vjp(node, g, wanted):
    a, b = node.inputs
    return [
        unbroadcast(g / b, a) if wanted[0] else None,
        unbroadcast(neg(g * node / b), b) if wanted[1] else None,
    ]


def _pow_vjp(node, g, wanted):
    x, y = node.inputs
    return [
        unbroadcast(g * (y * pow(x, y - scalar_one(y))), x) if wanted[0] else None,
        unbroadcast(g * (node * log(x)), y) if wanted[1] else None,
    ]


def _maximum_vjp(node, g, wanted):
    a, b = node.inputs
    b_wins = greater(b, a)  # ties send the gradient to a
    return [
        unbroadcast(where(b_wins, scalar_zero(g), g), a) if wanted[0] else None,
        unbroadcast(where(b_wins, g, scalar_zero(g)), b) if wanted[1] else None,
    ]


define("add", _binary_infer("add", np.add), lambda n, a, b: a + b, _add_vjp, elementwise_cost, "elementwise", commutative=True)
define("sub", _binary_infer("sub", np.subtract), lambda n, a, b: a - b, _sub_vjp, elementwise_cost, "elementwise")
define("mul", _binary_infer("mul", np.multiply), lambda n, a, b: a * b, _mul_vjp, elementwise_cost, "elementwise", commutative=True)
define("div", _binary_infer("div", np.true_divide), lambda n, a, b: a / b, _div_vjp, elementwise_cost, "elementwise")
define("pow", _binary_infer("pow", np.power), lambda n, a, b: np.power(a, b), _pow_vjp, elementwise_cost, "elementwise")
define(
    "maximum", _binary_infer("maximum", np.maximum), lambda n, a, b: np.maximum(a, b), _maximum_vjp, elementwise_cost,
    "elementwise", commutative=True,
)


def _compare_infer(name):
    def infer(a: Node, b: Node):
        return broadcast_shape_of(name, a, b), np.dtype(bool)

    return infer


define("equal", _compare_infer("equal"), lambda n, a, b: np.equal(a, b), None, elementwise_cost, "elementwise",
       commutative=True)
define("greater", _compare_infer("greater"), lambda n, a, b: np.greater(a, b), None, elementwise_cost,
       "elementwise")


def _binary(name: str, a, b) -> Node:
    """Apply a binary op; a bare number takes its dtype from the node beside it."""
    if type(a) is not Node or type(b) is not Node:
        a, b = as_node(a, b if isinstance(b, Node) else None), as_node(b, a if isinstance(a, Node) else None)
    return apply(name, (a, b))


def add(a, b) -> Node:
    return _binary("add", a, b)


def sub(a, b) -> Node:
    return _binary("sub", a, b)


def mul(a, b) -> Node:
    return _binary("mul", a, b)


def div(a, b) -> Node:
    return _binary("div", a, b)


def pow(a, b) -> Node:
    return _binary("pow", a, b)


def maximum(a, b) -> Node:
    return _binary("maximum", a, b)


def equal(a, b) -> Node:
    """Elementwise ``a == b`` as a bool node (no gradient flows through it)."""
    return _binary("equal", a, b)


def greater(a, b) -> Node:
    """Elementwise ``a > b`` as a bool node (no gradient flows through it)."""
    return _binary("greater", a, b)


# --- elementwise unary ops ----------------------------------------------------------------


def _same_infer(x: Node):
    return x.shape, x.dtype


def _float_infer(name):
    def infer(x: Node):
        require_float(name, x)
        return x.shape, x.dtype

    return infer


def _sigmoid_impl(node, x):
    return np.exp(-np.logaddexp(0, -x))


define("neg", _same_infer, lambda n, x: -x, lambda n, g, w: [neg(g)], elementwise_cost, "elementwise")
define("exp", _float_infer("exp"), lambda n, x: np.exp(x), lambda n, g, w: [g * n], elementwise_cost, "elementwise")
define("log", _float_infer("log"), lambda n, x: np.log(x), lambda n, g, w: [g / n.inputs[0]], elementwise_cost,
       "elementwise")
define("sqrt", _float_infer("sqrt"), lambda n, x: np.sqrt(x),
       lambda n, g, w: [g / (n * constant(2, dtype=n.dtype))], elementwise_cost, "elementwise")
define("tanh", _float_infer("tanh"), lambda n, x: np.tanh(x),
       lambda n, g, w: [g * (scalar_one(n) - n * n)], elementwise_cost, "elementwise")
define("sigmoid", _float_infer("sigmoid"), _sigmoid_impl,
       lambda n, g, w: [g * (n * (scalar_one(n) - n))], elementwise_cost, "elementwise")
define("relu", _float_infer("relu"), lambda n, x: np.maximum(x, 0),
       lambda n, g, w: [where(greater(n.inputs[0], scalar_zero(n)), g, scalar_zero(g))], elementwise_cost, "elementwise")


def _cast_infer(x: Node, dtype):
    return x.shape, np.dtype(dtype)


def _cast_vjp(node, g, wanted):
    x = node.inputs[0]
    return [cast(g, x.dtype) if x.dtype.kind == "f" else None]


define("cast", _cast_infer, lambda n, x: x.astype(n.dtype), _cast_vjp, no_flops, "data")


def neg(x) -> Node:
    return apply("neg", (as_node(x),))


def exp(x) -> Node:
    return apply("exp", (as_node(x),))


def log(x) -> Node:
    return apply("log", (as_node(x),))


def sqrt(x) -> Node:
    return apply("sqrt", (as_node(x),))


def tanh(x) -> Node:
    return apply("tanh", (as_node(x),))


def sigmoid(x) -> Node:
    return apply("sigmoid", (as_node(x),))


def relu(x) -> Node:
    return apply("relu", (as_node(x),))


def cast(x, dtype) -> Node:
    return apply("cast", (as_node(x),), dtype=np.dtype(dtype).name)


# --- where ----------------------------------------------------------------------------------


def _where_infer(cond: Node, a: Node, b: Node):
    if cond.dtype != np.dtype(bool):
        raise TypeError(f"where: the condition must be bool, got {cond.dtype} ({cond!r})")
    return broadcast_shape_of("where", cond, a, b), np.result_type(a.dtype, b.dtype)


def _where_vjp(node, g, wanted):
    cond, a, b = node.inputs
    return [
        None,
        unbroadcast(where(cond, g, scalar_zero(g)), a) if wanted[1] else None,
        unbroadcast(where(cond, scalar_zero(g), g), b) if wanted[2] else None,
    ]


define("where", _where_infer, lambda n, c, a, b: np.where(c, a, b), _where_vjp, elementwise_cost, "elementwise")


def where(cond, a, b) -> Node:
    """Elementwise ``a if cond else b`` (numpy broadcasting)."""
    a = as_node(a, b if isinstance(b, Node) else None)
    b = as_node(b, a)
    return apply("where", (as_node(cond), a, b))
