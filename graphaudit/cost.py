"""FLOPs and bytes from shapes.

Conventions (those of torch's flop counter and XLA's cost analysis): a matrix product
``(m,k) @ (k,n)`` costs ``2*m*k*n`` FLOPs (times its batch); an elementwise op one FLOP
per output element; a reduction one per input element; data movement (reshape,
transpose, indexing, slicing) no FLOPs. Each op's rule sits in its registry entry
(:mod:`graphaudit.ops`). ``bytes`` counts what every operation writes: its output's
size times its itemsize. Leaves (inputs, parameters, constants) cost nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

from graphaudit.graph import LEAF_OPS, Node
from graphaudit.ops import get_op


def node_flops(node: Node) -> int:
    """FLOPs of one node (0 for leaves and for ops without a cost rule)."""
    if node.is_leaf:
        return 0
    rule = get_op(node.op).cost
    return int(rule(node)) if rule is not None else 0


def node_bytes(node: Node) -> int:
    """Bytes one node writes (0 for leaves)."""
    if node.is_leaf:
        return 0
    return node.size * node.dtype.itemsize


def is_matmul(node: Node) -> bool:
    return not node.is_leaf and get_op(node.op).kind == "matmul"


@dataclass(frozen=True)
class Cost:
    """Totals over a set of nodes; counts are of operations only (leaves excluded).

    ``no_cost_rule`` counts, by op, the nodes whose FLOPs are unknown (imported ops
    without a rule): they are in ``nodes`` and ``bytes`` but add nothing to ``flops``.
    """

    nodes: int = 0
    backward_nodes: int = 0
    flops: int = 0
    backward_flops: int = 0
    matmul_flops: int = 0
    bytes: int = 0
    no_cost_rule: tuple[tuple[str, int], ...] = ()

    def to_dict(self) -> dict:
        data = asdict(self)
        data["no_cost_rule"] = dict(self.no_cost_rule)
        return data


def total_cost(nodes: Iterable[Node]) -> Cost:
    """Add up the cost of ``nodes`` (e.g. a topological order, or a list of duplicates)."""
    count = backward = flops = backward_flops = matmul = written = 0
    unknown: dict[str, int] = {}
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
        written += node.size * node.dtype.itemsize
        if node.call is not None:
            backward += 1
            backward_flops += f
        if op.kind == "matmul":
            matmul += f
    return Cost(count, backward, flops, backward_flops, matmul, written, tuple(sorted(unknown.items())))
