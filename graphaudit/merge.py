"""Merging common subexpressions by value numbering, and stable content digests.

:func:`merge` walks the graph once in topological order and gives every node a key
``(op, attrs, canonical ids of its inputs)``. The first node with a key becomes the
canonical one; later nodes with the same key are duplicates and map to it. Leaves
(placeholders, parameters) are keyed by identity, constants by dtype, shape and exact
bytes (so ``0.0`` and ``-0.0``, ``1`` and ``1.0`` stay apart), and impure ops (random
draws) by identity: they are never merged. The originals are never touched: a
canonical node whose inputs were replaced is rebuilt with :meth:`Node.with_inputs`.

:func:`digests` gives each node a Merkle hash of its op, attrs and input digests: equal
digests, in any process, mean equal subgraphs. It is the export form of the same
equivalence that :func:`merge` computes with integer keys.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from graphaudit.graph import Node, check_nodes, topological_order
from graphaudit.ops import OPS, get_op


@dataclass
class MergeResult:
    """What :func:`merge` found.

    ``mapping`` sends every node of the original graph to its node in the merged graph
    (itself when nothing changed); ``duplicates`` holds only the nodes that were merged
    into an earlier, equal node; ``order`` is the merged graph's topological order (its
    nodes in the order merging made them). Node counts are of operations (leaves not
    counted).
    """

    outputs: list[Node]
    order: list[Node]
    mapping: dict[Node, Node]
    duplicates: dict[Node, Node]
    nodes_before: int
    nodes_after: int
    _copies: Counter | None = field(default=None, repr=False)

    @property
    def removed(self) -> int:
        return self.nodes_before - self.nodes_after

    def copies(self, merged_node: Node) -> int:
        """How many nodes of the original graph became ``merged_node`` (1 = not duplicated)."""
        if self._copies is None:
            self._copies = Counter(self.mapping.values())
        return self._copies[merged_node]


def merge(outputs: Sequence[Node], *, commutative: bool = False) -> MergeResult:
    """Merge equal subexpressions of the graph that computes ``outputs``.

    With ``commutative=True`` the inputs of commutative ops (add, mul, maximum, equal)
    are put in a canonical order first, so ``a + b`` and ``b + a`` merge too.
    """
    outputs = check_nodes(outputs, "merge: outputs")
    canonical_by_key: dict[tuple, Node] = {}
    merged_order: list[Node] = []
    mapping: dict[Node, Node] = {}
    duplicates: dict[Node, Node] = {}
    nodes_before = nodes_after = 0
    for node in topological_order(outputs):
        op_name = node.op
        if op_name == "placeholder" or op_name == "parameter":
            mapping[node] = node
            merged_order.append(node)
            continue
        inputs = tuple([mapping[i] for i in node.inputs])
        if op_name == "constant":
            key = ("constant", node.dtype.str, node.shape, node.value.tobytes())
        else:
            nodes_before += 1
            op = OPS.get(op_name) or get_op(op_name)
            if not op.pure:
                key = ("impure", node.id)
            else:
                ids = [i.id for i in inputs]
                if commutative and op.commutative:
                    ids.sort()
                key = (op_name, node.attrs, *ids)
        found = canonical_by_key.get(key)
        if found is not None:
            mapping[node] = found
            duplicates[node] = found
            continue
        merged = node if inputs == node.inputs else node.with_inputs(inputs)
        canonical_by_key[key] = merged
        merged_order.append(merged)
        mapping[node] = merged
        if op_name != "constant":
            nodes_after += 1
    return MergeResult([mapping[o] for o in outputs], merged_order, mapping, duplicates, nodes_before, nodes_after)


def digests(outputs: Sequence[Node]) -> dict[Node, str]:
    """A stable hex digest per node: a Merkle hash of op, attrs and input digests.

    Leaves are identified by op, name, shape and dtype; constants by dtype, shape and
    bytes; impure nodes also by their position among the impure nodes of the graph, so
    two draws never share a digest. Provenance does not enter: a node rebuilt by two
    grad calls has one digest.
    """
    result: dict[Node, str] = {}
    impure_seen = 0
    for node in topological_order(check_nodes(outputs, "digests: outputs")):
        h = hashlib.blake2b(digest_size=16)
        h.update(node.op.encode())
        h.update(repr((node.shape, node.dtype.str)).encode())
        if node.op == "constant":
            h.update(node.value.tobytes())
        elif node.op in ("placeholder", "parameter"):
            h.update(repr(node.name).encode())
        else:
            h.update(repr(node.attrs).encode())
            if not get_op(node.op).pure:
                impure_seen += 1
                h.update(b"impure %d" % impure_seen)
        for source in node.inputs:
            h.update(result[source].encode())
        result[node] = h.hexdigest()
    return result
