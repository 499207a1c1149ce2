"""The op registry: each op's shape rule, numpy forward, backward rule and cost, side by side.

Every op is an :class:`Op` record in ``OPS``. Reading one op's block top to bottom
tells everything about it: what shapes it accepts (``infer``), what it computes
(``impl``), how its vector-Jacobian product is built from other ops (``vjp``), and
how many FLOPs it costs (``cost``). The public function of the same name (``sigmoid``,
``matmul``, ...) builds a node through :func:`apply`.

A ``vjp`` rule is called as ``vjp(node, g, wanted)``: ``g`` is the adjoint of
``node``'s output and ``wanted[i]`` says whether input ``i`` needs its adjoint; it
returns one node (or ``None``) per input. Rules build only what is wanted, so a
``grad`` call for ``b1`` never builds the matmul that only ``w1`` needs. A rule may
look at ``g`` only through its shape and dtype: :func:`graphaudit.separate_grads`
replays what a rule built for other adjoints of the same shape and dtype. An op with
``vjp=None`` is piecewise constant (comparisons, integer ops, random draws): its
inputs get no gradient through it.

Note: this module defines ``sum``, ``max`` and ``pow`` as graph ops, like numpy does;
the builtins are reached through :mod:`builtins` here.
"""

from __future__ import annotations

import builtins
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from graphaudit.errors import ShapeError, UnknownOpError
from graphaudit.graph import Node, constant, new_node

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Op:
    """One entry of the registry.

    Ops imported from a framework (:func:`define_imported`) may lack parts: no ``infer``
    (their shapes come from the framework), no ``impl`` (they cannot be evaluated), no
    ``vjp``, or no ``cost`` rule (reports list them as "no cost rule", never drop them).
    """

    name: str
    infer: Callable[..., tuple[Shape, np.dtype]] | None
    impl: Callable[..., np.ndarray] | None
    vjp: Callable[[Node, Node, tuple[bool, ...]], list[Node | None]] | None
    cost: Callable[[Node], int] | None
    kind: str  # "elementwise", "matmul", "reduction", "data", "source", "random", "imported"
    pure: bool = True
    commutative: bool = False
    doc: str = ""


OPS: dict[str, Op] = {}


def define(name, infer, impl, vjp, cost, kind, *, pure=True, commutative=False, doc="") -> Op:
    op = Op(name, infer, impl, vjp, cost, kind, pure, commutative, doc)
    OPS[name] = op
    return op


def define_imported(
    name: str,
    *,
    kind: str = "imported",
    cost: Callable[[Node], int] | None = None,
    impl: Callable[..., np.ndarray] | None = None,
    pure: bool = True,
    commutative: bool = False,
    doc: str = "",
) -> Op:
    """Register an op that a front-end imports from a framework (e.g. ``jax.dot_general``).

    Nodes of such ops are built directly with :class:`Node` (the framework knows their
    shapes). Registering the same name again with the same parts is a no-op; with
    different parts it is an error, so two front-ends cannot silently disagree.
    """
    op = Op(name, None, impl, None, cost, kind, pure, commutative, doc)
    existing = OPS.get(name)
    if existing is not None and existing != op:
        raise ValueError(f"op {name!r} is already registered differently")
    OPS[name] = op
    return op


def get_op(name: str) -> Op:
    """The registry entry for ``name``, or an error listing the known ops."""
    try:
        return OPS[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(OPS))
        raise UnknownOpError(f"unknown op {name!r}; known ops: {known}") from None


def apply(name: str, inputs: Sequence[Node], **attrs: Any) -> Node:
    """Build one node of op ``name``: checks shapes and dtypes, then records provenance."""
    op = OPS.get(name) or get_op(name)
    inputs = tuple(inputs)
    for value in inputs:
        if type(value) is not Node:
            _check_inputs(name, inputs)
    shape, dtype = op.infer(*inputs, **attrs)
    if not isinstance(dtype, np.dtype):
        dtype = np.dtype(dtype)
    return new_node(name, inputs, tuple(sorted(attrs.items())) if attrs else (), shape, dtype)


def _check_inputs(name: str, inputs: tuple) -> None:
    for position, value in enumerate(inputs):
        if not isinstance(value, Node):
            raise TypeError(f"{name}: input {position} is a {type(value).__name__}, not a graphaudit Node")


# --- cost rules (FLOPs; bytes are counted in cost.py from output shapes) --------------


def elementwise_cost(node: Node) -> int:
    """One FLOP per output element."""
    return node.size


def reduction_cost(node: Node) -> int:
    """One FLOP per input element."""
    return node.inputs[0].size


def no_flops(node: Node) -> int:
    """Data movement and sources: bytes, but no arithmetic."""
    return 0


def per_element(count: int) -> Callable[[Node], int]:
    """A composite op that does ``count`` FLOPs per output element."""

    def cost(node: Node) -> int:
        return count * node.size

    cost.__doc__ = f"{count} FLOPs per output element."
    return cost


# --- helpers shared by the rules --------------------------------------------------------


def _lift(value, like: Node | None = None) -> Node:
    """A node for ``value``: nodes pass through; Python and numpy numbers become constants.

    A bare Python number takes the float dtype of the node it meets (``x * 2.0`` stays
    float32 when ``x`` is), as in numpy's weak scalar promotion.
    """
    if isinstance(value, Node):
        return value
    if isinstance(value, (bool, int, float)) and like is not None:
        if like.dtype.kind == "f" or (isinstance(value, int) and like.dtype.kind in "iu"):
            return constant(value, dtype=like.dtype)
    return constant(value)


def broadcast_shapes(*shapes: Shape) -> Shape | None:
    """numpy's broadcasting of ``shapes``, or None when they do not broadcast.

    Plain Python: numpy's own version allocates arrays, and this runs for every node.
    """
    if len(shapes) == 2 and (not shapes[0] or not shapes[1]):  # a scalar broadcasts to anything
        return shapes[1] or shapes[0]
    result = list(shapes[0])
    for shape in shapes[1:]:
        if len(shape) > len(result):
            result = [1] * (len(shape) - len(result)) + result
        offset = len(result) - len(shape)
        for axis, size in enumerate(shape):
            current = result[offset + axis]
            if current == 1:
                result[offset + axis] = size
            elif size != 1 and size != current:
                return None
    return tuple(result)


def _broadcast(op: str, *nodes: Node) -> Shape:
    first = nodes[0].shape
    for node in nodes:
        if node.shape != first:
            break
    else:
        return first
    result = broadcast_shapes(*(n.shape for n in nodes))
    if result is None:
        shapes = " and ".join(str(n.shape) for n in nodes)
        raise ShapeError(f"{op}: shapes {shapes} do not broadcast")
    return result


def _need_float(op: str, node: Node) -> None:
    if node.dtype.kind != "f":
        raise TypeError(f"{op}: needs a floating-point input, got {node.dtype} ({node!r})")


def _need_int(op: str, node: Node, what: str) -> None:
    if node.dtype.kind not in "iu":
        raise TypeError(f"{op}: {what} must be an integer array, got {node.dtype} ({node!r})")


def _axes(op: str, shape: Shape, axis) -> tuple[int, ...]:
    """``axis`` (None, an int or a tuple) as sorted non-negative axes of ``shape``."""
    if axis is None:
        return tuple(range(len(shape)))
    raw = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    axes = []
    for a in raw:
        if not isinstance(a, (int, np.integer)) or not -len(shape) <= a < len(shape):
            raise ShapeError(f"{op}: axis {a!r} is out of range for shape {shape}")
        axes.append(int(a) % len(shape))
    if len(set(axes)) != len(axes):
        raise ShapeError(f"{op}: repeated axis in {axis!r}")
    return tuple(sorted(axes))


def _kept_shape(shape: Shape, axes: tuple[int, ...]) -> Shape:
    return tuple(1 if i in axes else d for i, d in enumerate(shape))


def _with_kept_dims(node: Node, g: Node) -> Node:
    """``g`` (adjoint of a reduction ``node``) reshaped so that it broadcasts against the input."""
    kept = _kept_shape(node.inputs[0].shape, node.attr("axis"))
    return g if g.shape == kept else reshape(g, kept)


def unbroadcast(g: Node, like: Node) -> Node:
    """Sum ``g`` down to ``like``'s shape (the vjp of numpy broadcasting) and dtype."""
    if g.shape != like.shape:
        lead = g.ndim - like.ndim
        stretched = tuple(lead + i for i, d in enumerate(like.shape) if d == 1 and g.shape[lead + i] != 1)
        if stretched:
            g = sum(g, axis=tuple(range(lead)) + stretched, keepdims=True)
            g = reshape(g, like.shape)
        else:
            g = sum(g, axis=tuple(range(lead)))
    if g.dtype != like.dtype:
        g = cast(g, like.dtype)
    return g


def _zero(like: Node) -> Node:
    return _small_constant(0, like.dtype)


def _one(like: Node) -> Node:
    return _small_constant(1, like.dtype)


def _small_constant(value: int, dtype: np.dtype) -> Node:
    """A fresh constant node of ``value`` (as vjp rules use 0 and 1), sharing one read-only array."""
    array = _scalar_array(value, dtype)
    return Node("constant", (), (), (), array.dtype, value=array)


@functools.lru_cache(maxsize=None)
def _scalar_array(value: int, dtype: np.dtype) -> np.ndarray:
    array = np.array(value, dtype=dtype)
    array.flags.writeable = False
    return array


# --- elementwise binary ops ---------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def numpy_dtype(function, *dtypes: np.dtype) -> np.dtype:
    """The dtype numpy's ``function`` gives for arrays of ``dtypes`` (asked once, then cached)."""
    return np.asarray(function(*(np.ones(1, dtype=d) for d in dtypes))).dtype


def _binary_infer(name, function):
    def infer(a: Node, b: Node):
        shape = a.shape if a.shape == b.shape else _broadcast(name, a, b)
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
        unbroadcast(g * (y * pow(x, y - _one(y))), x) if wanted[0] else None,
        unbroadcast(g * (node * log(x)), y) if wanted[1] else None,
    ]


def _maximum_vjp(node, g, wanted):
    a, b = node.inputs
    b_wins = greater(b, a)  # ties send the gradient to a
    return [
        unbroadcast(where(b_wins, _zero(g), g), a) if wanted[0] else None,
        unbroadcast(where(b_wins, g, _zero(g)), b) if wanted[1] else None,
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
        return _broadcast(name, a, b), np.dtype(bool)

    return infer


define("equal", _compare_infer("equal"), lambda n, a, b: np.equal(a, b), None, elementwise_cost, "elementwise",
       commutative=True)
define("greater", _compare_infer("greater"), lambda n, a, b: np.greater(a, b), None, elementwise_cost,
       "elementwise")


def _binary(name: str, a, b) -> Node:
    """Apply a binary op; a bare number takes its dtype from the node beside it."""
    if type(a) is not Node or type(b) is not Node:
        a, b = _lift(a, b if isinstance(b, Node) else None), _lift(b, a if isinstance(a, Node) else None)
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
        _need_float(name, x)
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
       lambda n, g, w: [g * (_one(n) - n * n)], elementwise_cost, "elementwise")
define("sigmoid", _float_infer("sigmoid"), _sigmoid_impl,
       lambda n, g, w: [g * (n * (_one(n) - n))], elementwise_cost, "elementwise")
define("relu", _float_infer("relu"), lambda n, x: np.maximum(x, 0),
       lambda n, g, w: [where(greater(n.inputs[0], _zero(n)), g, _zero(g))], elementwise_cost, "elementwise")


def _cast_infer(x: Node, dtype):
    return x.shape, np.dtype(dtype)


def _cast_vjp(node, g, wanted):
    x = node.inputs[0]
    return [cast(g, x.dtype) if x.dtype.kind == "f" else None]


define("cast", _cast_infer, lambda n, x: x.astype(n.dtype), _cast_vjp, no_flops, "data")


def neg(x) -> Node:
    return apply("neg", (_lift(x),))


def exp(x) -> Node:
    return apply("exp", (_lift(x),))


def log(x) -> Node:
    return apply("log", (_lift(x),))


def sqrt(x) -> Node:
    return apply("sqrt", (_lift(x),))


def tanh(x) -> Node:
    return apply("tanh", (_lift(x),))


def sigmoid(x) -> Node:
    return apply("sigmoid", (_lift(x),))


def relu(x) -> Node:
    return apply("relu", (_lift(x),))


def cast(x, dtype) -> Node:
    return apply("cast", (_lift(x),), dtype=np.dtype(dtype).name)


# --- where ----------------------------------------------------------------------------------


def _where_infer(cond: Node, a: Node, b: Node):
    if cond.dtype != np.dtype(bool):
        raise TypeError(f"where: the condition must be bool, got {cond.dtype} ({cond!r})")
    return _broadcast("where", cond, a, b), np.result_type(a.dtype, b.dtype)


def _where_vjp(node, g, wanted):
    cond, a, b = node.inputs
    return [
        None,
        unbroadcast(where(cond, g, _zero(g)), a) if wanted[1] else None,
        unbroadcast(where(cond, _zero(g), g), b) if wanted[2] else None,
    ]


define("where", _where_infer, lambda n, c, a, b: np.where(c, a, b), _where_vjp, elementwise_cost, "elementwise")


def where(cond, a, b) -> Node:
    """Elementwise ``a if cond else b`` (numpy broadcasting)."""
    a = _lift(a, b if isinstance(b, Node) else None)
    b = _lift(b, a)
    return apply("where", (_lift(cond), a, b))


# --- matmul ---------------------------------------------------------------------------------


def _matmul_infer(a: Node, b: Node):
    a_shape, b_shape = a.shape, b.shape
    if len(a_shape) == 2 and len(b_shape) == 2 and a_shape[1] == b_shape[0]:  # the common case, quickly
        return (a_shape[0], b_shape[1]), _result_type(a.dtype, b.dtype)
    if a.ndim < 2 or b.ndim < 2:
        raise ShapeError(f"matmul: needs 2-D or batched operands, got shapes {a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[-2]:
        raise ShapeError(
            f"matmul: inner dimensions differ: {a.shape} @ {b.shape} ({a.shape[-1]} != {b.shape[-2]})"
        )
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
    if batch is None:
        raise ShapeError(f"matmul: batch dimensions of {a.shape} and {b.shape} do not broadcast")
    return batch + (a.shape[-2], b.shape[-1]), _result_type(a.dtype, b.dtype)


@functools.lru_cache(maxsize=None)
def _result_type(*dtypes: np.dtype) -> np.dtype:
    return np.result_type(*dtypes)


def _swap_last(x: Node) -> Node:
    ndim = len(x.shape)
    return apply("transpose", (x,), axes=(1, 0) if ndim == 2 else (*range(ndim - 2), ndim - 1, ndim - 2))


def _matmul_vjp(node, g, wanted):
    a, b = node.inputs
    return [
        unbroadcast(matmul(g, _swap_last(b)), a) if wanted[0] else None,
        unbroadcast(matmul(_swap_last(a), g), b) if wanted[1] else None,
    ]


def _matmul_cost(node: Node) -> int:
    """``2*m*k*n`` per matrix product (multiply-add counted as two), times the batch."""
    return 2 * node.size * node.inputs[0].shape[-1]


define("matmul", _matmul_infer, lambda n, a, b: np.matmul(a, b), _matmul_vjp, _matmul_cost, "matmul")


def matmul(a, b) -> Node:
    return apply("matmul", (_lift(a), _lift(b)))


# --- reductions -----------------------------------------------------------------------------


def _reduce_infer(name, function):
    def infer(x: Node, axis, keepdims):
        if axis != _axes(name, x.shape, axis):
            raise ShapeError(f"{name}: axis must be given normalised, got {axis!r}")
        if name == "max" and any(x.shape[a] == 0 for a in axis):
            raise ShapeError(f"max: cannot reduce an empty axis of shape {x.shape}")
        dtype = numpy_dtype(function, x.dtype) if name != "max" else x.dtype
        if keepdims:
            return _kept_shape(x.shape, axis), dtype
        return tuple(d for i, d in enumerate(x.shape) if i not in axis), dtype

    return infer


def _sum_vjp(node, g, wanted):
    x = node.inputs[0]
    return [broadcast_to(_with_kept_dims(node, g), x.shape)]


def _mean_vjp(node, g, wanted):
    x = node.inputs[0]
    count = math.prod(x.shape[a] for a in node.attr("axis"))
    return [broadcast_to(_with_kept_dims(node, g) / constant(count, dtype=g.dtype), x.shape)]


def _max_vjp(node, g, wanted):
    """The gradient goes to the maxima, shared equally between ties."""
    x = node.inputs[0]
    mask = cast(equal(x, _with_kept_dims(node, node)), x.dtype)
    count = sum(mask, axis=node.attr("axis"), keepdims=True)
    return [mask * (_with_kept_dims(node, g) / count)]


define("sum", _reduce_infer("sum", np.sum), lambda n, x: np.sum(x, axis=n.attr("axis"), keepdims=n.attr("keepdims")),
       _sum_vjp, reduction_cost, "reduction")
define("mean", _reduce_infer("mean", np.mean), lambda n, x: np.mean(x, axis=n.attr("axis"), keepdims=n.attr("keepdims")),
       _mean_vjp, reduction_cost, "reduction")
define("max", _reduce_infer("max", np.max), lambda n, x: np.max(x, axis=n.attr("axis"), keepdims=n.attr("keepdims")),
       _max_vjp, reduction_cost, "reduction")


def sum(x, axis=None, keepdims: bool = False) -> Node:
    x = _lift(x)
    return apply("sum", (x,), axis=_axes("sum", x.shape, axis), keepdims=bool(keepdims))


def mean(x, axis=None, keepdims: bool = False) -> Node:
    x = _lift(x)
    return apply("mean", (x,), axis=_axes("mean", x.shape, axis), keepdims=bool(keepdims))


def max(x, axis=None, keepdims: bool = False) -> Node:
    x = _lift(x)
    return apply("max", (x,), axis=_axes("max", x.shape, axis), keepdims=bool(keepdims))


# --- softmax family -------------------------------------------------------------------------


def _softmax_infer(name):
    def infer(x: Node, axis):
        _need_float(name, x)
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
    x = _lift(x)
    return apply("softmax", (x,), axis=_axes("softmax", x.shape, axis)[0] if x.ndim else 0)


def log_softmax(x, axis: int = -1) -> Node:
    x = _lift(x)
    return apply("log_softmax", (x,), axis=_axes("log_softmax", x.shape, axis)[0] if x.ndim else 0)


# --- shape and data movement ----------------------------------------------------------------


def _reshape_infer(x: Node, shape):
    if any(s < 0 for s in shape) or math.prod(shape) != x.size:
        raise ShapeError(f"reshape: cannot reshape {x.shape} ({x.size} elements) to {shape}")
    return shape, x.dtype


define("reshape", _reshape_infer, lambda n, x: np.reshape(x, n.attr("shape")),
       lambda n, g, w: [reshape(g, n.inputs[0].shape)], no_flops, "data")


def reshape(x, shape) -> Node:
    x = _lift(x)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
    if shape.count(-1) > 1:
        raise ShapeError(f"reshape: only one dimension can be -1, got {shape}")
    if shape.count(-1) == 1:
        known = math.prod(s for s in shape if s != -1)
        if known == 0 or x.size % known:
            raise ShapeError(f"reshape: cannot reshape {x.shape} ({x.size} elements) to {shape}")
        shape = tuple(x.size // known if s == -1 else s for s in shape)
    return apply("reshape", (x,), shape=shape)


def _transpose_infer(x: Node, axes):
    shape = x.shape
    if sorted(axes) != list(range(len(shape))):
        raise ShapeError(f"transpose: axes {axes} are not a permutation of the {x.ndim} axes of {shape}")
    return tuple([shape[a] for a in axes]), x.dtype


def _transpose_vjp(node, g, wanted):
    return [transpose(g, tuple(int(i) for i in np.argsort(node.attr("axes"))))]


define("transpose", _transpose_infer, lambda n, x: np.transpose(x, n.attr("axes")), _transpose_vjp, no_flops,
       "data")


def transpose(x, axes: Sequence[int] | None = None) -> Node:
    x = _lift(x)
    axes = tuple(reversed(range(x.ndim))) if axes is None else tuple(int(a) for a in axes)
    return apply("transpose", (x,), axes=axes)


def _broadcast_to_infer(x: Node, shape):
    if broadcast_shapes(x.shape, shape) != shape:
        raise ShapeError(f"broadcast_to: cannot broadcast {x.shape} to {shape}")
    return shape, x.dtype


define("broadcast_to", _broadcast_to_infer, lambda n, x: np.broadcast_to(x, n.attr("shape")),
       lambda n, g, w: [unbroadcast(g, n.inputs[0])], no_flops, "data")


def broadcast_to(x, shape) -> Node:
    return apply("broadcast_to", (_lift(x),), shape=tuple(int(s) for s in shape))


def _concat_infer(*parts: Node, axis):
    first = parts[0]
    for part in parts[1:]:
        if part.ndim != first.ndim or any(
            a != b for i, (a, b) in enumerate(zip(part.shape, first.shape)) if i != axis
        ):
            raise ShapeError(f"concat: shapes {first.shape} and {part.shape} differ off axis {axis}")
    shape = list(first.shape)
    shape[axis] = builtins.sum(p.shape[axis] for p in parts)
    return tuple(shape), np.result_type(*(p.dtype for p in parts))


def _concat_vjp(node, g, wanted):
    axis = node.attr("axis")
    grads, start = [], 0
    for part, want in zip(node.inputs, wanted):
        stop = start + part.shape[axis]
        if want:
            bounds = tuple((start, stop, 1) if i == axis else (0, d, 1) for i, d in enumerate(node.shape))
            grads.append(unbroadcast(apply("slice", (g,), bounds=bounds), part))
        else:
            grads.append(None)
        start = stop
    return grads


define("concat", _concat_infer, lambda n, *xs: np.concatenate(xs, axis=n.attr("axis")), _concat_vjp, no_flops,
       "data")


def concat(parts: Sequence, axis: int = 0) -> Node:
    parts = [_lift(p) for p in parts]
    if not parts:
        raise ValueError("concat: needs at least one input")
    if parts[0].ndim == 0:
        raise ShapeError("concat: cannot concatenate scalars")
    return apply("concat", parts, axis=_axes("concat", parts[0].shape, axis)[0])


def _slice_infer(x: Node, bounds):
    if len(bounds) != x.ndim:
        raise ShapeError(f"slice: {len(bounds)} bounds for shape {x.shape}")
    return tuple(len(range(*b)) for b in bounds), x.dtype


def _slices(bounds) -> tuple[slice, ...]:
    """Python slices for normalised ``(start, stop, step)`` bounds.

    ``slice.indices`` gives ``stop = -1`` for a reversed slice that runs through index 0;
    numpy would read -1 as the last element, so it becomes ``None``.
    """
    return tuple(slice(start, None if stop < 0 else stop, step) for start, stop, step in bounds)


def _slice_impl(node, x):
    return x[_slices(node.attr("bounds"))]


def _unslice_infer(g: Node, bounds, shape):
    return shape, g.dtype


def _unslice_impl(node, g):
    out = np.zeros(node.shape, dtype=node.dtype)
    out[_slices(node.attr("bounds"))] = g
    return out


define("slice", _slice_infer, _slice_impl,
       lambda n, g, w: [apply("unslice", (g,), bounds=n.attr("bounds"), shape=n.inputs[0].shape)],
       no_flops, "data", doc="basic slicing x[a:b:c, ...]")
define("unslice", _unslice_infer, _unslice_impl,
       lambda n, g, w: [apply("slice", (g,), bounds=n.attr("bounds"))], no_flops, "data",
       doc="zeros of `shape` with the input written at `bounds` (the vjp of slice)")


# --- integer-array indexing ------------------------------------------------------------------


def _index_infer(x: Node, *indices: Node):
    if len(indices) > x.ndim:
        raise ShapeError(f"index: {len(indices)} index arrays for shape {x.shape}")
    for position, index in enumerate(indices):
        _need_int("index", index, f"index {position}")
    batch = _broadcast("index", *indices)
    return batch + x.shape[len(indices):], x.dtype


def _check_bounds(node: Node, shape: Shape, indices) -> None:
    for axis, index in enumerate(indices):
        size = shape[axis]
        if index.size and (index.min() < -size or index.max() >= size):
            bad = index[(index < -size) | (index >= size)].flat[0]
            raise IndexError(f"index {bad} is out of range for axis {axis} of size {size} (shape {shape})")


def _index_impl(node, x, *indices):
    _check_bounds(node, x.shape, indices)
    return x[indices]


def _index_vjp(node, g, wanted):
    x, *indices = node.inputs
    return [apply("index_add", (g, *indices), shape=x.shape)] + [None] * len(indices)


def _index_add_infer(g: Node, *indices: Node, shape):
    for position, index in enumerate(indices):
        _need_int("index_add", index, f"index {position}")
    expected = _broadcast("index_add", *indices) + shape[len(indices):]
    if g.shape != expected:
        raise ShapeError(f"index_add: values of shape {g.shape} do not fit indices into {shape}")
    return shape, g.dtype


def _index_add_impl(node, g, *indices):
    _check_bounds(node, node.shape, indices)
    out = np.zeros(node.shape, dtype=node.dtype)
    np.add.at(out, indices, g)
    return out


def _index_add_vjp(node, g, wanted):
    return [apply("index", (g, *node.inputs[1:]))] + [None] * (len(node.inputs) - 1)


define("index", _index_infer, _index_impl, _index_vjp, no_flops, "data",
       doc="integer-array indexing x[i0, i1, ...] over the leading axes (a gather)")
define("index_add", _index_add_infer, _index_add_impl, _index_add_vjp, elementwise_cost, "data",
       doc="scatter-add of the input into zeros of `shape` (the vjp of index)")


def take(x, *indices) -> Node:
    """Integer-array indexing over the leading axes: ``take(logp, arange(n), y)`` is ``logp[arange(n), y]``."""
    x = _lift(x)
    index_nodes = []
    for position, index in enumerate(indices):
        node = _lift(index)
        if node.dtype.kind == "f":
            raise TypeError(f"index: index {position} has float dtype {node.dtype}; indices must be integers")
        index_nodes.append(node)
    return apply("index", (x, *index_nodes))


def getitem(x: Node, index) -> Node:
    """``x[...]``: integer arrays (nodes or numpy) gather; ints and slices slice."""
    parts = index if isinstance(index, tuple) else (index,)
    arrays = [isinstance(p, (Node, np.ndarray, list)) for p in parts]
    if builtins.any(arrays):
        if not builtins.all(arrays):
            raise TypeError("indexing: mixing index arrays with ints or slices is not supported; use take()")
        return take(x, *parts)
    if len(parts) > x.ndim:
        raise ShapeError(f"indexing: {len(parts)} indices for shape {x.shape}")
    bounds, dropped = [], []
    for axis, size in enumerate(x.shape):
        part = parts[axis] if axis < len(parts) else slice(None)
        if isinstance(part, (int, np.integer)):
            if not -size <= part < size:
                raise IndexError(f"indexing: index {part} is out of range for axis {axis} of size {size}")
            start = int(part) % size
            bounds.append((start, start + 1, 1))
            dropped.append(axis)
        elif isinstance(part, slice):
            bounds.append(part.indices(size))
        else:
            raise TypeError(f"indexing: unsupported index {part!r} (ints, slices or integer arrays)")
    sliced = apply("slice", (x,), bounds=tuple(bounds))
    if dropped:
        sliced = reshape(sliced, tuple(d for i, d in enumerate(sliced.shape) if i not in dropped))
    return sliced


# --- sources: arange, one_hot, zeros, random draws -------------------------------------------


define("arange", lambda n, dtype: ((n,), np.dtype(dtype)), lambda node: np.arange(node.shape[0], dtype=node.dtype),
       None, no_flops, "source")


def arange(n: int, dtype="int64") -> Node:
    if int(n) < 0:
        raise ValueError(f"arange: length must be >= 0, got {n}")
    return apply("arange", (), n=int(n), dtype=np.dtype(dtype).name)


def _one_hot_infer(index: Node, depth, dtype):
    _need_int("one_hot", index, "the input")
    return index.shape + (depth,), np.dtype(dtype)


def _one_hot_impl(node, index):
    _check_bounds(node, (node.attr("depth"),), (index,))
    return np.eye(node.attr("depth"), dtype=node.dtype)[index]


define("one_hot", _one_hot_infer, _one_hot_impl, None, no_flops, "data")


def one_hot(index, depth: int, dtype="float32") -> Node:
    return apply("one_hot", (_lift(index),), depth=int(depth), dtype=np.dtype(dtype).name)


define("zeros", lambda shape, dtype: (shape, np.dtype(dtype)), lambda node: np.zeros(node.shape, node.dtype), None,
       no_flops, "source")


def zeros(shape, dtype="float32") -> Node:
    """An all-zero array made at run time (a constant would allocate it while building)."""
    return apply("zeros", (), shape=tuple(int(s) for s in shape), dtype=np.dtype(dtype).name)


def _random_infer(shape, key, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"random draws are floating point, got dtype {dtype}")
    return shape, dtype


define("uniform", _random_infer,
       lambda node: np.random.default_rng(node.attr("key")).random(node.shape).astype(node.dtype),
       None, elementwise_cost, "random", pure=False, doc="uniform [0, 1) draws from `key`; never merged")
define("normal", _random_infer,
       lambda node: np.random.default_rng(node.attr("key")).standard_normal(node.shape).astype(node.dtype),
       None, elementwise_cost, "random", pure=False, doc="standard normal draws from `key`; never merged")


def uniform(shape, key: int, dtype="float32") -> Node:
    """Uniform [0, 1) draws seeded by ``key`` (for dropout masks). Impure: never merged."""
    return apply("uniform", (), shape=tuple(int(s) for s in shape), key=int(key), dtype=np.dtype(dtype).name)


def normal(shape, key: int, dtype="float32") -> Node:
    """Standard normal draws seeded by ``key``. Impure: never merged."""
    return apply("normal", (), shape=tuple(int(s) for s in shape), key=int(key), dtype=np.dtype(dtype).name)
