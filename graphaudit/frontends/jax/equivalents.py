"""JAX's ops as graphaudit's, for semantic merging: which primitives are graphaudit ops in disguise.

Equality saturation's rules (:mod:`graphaudit.analysis.rewrites`) are written over graphaudit's own
ops. A JAX primitive whose options are unset is one of them (``jax.add`` is ``add``, a
``dot_general`` contracting the standard axes is ``matmul``); the table's rows carry these
forms (``ImportedOp.same_as``), and ``dot_general``'s row the product with its operands
swapped (``ImportedOp.swapped``), so the same rules see JAX's graphs.
"""

from __future__ import annotations

from collections.abc import Callable

from graphaudit.core.attrs import Attrs, canonical_attrs
from graphaudit.core.graph import Node

DOT_GENERAL = "jax.dot_general"


def _plain(op: str) -> Callable[[Node], tuple[str, Attrs] | None]:
    """An imported op that is graphaudit's ``op`` when none of its options is set."""
    return lambda node: (op, ()) if all(value is None for _, value in node.attrs) else None


def _jax_transpose(node: Node) -> tuple[str, Attrs]:
    return "transpose", canonical_attrs([("axes", node.attr("permutation"))])


def _jax_reshape(node: Node) -> tuple[str, Attrs] | None:
    if node.attr("dimensions") is not None or node.attr("sharding") is not None:
        return None
    return "reshape", canonical_attrs([("shape", node.shape)])


def _jax_broadcast(node: Node) -> tuple[str, Attrs] | None:
    """broadcast_in_dim onto the trailing dimensions is numpy's broadcast_to."""
    trailing = tuple(range(node.ndim - node.inputs[0].ndim, node.ndim))
    if node.attr("broadcast_dimensions") != trailing or node.attr("sharding") is not None:
        return None
    return "broadcast_to", canonical_attrs([("shape", node.shape)])


def _jax_matmul(node: Node) -> tuple[str, Attrs] | None:
    x, y = node.inputs
    return _as_matmul(node.attrs, x.ndim, y.ndim, node.dtype)


def _as_matmul(attrs: Attrs, x_rank: int, y_rank: int, dtype) -> tuple[str, Attrs] | None:
    """dot_general contracting a matrix's (or a batch of matrices') last axis with the next one's rows is matmul."""
    options = dict(attrs)
    standard = {2: (((1,), (0,)), ((), ())), 3: (((2,), (1,)), ((0,), (0,)))}.get(x_rank)
    if (x_rank != y_rank or options["dimension_numbers"] != standard or options.get("precision") is not None
            or options.get("out_sharding") is not None or options.get("preferred_element_type") not in (None, dtype)):
        return None
    return "matmul", ()


def _integer_pow(node: Node) -> tuple[str, Attrs]:
    """``integer_pow`` is no graphaudit op, but the rules know it by this name (``x ** 2 = x * x``)."""
    return "integer_pow", node.attrs


def swapped_dot(node: Node) -> tuple[str, Attrs, tuple[int, ...]]:
    """For ``dot_general(x, y)``: the op and attrs of ``dot_general(y, x)``, and the transpose that gives this node
    from it (the swapped product may be a plain matmul, :func:`_as_matmul`).

    The output's axes are the batch axes, then x's free axes, then y's: swapping the
    operands (and each side of the dimension numbers) swaps the two groups of free axes.
    """
    (x_contract, y_contract), (x_batch, y_batch) = node.attr("dimension_numbers")
    x, y = node.inputs
    batch = len(x_batch)
    x_free = x.ndim - len(x_contract) - batch
    y_free = y.ndim - len(y_contract) - batch
    attrs = canonical_attrs([(k, ((y_contract, x_contract), (y_batch, x_batch)) if k == "dimension_numbers" else v)
                             for k, v in node.attrs])
    perm = (*range(batch), *range(batch + y_free, batch + y_free + x_free), *range(batch, batch + y_free))
    return *(_as_matmul(attrs, y.ndim, x.ndim, node.dtype) or (DOT_GENERAL, attrs)), perm


# Primitive -> what a node of it is among graphaudit's ops (None: its options make it something else).
SAME_AS: dict[str, Callable[[Node], tuple[str, Attrs] | None]] = {
    "add": _plain("add"), "add_any": _plain("add"), "sub": _plain("sub"), "mul": _plain("mul"),
    "div": _plain("div"), "max": _plain("maximum"), "neg": _plain("neg"), "exp": _plain("exp"),
    "logistic": _plain("sigmoid"), "transpose": _jax_transpose, "reshape": _jax_reshape,
    "broadcast_in_dim": _jax_broadcast, "dot_general": _jax_matmul, "integer_pow": _integer_pow,
}
SWAPPED = {"dot_general": swapped_dot}
