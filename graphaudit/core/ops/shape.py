"""Shape and data movement: reshape transpose broadcast_to concat slice unslice.

None of these does arithmetic: they cost bytes, no FLOPs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from graphaudit.errors import ShapeError
from graphaudit.core.graph import Node
from graphaudit.core.ops.registry import apply, define, no_flops
from graphaudit.core.ops.rules import as_node, broadcast_shapes, normalized_axes, unbroadcast


def _reshape_infer(x: Node, shape):
    if any(s < 0 for s in shape) or math.prod(shape) != x.size:
        raise ShapeError(f"reshape: cannot reshape {x.shape} ({x.size} elements) to {shape}")
    return shape, x.dtype


define("reshape", _reshape_infer, lambda n, x: np.reshape(x, n.attr("shape")),
       lambda n, g, w: [reshape(g, n.inputs[0].shape)], no_flops, "data", view=True)


def reshape(x, shape) -> Node:
    x = as_node(x)
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
       "data", view=True)


def transpose(x, axes: Sequence[int] | None = None) -> Node:
    x = as_node(x)
    axes = tuple(reversed(range(x.ndim))) if axes is None else tuple(int(a) for a in axes)
    return apply("transpose", (x,), axes=axes)


def _broadcast_to_infer(x: Node, shape):
    if broadcast_shapes(x.shape, shape) != shape:
        raise ShapeError(f"broadcast_to: cannot broadcast {x.shape} to {shape}")
    return shape, x.dtype


define("broadcast_to", _broadcast_to_infer, lambda n, x: np.broadcast_to(x, n.attr("shape")),
       lambda n, g, w: [unbroadcast(g, n.inputs[0])], no_flops, "data", view=True)


def broadcast_to(x, shape) -> Node:
    return apply("broadcast_to", (as_node(x),), shape=tuple(int(s) for s in shape))


def _concat_infer(*parts: Node, axis):
    first = parts[0]
    for part in parts[1:]:
        if part.ndim != first.ndim or any(
            a != b for i, (a, b) in enumerate(zip(part.shape, first.shape)) if i != axis
        ):
            raise ShapeError(f"concat: shapes {first.shape} and {part.shape} differ off axis {axis}")
    shape = list(first.shape)
    shape[axis] = sum(p.shape[axis] for p in parts)
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
    parts = [as_node(p) for p in parts]
    if not parts:
        raise ValueError("concat: needs at least one input")
    if parts[0].ndim == 0:
        raise ShapeError("concat: cannot concatenate scalars")
    return apply("concat", parts, axis=normalized_axes("concat", parts[0].shape, axis)[0])


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
       no_flops, "data", doc="basic slicing x[a:b:c, ...]", view=True)
define("unslice", _unslice_infer, _unslice_impl,
       lambda n, g, w: [apply("slice", (g,), bounds=n.attr("bounds"))], no_flops, "data",
       doc="zeros of `shape` with the input written at `bounds` (the vjp of slice)")
