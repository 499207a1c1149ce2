"""matmul: numpy's ``@``, with batch dimensions that broadcast."""

from __future__ import annotations

import numpy as np

from graphaudit.errors import ShapeError
from graphaudit.core.graph import Node
from graphaudit.core.ops.registry import apply, define
from graphaudit.core.ops.rules import as_node, broadcast_shapes, result_dtype, unbroadcast


def _matmul_infer(a: Node, b: Node):
    a_shape, b_shape = a.shape, b.shape
    if len(a_shape) == 2 and len(b_shape) == 2 and a_shape[1] == b_shape[0]:  # the common case, quickly
        return (a_shape[0], b_shape[1]), result_dtype(a.dtype, b.dtype)
    if a.ndim < 2 or b.ndim < 2:
        raise ShapeError(f"matmul: needs 2-D or batched operands, got shapes {a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[-2]:
        raise ShapeError(
            f"matmul: inner dimensions differ: {a.shape} @ {b.shape} ({a.shape[-1]} != {b.shape[-2]})"
        )
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
    if batch is None:
        raise ShapeError(f"matmul: batch dimensions of {a.shape} and {b.shape} do not broadcast")
    return batch + (a.shape[-2], b.shape[-1]), result_dtype(a.dtype, b.dtype)


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
    return apply("matmul", (as_node(a), as_node(b)))
