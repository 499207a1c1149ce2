"""The op registry: one :class:`Op` record per op in ``OPS``, and :func:`apply`, which builds nodes.

Every op is an :class:`Op` record in ``OPS``: what shapes it accepts (``infer``), what it
computes (``impl``), how its vector-Jacobian product is built from other ops (``vjp``),
and how many FLOPs it costs (``cost``). graphaudit's own ops are defined one family per
file beside this one; front-ends register what they import with :func:`define_imported`.

A ``vjp`` rule is called as ``vjp(node, g, wanted)``: ``g`` is the adjoint of
``node``'s output and ``wanted[i]`` says whether input ``i`` needs its adjoint; it
returns one node (or ``None``) per input. Rules build only what is wanted, so a
``grad`` call for ``b1`` never builds the matmul that only ``w1`` needs. A rule may
look at ``g`` only through its shape and dtype: :func:`graphaudit.separate_grads`
replays what a rule built for other adjoints of the same shape and dtype. An op with
``vjp=None`` is piecewise constant (comparisons, integer ops, random draws): its
inputs get no gradient through it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from graphaudit.core.attrs import canonical_attrs
from graphaudit.errors import UnknownOpError, culprit
from graphaudit.core.graph import Node, new_node

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Op:
    """One entry of the registry.

    Ops imported from a framework (:func:`define_imported`) may lack parts: no ``infer``
    (their shapes come from the framework), no ``impl`` (they cannot be evaluated), no
    ``vjp``, or no ``cost`` rule (reports list them as "no cost rule", never drop them).

    ``view`` marks an op whose output is a view of its input (transpose, reshape, broadcast,
    basic slicing): it writes no new buffer, so it costs no bytes. ``operand_text`` says what
    a node of it works on, where its output's shape does not (a contraction over chosen
    dimensions, a loop's steps): reports print it beside the node. ``same_as`` says, for an
    imported op, which of graphaudit's ops (and attrs) a node of it is, or None when its
    options make it something else; ``swapped`` gives, for a general dot product, the op,
    attrs and output permutation of the same product with its operands swapped. Semantic
    merging (:mod:`graphaudit.analysis.semantic`) reads both, so its rules see imported forms.

    ``pure_when``, on an impure op, picks the calls whose arguments make them deterministic
    after all (attention with dropout probability 0): those merge like a pure op's.
    :meth:`is_pure` asks it of a node.

    An imported op that runs a whole sub-graph (a loop kept whole) says what its cost rule
    cannot: ``matmul_cost`` gives the FLOPs of the products it runs (a matmul's own are all
    its FLOPs), and ``bound`` whether a node's FLOPs are an ``"upper"`` or ``"lower"`` bound
    rather than a count (None: a count), as for a cond costed at its costliest branch.
    """

    name: str
    infer: Callable[..., tuple[Shape, np.dtype]] | None
    impl: Callable[..., np.ndarray] | None
    vjp: Callable[[Node, Node, tuple[bool, ...]], list[Node | None]] | None
    cost: Callable[[Node], int] | None
    kind: str  # "elementwise", "matmul", "reduction", "linalg", "data", "source", "random", "imported"
    pure: bool = True
    commutative: bool = False
    doc: str = ""
    view: bool = False
    operand_text: Callable[[Node], str] | None = None
    same_as: Callable[[Node], tuple[str, tuple] | None] | None = None
    swapped: Callable[[Node], tuple[str, tuple, tuple[int, ...]]] | None = None
    pure_when: Callable[[Node], bool] | None = None
    matmul_cost: Callable[[Node], int] | None = None
    bound: Callable[[Node], str | None] | None = None

    def is_pure(self, node: Node) -> bool:
        """Whether ``node``, a call of this op, is a pure function of its inputs (so it may merge)."""
        return self.pure or (self.pure_when is not None and self.pure_when(node))

    @property
    def is_matmul(self) -> bool:
        """A matrix product: reports count its FLOPs apart (the one kind anything reads)."""
        return self.kind == "matmul"


OPS: dict[str, Op] = {}


def define(name, infer, impl, vjp, cost, kind, *, pure=True, commutative=False, doc="", view=False) -> Op:
    op = Op(name, infer, impl, vjp, cost, kind, pure, commutative, doc, view)
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
    view: bool = False,
    operand_text: Callable[[Node], str] | None = None,
    same_as: Callable[[Node], tuple[str, tuple] | None] | None = None,
    swapped: Callable[[Node], tuple[str, tuple, tuple[int, ...]]] | None = None,
    pure_when: Callable[[Node], bool] | None = None,
    matmul_cost: Callable[[Node], int] | None = None,
    bound: Callable[[Node], str | None] | None = None,
) -> Op:
    """Register an op that a front-end imports from a framework (e.g. ``jax.dot_general``).

    Nodes of such ops are built directly with :class:`Node` (the framework knows their
    shapes). Registering the same name again with the same parts is a no-op; with
    different parts it is an error, so two front-ends cannot silently disagree.
    """
    op = Op(name, None, impl, None, cost, kind, pure, commutative, doc, view, operand_text, same_as, swapped,
            pure_when, matmul_cost, bound)
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
    return new_node(name, inputs, canonical_attrs(attrs.items()) if attrs else (), shape, dtype)


def _check_inputs(name: str, inputs: tuple) -> None:
    for position, value in enumerate(inputs):
        if not isinstance(value, Node):
            raise TypeError(f"{name}: input {position} is {culprit(value)}, not a graphaudit Node")


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
