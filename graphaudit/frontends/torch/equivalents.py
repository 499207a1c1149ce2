"""aten ops as graphaudit's, for semantic merging: which aten ops are graphaudit ops in disguise.

Equality saturation's rules (:mod:`graphaudit.analysis.rewrites`) are written over graphaudit's own
ops. An aten op whose other arguments are at their defaults is one of them (``aten.mm`` is
``matmul``, a 2-D ``aten.t`` the transpose, ``aten.view`` a reshape); the table's rows carry
these forms (``ImportedOp.same_as``), so the same rules see PyTorch's graphs.
"""

from __future__ import annotations

from collections.abc import Callable

from graphaudit.core.attrs import Attrs, canonical_attrs
from graphaudit.core.graph import Node


def _aten(op: str, **defaults) -> Callable[[Node], tuple[str, Attrs] | None]:
    """An aten op that is graphaudit's ``op`` when its arguments other than tensors are ``defaults``."""
    def same(node: Node) -> tuple[str, Attrs] | None:
        options = {k: v for k, v in node.attrs if k not in ("overload", "tensors")}
        return (op, ()) if options == defaults and node.attr("overload") in ("default", "Tensor") else None

    return same


def _aten_t(node: Node) -> tuple[str, Attrs] | None:
    return ("transpose", canonical_attrs([("axes", (1, 0))])) if node.ndim == 2 else None


def _aten_view(node: Node) -> tuple[str, Attrs]:
    return "reshape", canonical_attrs([("shape", node.shape)])


def _aten_expand(node: Node) -> tuple[str, Attrs]:
    return "broadcast_to", canonical_attrs([("shape", node.shape)])


# aten op -> what a node of it is among graphaudit's ops (None: its arguments make it something else).
SAME_AS: dict[str, Callable[[Node], tuple[str, Attrs] | None]] = {
    "aten.add": _aten("add", alpha=1), "aten.sub": _aten("sub", alpha=1), "aten.mul": _aten("mul"),
    "aten.div": _aten("div"), "aten.neg": _aten("neg"), "aten.exp": _aten("exp"), "aten.sigmoid": _aten("sigmoid"),
    "aten.maximum": _aten("maximum"), "aten.mm": _aten("matmul"), "aten.bmm": _aten("matmul"), "aten.t": _aten_t,
    "aten.view": _aten_view, "aten._unsafe_view": _aten_view, "aten.reshape": _aten_view, "aten.expand": _aten_expand,
}
