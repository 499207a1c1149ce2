"""FLOPs and bytes from shapes.

Conventions (those of torch's flop counter and XLA's cost analysis): a matrix product
``(m,k) @ (k,n)`` costs ``2*m*k*n`` FLOPs (times its batch); an elementwise op one FLOP
per output element; a reduction one per input element; data movement (reshape,
transpose, indexing, slicing) no FLOPs. Each op's rule sits in its registry entry
(:mod:`graphaudit.core.ops`). ``bytes`` counts what an operation writes to a new buffer: its
output's size times its itemsize, except for views (``Op.view``: transpose, reshape,
broadcast, basic slicing), which write nothing. Leaves (inputs, parameters, constants)
cost nothing.

Matmul FLOPs are a figure of their own: all of a product's FLOPs, and the share of a loop
kept whole that its products make (``Op.matmul_cost``: body x trip count, as its FLOPs). A
loop costed without knowing what it runs (a cond at its costliest branch, a while at one
iteration) has FLOPs that are a bound (``Op.bound``); totals over such nodes say so.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

from graphaudit.core.graph import LEAF_OPS, Node
from graphaudit.analysis.merge import MergeResult
from graphaudit.core.ops import get_op


def node_flops(node: Node) -> int:
    """FLOPs of one node (0 for leaves and for ops without a cost rule)."""
    if node.is_leaf:
        return 0
    rule = get_op(node.op).cost
    return int(rule(node)) if rule is not None else 0


def node_bytes(node: Node) -> int:
    """Bytes one node writes to a new buffer (0 for leaves and views)."""
    if node.is_leaf or get_op(node.op).view:
        return 0
    return node.size * node.dtype.itemsize


def is_matmul(node: Node) -> bool:
    return not node.is_leaf and get_op(node.op).is_matmul


def node_matmul_flops(node: Node) -> int:
    """FLOPs of one node spent in matrix products: all of a product's, a loop kept whole's share."""
    if node.is_leaf:
        return 0
    op = get_op(node.op)
    if op.is_matmul:
        return node_flops(node)
    return int(op.matmul_cost(node)) if op.matmul_cost is not None else 0


UPPER, LOWER, MIXED = "upper", "lower", "mixed"  # what a bound is: mixed holds parts of both kinds


def node_bound(node: Node) -> str | None:
    """``"upper"`` or ``"lower"`` (or ``"mixed"``) when a node's FLOPs are a bound rather than a
    count (see ``Op.bound``); None when they are a count."""
    if node.is_leaf:
        return None
    rule = get_op(node.op).bound
    return rule(node) if rule is not None else None


def combined_bound(bounds: Iterable[str | None]) -> str | None:
    """What a sum of figures is, given what each part is: a count, an upper or lower bound, or mixed."""
    kinds = {b for b in bounds if b is not None}
    return None if not kinds else kinds.pop() if len(kinds) == 1 else MIXED


@dataclass(frozen=True)
class Cost:
    """Totals over a set of nodes; counts are of operations only (leaves excluded).

    ``no_cost_rule`` counts, by op, the nodes whose FLOPs are unknown (imported ops
    without a rule): they are in ``nodes`` and ``bytes`` but add nothing to ``flops``.
    ``bounds`` counts the nodes whose FLOPs are an ``upper``, ``lower`` or ``mixed`` bound, not a count
    (:func:`node_bound`): with any, ``flops`` and ``matmul_flops`` are bounds too.
    """

    nodes: int = 0
    backward_nodes: int = 0
    flops: int = 0
    backward_flops: int = 0
    matmul_flops: int = 0
    bytes: int = 0
    no_cost_rule: tuple[tuple[str, int], ...] = ()
    bounds: tuple[tuple[str, int], ...] = ()

    def to_dict(self) -> dict:
        data = asdict(self)
        data["no_cost_rule"] = dict(self.no_cost_rule)
        data["bounds"] = dict(self.bounds)
        return data


def total_cost(nodes: Iterable[Node]) -> Cost:
    """Add up the cost of ``nodes`` (e.g. a topological order, or a list of duplicates)."""
    count = backward = flops = backward_flops = matmul = written = 0
    unknown: dict[str, int] = {}
    bounds: dict[str, int] = {}
    for node in nodes:
        if node.op in LEAF_OPS:
            continue
        op = get_op(node.op)
        if op.cost is None:
            unknown[node.op] = unknown.get(node.op, 0) + 1
            f = 0
        else:
            f = int(op.cost(node))
        count += 1
        flops += f
        if not op.view:
            written += node.size * node.dtype.itemsize
        if node.call is not None:
            backward += 1
            backward_flops += f
        matmul += node_matmul_flops(node)
        if (bound := node_bound(node)) is not None:
            bounds[bound] = bounds.get(bound, 0) + 1
    return Cost(count, backward, flops, backward_flops, matmul, written, tuple(sorted(unknown.items())),
                tuple(sorted(bounds.items())))


class MergedNodeCosts:
    """The cost of each node of a merged graph, and which of them each original node became.

    A node of the merged graph stands for a class of equal nodes (same op, attrs and
    inputs), and equal nodes have equal shapes, so one evaluation of the cost rule serves
    every copy: the rules run once per node of the merged graph, not once per node of the
    (much larger) original. ``index[i]`` numbers the class of
    ``result.source[i]`` (for operations; -1 for leaves); ``flops``, ``bytes``,
    ``matmul``, ``bound`` and ``known`` (has a cost rule) are per class, ``first[k]`` is the
    position of class ``k``'s canonical node; ``matmul`` holds FLOPs in products and ``bound``
    ``"upper"``, ``"lower"`` or None. FLOPs are Python ints, exact however large.
    ``call[i]`` is the index of the grad call that built ``result.source[i]`` (-1: a
    forward node).
    """

    def __init__(self, result: MergeResult):
        source, canonical, leaf = result.source, result.canonical, result.leaf
        positions = np.arange(len(source))
        self.first = np.flatnonzero((canonical == positions) & ~leaf)
        self.index = np.full(len(source), -1, np.int64)
        self.index[self.first] = np.arange(len(self.first))
        self.index = np.where(leaf, -1, self.index[canonical])
        self.flops, self.bytes, self.matmul, self.bound, self.known, self.ops = [], [], [], [], [], []
        for p in self.first.tolist():
            node = source[p]
            self.flops.append(node_flops(node))
            self.bytes.append(node_bytes(node))
            self.matmul.append(node_matmul_flops(node))
            self.bound.append(node_bound(node))
            self.known.append(get_op(node.op).cost is not None)
            self.ops.append(node.op)
        self.call = np.fromiter([-1 if (c := node.call) is None else c.index for node in source], np.int64,
                                len(source))
        self.backward = self.call >= 0

    def copies(self, positions: np.ndarray) -> list[int]:
        """How many of the nodes at ``positions`` (operations) fall in each class."""
        return np.bincount(self.index[positions], minlength=len(self.first)).tolist()

    def cost(self, copies: list[int], backward_copies: list[int]) -> Cost:
        """Totals over a multiset of nodes given by how many copies of each class it holds."""
        flops = sum(map(operator.mul, self.flops, copies))
        unknown: dict[str, int] = {}
        for op, known, count in zip(self.ops, self.known, copies):
            if count and not known:
                unknown[op] = unknown.get(op, 0) + count
        bounds: dict[str, int] = {}
        for bound, count in zip(self.bound, copies):
            if count and bound is not None:
                bounds[bound] = bounds.get(bound, 0) + count
        return Cost(
            nodes=sum(copies),
            backward_nodes=sum(backward_copies),
            flops=flops,
            backward_flops=sum(map(operator.mul, self.flops, backward_copies)),
            matmul_flops=sum(map(operator.mul, self.matmul, copies)),
            bytes=sum(map(operator.mul, self.bytes, copies)),
            no_cost_rule=tuple(sorted(unknown.items())),
            bounds=tuple(sorted(bounds.items())),
        )


def merge_costs(result: MergeResult, costs: MergedNodeCosts | None = None) -> tuple[Cost, Cost]:
    """The :class:`Cost` of the graph that was merged into ``result``, and of the merged graph.

    Same totals as :func:`total_cost` of ``result.source`` and of ``result.order``.
    """
    costs = costs if costs is not None else MergedNodeCosts(result)
    operations = np.flatnonzero(~result.leaf)
    original = costs.cost(costs.copies(operations), costs.copies(operations[costs.backward[operations]]))
    once = [1] * len(costs.first)
    merged = costs.cost(once, costs.backward[costs.first].astype(int).tolist())
    return original, merged
