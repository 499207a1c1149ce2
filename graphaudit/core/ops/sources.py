"""Sources: arange, one_hot, zeros, and the random draws uniform and normal (impure: never merged)."""

from __future__ import annotations

import numpy as np

from graphaudit.core.graph import Node
from graphaudit.core.ops.registry import apply, define, elementwise_cost, no_flops
from graphaudit.core.ops.rules import as_node, check_index_bounds, require_int


define("arange", lambda n, dtype: ((n,), np.dtype(dtype)), lambda node: np.arange(node.shape[0], dtype=node.dtype),
       None, no_flops, "source")


def arange(n: int, dtype="int64") -> Node:
    if int(n) < 0:
        raise ValueError(f"arange: length must be >= 0, got {n}")
    return apply("arange", (), n=int(n), dtype=np.dtype(dtype).name)


def _one_hot_infer(index: Node, depth, dtype):
    require_int("one_hot", index, "the input")
    return index.shape + (depth,), np.dtype(dtype)


def _one_hot_impl(node, index):
    check_index_bounds(node, (node.attr("depth"),), (index,))
    return np.eye(node.attr("depth"), dtype=node.dtype)[index]


define("one_hot", _one_hot_infer, _one_hot_impl, None, no_flops, "data")


def one_hot(index, depth: int, dtype="float32") -> Node:
    return apply("one_hot", (as_node(index),), depth=int(depth), dtype=np.dtype(dtype).name)


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
