"""What the ops' rules share: lifting numbers to nodes, broadcasting, axes, index bounds, dtypes, constants.

Every family file imports from here; this module imports no family. The two helpers
that build nodes (:func:`unbroadcast` and :func:`with_kept_dims`) do so through
:func:`~graphaudit.core.ops.registry.apply`, with the attrs the public builders would give.
"""

from __future__ import annotations

import functools

import numpy as np

from graphaudit.errors import ShapeError
from graphaudit.core.graph import Node, constant
from graphaudit.core.ops.registry import Shape, apply


def as_node(value, like: Node | None = None) -> Node:
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


def broadcast_shape_of(op: str, *nodes: Node) -> Shape:
    """The shape ``nodes`` broadcast to, or a ShapeError naming ``op`` and their shapes."""
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


def require_float(op: str, node: Node) -> None:
    """A TypeError naming ``op`` unless ``node`` is floating point."""
    if node.dtype.kind != "f":
        raise TypeError(f"{op}: needs a floating-point input, got {node.dtype} ({node!r})")


def require_int(op: str, node: Node, what: str) -> None:
    """A TypeError naming ``op`` and ``what`` unless ``node`` holds integers."""
    if node.dtype.kind not in "iu":
        raise TypeError(f"{op}: {what} must be an integer array, got {node.dtype} ({node!r})")


def check_index_bounds(node: Node, shape: Shape, indices) -> None:
    """Name the first index outside its axis of ``shape`` (negative ones count from the end)."""
    for axis, index in enumerate(indices):
        size = shape[axis]
        if index.size and (index.min() < -size or index.max() >= size):
            bad = index[(index < -size) | (index >= size)].flat[0]
            raise IndexError(f"index {bad} is out of range for axis {axis} of size {size} (shape {shape})")


def normalized_axes(op: str, shape: Shape, axis) -> tuple[int, ...]:
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


def kept_dims_shape(shape: Shape, axes: tuple[int, ...]) -> Shape:
    """``shape`` reduced over ``axes`` with ``keepdims=True``: each reduced axis of size 1."""
    return tuple(1 if i in axes else d for i, d in enumerate(shape))


def with_kept_dims(node: Node, g: Node) -> Node:
    """``g`` (adjoint of a reduction ``node``) reshaped so that it broadcasts against the input."""
    kept = kept_dims_shape(node.inputs[0].shape, node.attr("axis"))
    return g if g.shape == kept else apply("reshape", (g,), shape=kept)


def unbroadcast(g: Node, like: Node) -> Node:
    """Sum ``g`` down to ``like``'s shape (the vjp of numpy broadcasting) and dtype.

    The axes summed are already sorted and non-negative, as ``sum`` would normalise them.
    """
    if g.shape != like.shape:
        lead = g.ndim - like.ndim
        stretched = tuple(lead + i for i, d in enumerate(like.shape) if d == 1 and g.shape[lead + i] != 1)
        if stretched:
            g = apply("sum", (g,), axis=tuple(range(lead)) + stretched, keepdims=True)
            g = apply("reshape", (g,), shape=like.shape)
        else:
            g = apply("sum", (g,), axis=tuple(range(lead)), keepdims=False)
    if g.dtype != like.dtype:
        g = apply("cast", (g,), dtype=like.dtype.name)
    return g


def scalar_zero(like: Node) -> Node:
    """A fresh scalar 0 of ``like``'s dtype."""
    return _small_constant(0, like.dtype)


def scalar_one(like: Node) -> Node:
    """A fresh scalar 1 of ``like``'s dtype."""
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


@functools.lru_cache(maxsize=None)
def numpy_dtype(function, *dtypes: np.dtype) -> np.dtype:
    """The dtype numpy's ``function`` gives for arrays of ``dtypes`` (asked once, then cached)."""
    return np.asarray(function(*(np.ones(1, dtype=d) for d in dtypes))).dtype


@functools.lru_cache(maxsize=None)
def result_dtype(*dtypes: np.dtype) -> np.dtype:
    """numpy's ``result_type`` of ``dtypes``, cached: it runs for every product built."""
    return np.result_type(*dtypes)
