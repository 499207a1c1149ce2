"""Indexing: integer-array gathers (index, take), their scatter-add (index_add), and ``x[...]`` (getitem)."""

from __future__ import annotations

import numpy as np

from graphaudit.errors import ShapeError
from graphaudit.core.graph import Node
from graphaudit.core.ops.registry import apply, define, elementwise_cost, no_flops
from graphaudit.core.ops.rules import as_node, broadcast_shape_of, check_index_bounds, require_int
from graphaudit.core.ops.shape import reshape


def _index_infer(x: Node, *indices: Node):
    if len(indices) > x.ndim:
        raise ShapeError(f"index: {len(indices)} index arrays for shape {x.shape}")
    for position, index in enumerate(indices):
        require_int("index", index, f"index {position}")
    batch = broadcast_shape_of("index", *indices)
    return batch + x.shape[len(indices):], x.dtype


def _index_impl(node, x, *indices):
    check_index_bounds(node, x.shape, indices)
    return x[indices]


def _index_vjp(node, g, wanted):
    x, *indices = node.inputs
    return [apply("index_add", (g, *indices), shape=x.shape)] + [None] * len(indices)


def _index_add_infer(g: Node, *indices: Node, shape):
    for position, index in enumerate(indices):
        require_int("index_add", index, f"index {position}")
    expected = broadcast_shape_of("index_add", *indices) + shape[len(indices):]
    if g.shape != expected:
        raise ShapeError(f"index_add: values of shape {g.shape} do not fit indices into {shape}")
    return shape, g.dtype


def _index_add_impl(node, g, *indices):
    check_index_bounds(node, node.shape, indices)
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
    x = as_node(x)
    index_nodes = []
    for position, index in enumerate(indices):
        node = as_node(index)
        if node.dtype.kind == "f":
            raise TypeError(f"index: index {position} has float dtype {node.dtype}; indices must be integers")
        index_nodes.append(node)
    return apply("index", (x, *index_nodes))


def getitem(x: Node, index) -> Node:
    """``x[...]``: integer arrays (nodes or numpy) gather; ints and slices slice."""
    parts = index if isinstance(index, tuple) else (index,)
    arrays = [isinstance(p, (Node, np.ndarray, list)) for p in parts]
    if any(arrays):
        if not all(arrays):
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
