"""Reductions (sum mean max) and the softmax family (softmax log_softmax).

``sum`` and ``max`` here are the graph ops, shadowing the builtins inside this module,
as numpy's do; nothing here needs the builtins. ``sum``'s and ``mean``'s vjps build
``broadcast_to`` through :func:`apply`: shape.py is defined after this family, and
importing it here would register its ops first and reorder ``OPS``.
"""

from __future__ import annotations

import math

import numpy as np

from graphaudit.errors import ShapeError
from graphaudit.core.graph import Node, constant
from graphaudit.core.ops.elementwise import cast, equal, exp
from graphaudit.core.ops.registry import apply, define, per_element, reduction_cost
from graphaudit.core.ops.rules import (
    as_node, kept_dims_shape, normalized_axes, numpy_dtype, require_float, with_kept_dims,
)


# --- reductions -----------------------------------------------------------------------------


def _reduce_infer(name, function):
    def infer(x: Node, axis, keepdims):
        if axis != normalized_axes(name, x.shape, axis):
            raise ShapeError(f"{name}: axis must be given normalised, got {axis!r}")
        if name == "max" and any(x.shape[a] == 0 for a in axis):
            raise ShapeError(f"max: cannot reduce an empty axis of shape {x.shape}")
        dtype = numpy_dtype(function, x.dtype) if name != "max" else x.dtype
        if keepdims:
            return kept_dims_shape(x.shape, axis), dtype
        return tuple(d for i, d in enumerate(x.shape) if i not in axis), dtype

    return infer


def _sum_vjp(node, g, wanted):
    x = node.inputs[0]
    return [apply("broadcast_to", (with_kept_dims(node, g),), shape=x.shape)]


def _mean_vjp(node, g, wanted):
    x = node.inputs[0]
    count = math.prod(x.shape[a] for a in node.attr("axis"))
    return [apply("broadcast_to", (with_kept_dims(node, g) / constant(count, dtype=g.dtype),), shape=x.shape)]


def _max_vjp(node, g, wanted):
    """The gradient goes to the maxima, shared equally between ties."""
    x = node.inputs[0]
    mask = cast(equal(x, with_kept_dims(node, node)), x.dtype)
    count = sum(mask, axis=node.attr("axis"), keepdims=True)
    return [mask * (with_kept_dims(node, g) / count)]


define("sum", _reduce_infer("sum", np.sum), lambda n, x: np.sum(x, axis=n.attr("axis"), keepdims=n.attr("keepdims")),
       _sum_vjp, reduction_cost, "reduction")
define("mean", _reduce_infer("mean", np.mean), lambda n, x: np.mean(x, axis=n.attr("axis"), keepdims=n.attr("keepdims")),
       _mean_vjp, reduction_cost, "reduction")
define("max", _reduce_infer("max", np.max), lambda n, x: np.max(x, axis=n.attr("axis"), keepdims=n.attr("keepdims")),
       _max_vjp, reduction_cost, "reduction")


def sum(x, axis=None, keepdims: bool = False) -> Node:
    x = as_node(x)
    return apply("sum", (x,), axis=normalized_axes("sum", x.shape, axis), keepdims=bool(keepdims))


def mean(x, axis=None, keepdims: bool = False) -> Node:
    x = as_node(x)
    return apply("mean", (x,), axis=normalized_axes("mean", x.shape, axis), keepdims=bool(keepdims))


def max(x, axis=None, keepdims: bool = False) -> Node:
    x = as_node(x)
    return apply("max", (x,), axis=normalized_axes("max", x.shape, axis), keepdims=bool(keepdims))


# --- softmax family -------------------------------------------------------------------------


def _softmax_infer(name):
    def infer(x: Node, axis):
        require_float(name, x)
        if not 0 <= axis < x.ndim:
            raise ShapeError(f"{name}: axis {axis} is out of range for shape {x.shape}")
        return x.shape, x.dtype

    return infer


def _softmax_impl(node, x):
    axis = node.attr("axis")
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax_impl(node, x):
    axis = node.attr("axis")
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _softmax_vjp(node, g, wanted):
    inner = sum(g * node, axis=node.attr("axis"), keepdims=True)
    return [node * (g - inner)]


def _log_softmax_vjp(node, g, wanted):
    total = sum(g, axis=node.attr("axis"), keepdims=True)
    return [g - exp(node) * total]


# max, subtract, exp, sum, divide (or log): five passes over the elements.
define("softmax", _softmax_infer("softmax"), _softmax_impl, _softmax_vjp, per_element(5), "elementwise")
define("log_softmax", _softmax_infer("log_softmax"), _log_softmax_impl, _log_softmax_vjp, per_element(5),
       "elementwise")


def softmax(x, axis: int = -1) -> Node:
    x = as_node(x)
    return apply("softmax", (x,), axis=normalized_axes("softmax", x.shape, axis)[0] if x.ndim else 0)


def log_softmax(x, axis: int = -1) -> Node:
    x = as_node(x)
    return apply("log_softmax", (x,), axis=normalized_axes("log_softmax", x.shape, axis)[0] if x.ndim else 0)
