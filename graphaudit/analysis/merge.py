"""Merging common subexpressions by value numbering, and stable content digests.

:func:`merge` walks the graph once in topological order and gives every node a key
``(op, attrs, canonical ids of its inputs)``. The first node with a key becomes the
canonical one; later nodes with the same key are duplicates and map to it. Leaves
(placeholders, parameters) are keyed by identity, constants by dtype, shape and exact
bytes (so ``0.0`` and ``-0.0``, ``1`` and ``1.0`` stay apart), and impure ops (random
draws) by the draw they make (:attr:`Node.draw`): two draws never merge. The originals are
never touched: a canonical node whose inputs were replaced is rebuilt with
:meth:`Node.with_inputs`, an impure one with :meth:`Node.same_draw`, so that it stays the one
draw the program makes. That is what lets the merged separate and merged joint forms, each a
rebuild of what reads the one forward pass, merge with each other when they are equal.

Separate forms have millions of nodes, so both passes (the walk that finds the nodes,
and value numbering) index a list by node id instead of hashing nodes, and numbering
reads each node once, keying small tuples of class numbers. The result keeps positions
in arrays (:attr:`MergeResult.canonical`), which is what the audit's costing and
breakdowns work on; the node-keyed ``mapping`` and ``duplicates`` are built on demand.

:func:`digests` gives each node a Merkle hash of its op, attrs and input digests: equal
digests, in any process, mean equal subgraphs. It is the export form of the same
equivalence that :func:`merge` computes with integer keys.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cached_property

import numpy as np

from graphaudit.core.attrs import attrs_text
from graphaudit.core.graph import Node, check_nodes, paused_gc, topological_order
from graphaudit.core.ops import OPS, get_op
from graphaudit.analysis.semantic import Limits, Saturation, semantic_classes


class MergeResult:
    """What :func:`merge` found.

    ``mapping`` sends every node of the original graph to its node in the merged graph
    (itself when nothing changed); ``duplicates`` holds only the nodes that were merged
    into an earlier, equal node; ``order`` is the merged graph's topological order (its
    nodes in the order merging made them). Node counts are of operations (leaves not
    counted).

    The same in arrays, for work on large graphs: ``source`` is the original graph in
    topological (id) order, ``canonical[i]`` the position in ``source`` of the first
    node equal to ``source[i]`` (``i`` itself for canonical nodes), and ``leaf[i]``
    whether ``source[i]`` is a leaf.

    A semantic merge (``merge(..., semantic=True)``) also has ``saturation`` (what
    equality saturation did) and ``exact`` (the classes that the exact rules alone gave).
    Its classes may hold different ops (``x`` and ``neg(neg(x))``), so its merged graph
    is what the outputs reach (``order`` and ``nodes_after`` count that), and its nodes are
    costed one by one (:mod:`graphaudit.analysis.semantic_work`), not by class.
    """

    def __init__(self, outputs: list[Node], source: list[Node], canonical: np.ndarray, leaf: np.ndarray,
                 rebuilt: dict[int, Node], saturation: Saturation | None = None, exact: np.ndarray | None = None,
                 reached: np.ndarray | None = None):
        self.outputs = outputs
        self.source = source
        self.canonical = canonical
        self.leaf = leaf
        self.saturation = saturation
        self.exact = exact
        self._rebuilt = rebuilt  # canonical positions whose node was copied: the copy (see _rebuild)
        kept = np.flatnonzero(canonical == np.arange(len(source))) if reached is None else reached
        self.kept = kept  # positions in source of the merged graph's nodes
        self.order = _merged_nodes(source, rebuilt, kept.tolist())
        self.nodes_before = int(np.count_nonzero(~leaf))
        self.nodes_after = int(np.count_nonzero(~leaf[kept]))

    @cached_property
    def _merged(self) -> list[Node]:
        """At each canonical position, the node of the merged graph."""
        merged = list(self.source)
        for p, node in self._rebuilt.items():
            merged[p] = node
        return merged

    @property
    def removed(self) -> int:
        return self.nodes_before - self.nodes_after

    @cached_property
    def mapping(self) -> dict[Node, Node]:
        return dict(zip(self.source, map(self._merged.__getitem__, self.canonical.tolist())))

    @cached_property
    def duplicates(self) -> dict[Node, Node]:
        moved = np.flatnonzero(self.canonical != np.arange(len(self.source)))
        source, merged = self.source, self._merged
        return {source[p]: merged[c] for p, c in zip(moved.tolist(), self.canonical[moved].tolist())}

    @cached_property
    def _copies(self) -> dict[Node, int]:
        counts = np.bincount(self.canonical, minlength=len(self.source))
        kept = np.flatnonzero(counts).tolist()
        return dict(zip([self._merged[p] for p in kept], counts[kept].tolist()))

    def copies(self, merged_node: Node) -> int:
        """How many nodes of the original graph became ``merged_node`` (1 = not duplicated)."""
        return self._copies.get(merged_node, 0)

    def __repr__(self) -> str:
        return f"<MergeResult {self.nodes_before} -> {self.nodes_after} nodes>"


def merge(outputs: Sequence[Node], *, commutative: bool = False, semantic: bool = False,
          limits: Limits | None = None, associativity: bool = False) -> MergeResult:
    """Merge equal subexpressions of the graph that computes ``outputs``.

    With ``commutative=True`` the inputs of commutative ops (add, mul, maximum, equal)
    are put in a canonical order first, so ``a + b`` and ``b + a`` merge too.

    With ``semantic=True`` (needs egglog) nodes merge when the rules of
    :mod:`graphaudit.analysis.rewrites` prove their values equal (:mod:`graphaudit.analysis.semantic`), within
    ``limits``; ``associativity=True`` adds reassociation, which changes rounding.
    """
    outputs = check_nodes(outputs, "merge: outputs")
    with paused_gc():  # numbering makes a key tuple per node: each collection would walk the whole graph
        source, slots = _reachable(outputs)
        classes, leaves = _value_numbers(source, slots, commutative)
        canonical = np.fromiter(classes, np.int64, len(classes))
        leaf = np.zeros(len(source), bool)
        leaf[leaves] = True
        if not semantic:
            rebuilt = _rebuild(source, canonical, leaf, slots)
            return MergeResult(_merged_nodes(source, rebuilt, [slots[o.id] for o in outputs]), source, canonical,
                               leaf, rebuilt)
        exact, canonical, saturation = semantic_classes(source, canonical, leaf, limits=limits,
                                                        associativity=associativity)
        for node, c in zip(source, canonical.tolist()):
            slots[node.id] = c
        rebuilt = _rebuild(source, canonical, leaf, slots)
        ends = [slots[o.id] for o in outputs]
        return MergeResult(_merged_nodes(source, rebuilt, ends), source, canonical, leaf, rebuilt, saturation, exact,
                           _reached(source, canonical, slots, ends))


def _reached(source: list[Node], canonical: np.ndarray, classes: list | dict, ends: list[int]) -> np.ndarray:
    """The classes (canonical positions) that the merged graph's outputs, at ``ends``, reach.

    After syntactic merging every class is reached; a semantic merge can leave one behind
    (``neg(x)``, once ``neg(neg(x))`` is merged into ``x``). ``classes[node.id]`` is each node's class.
    """
    seen = np.zeros(len(source), bool)
    seen[ends] = True
    for p in range(len(source) - 1, -1, -1):  # a class's first node comes after its inputs' classes
        if seen[p]:
            for i in source[p].inputs:
                seen[classes[i.id]] = True
    return np.flatnonzero(seen & (canonical == np.arange(len(source))))


def _reachable(outputs: list[Node]) -> tuple[list[Node], list | dict]:
    """Every node the outputs depend on in id (so topological) order, and a table of them indexed by id.

    What :func:`topological_order` finds, found faster: nodes are marked in a list
    indexed by id (no hashing, no sort), swept from the newest id down, so a node's
    inputs, being older, are marked before the sweep reaches them. The list first spans
    the outputs (a separate form's gradients span most of it; at most 4M ids), then
    grows down, at least doubling, past the oldest input found below it while the graph
    fills it densely; what is older still (a sparse graph) is walked with a set.

    Indexing by ``id - low`` makes an int per lookup (a third of the sweep's time, a
    fifth of numbering's), so the list reaches down to id 0 whenever that at most
    doubles it. The table returned, for :func:`_value_numbers` to overwrite with
    classes, holds each node at its id: the list, padded down to id 0 when that at
    most multiplies its length by 9, else a dict.
    """
    if not outputs:
        return [], []
    top = max(o.id for o in outputs) + 1
    low, window, found = top, [], []
    pending = set(outputs)  # found, but below the window
    while pending:
        oldest = min(node.id for node in pending)
        if not window:
            new_low = max(oldest - 4096, top - (1 << 22), 0)
        elif low - oldest <= 4 * (len(found) + len(pending)) + 4096:
            new_low = max(0, min(oldest, low - len(window)))  # at least doubling: few steps down a long chain
        else:
            break
        if new_low <= top - new_low:
            new_low = 0
        extension: list[Node | None] = [None] * (low - new_low)
        below = []
        for node in pending:
            if node.id >= new_low:
                extension[node.id - new_low] = node
            else:
                below.append(node)
        if new_low:
            for node in reversed(extension):
                if node is not None:
                    for source in node.inputs:
                        i = source.id - new_low
                        if i >= 0:
                            extension[i] = source
                        else:
                            below.append(source)
        else:  # the same, by the ids themselves: nothing is below id 0
            for node in reversed(extension):
                if node is not None:
                    for source in node.inputs:
                        extension[source.id] = source
        found = _joined([node for node in extension if node is not None], found)
        low, window, pending = new_low, _joined(extension, window), set(below)
    if pending:
        found[:0] = topological_order(pending)  # the sparse remainder, walked with a set
    elif low <= 8 * len(window):
        window[:0] = [None] * low
        return found, window
    return found, {node.id: node for node in found}


def _joined(head: list, tail: list) -> list:
    """``head + tail``, made by extending the longer list in place.

    Copying a list of nodes touches every node (its reference count): at millions of
    nodes, scattered in memory, that costs about as much as a pass of the walk itself.
    """
    if len(head) >= len(tail):
        head += tail
        return head
    tail[:0] = head
    return tail


def _value_numbers(source: list[Node], slots: list | dict, commutative: bool) -> tuple[list[int], list[int]]:
    """The class of each node (the position of the first equal node), and the positions of the leaves.

    One pass in topological order. ``slots[node.id]`` is overwritten with the
    node's class as soon as it is known, so an op's key is a tuple of its op, attrs and
    its inputs' classes, read by index. Most nodes of a separate form are duplicates, so
    the key is looked up first and the op's kind asked only on a miss: keys are stored
    only for pure ops (with sorted classes for commutative ones), so an impure or
    unknown op never hits. An impure node is keyed apart, by its draw and its inputs'
    classes: the copies merging made of one draw (:meth:`Node.same_draw`) are one node. Constants sharing one array (vjp rules' zeros and ones do)
    are keyed once: a constant's dtype and shape are its array's.
    """
    sort = {name for name, op in OPS.items() if commutative and op.commutative}
    pure = {name for name, op in OPS.items() if op.pure}
    pure_when = {name: op.pure_when for name, op in OPS.items() if not op.pure and op.pure_when is not None}
    numbered: dict[tuple, int] = {}
    get = numbered.get
    constants: dict[tuple, int] = {}
    draws: dict[tuple, int] = {}  # (id of the draw, key) -> class, for impure nodes
    constant_arrays: dict[int, int] = {}  # id of an array -> class of its constants (the arrays stay alive)
    classes: list[int] = []
    append = classes.append
    leaves: list[int] = []
    for node in source:
        ins = node.inputs
        if len(ins) == 2:
            key = (node.op, node.attrs, slots[ins[0].id], slots[ins[1].id])
        elif len(ins) == 1:
            key = (node.op, node.attrs, slots[ins[0].id])
        elif ins:
            key = (node.op, node.attrs, *[slots[i.id] for i in ins])
        elif node.op == "constant":
            key = None  # never a key: constants are keyed by their array, below
        else:
            key = (node.op, node.attrs)
        c = get(key)
        if c is None:
            p = len(classes)  # the position of this node, needed only here (so no enumerate)
            op = node.op
            if key is None:
                leaves.append(p)
                value = node.value
                c = constant_arrays.get(id(value))
                if c is None:
                    c = constant_arrays[id(value)] = constants.setdefault(
                        (value.dtype.str, value.shape, value.tobytes()), p)
            elif op in sort:  # any fixed order of the classes will do: equal multisets, equal keys
                c = numbered.setdefault((op, node.attrs, *sorted(key[2:])), p)
            elif op in pure or (op in pure_when and pure_when[op](node)):
                c = numbered[key] = p
            elif op == "placeholder" or op == "parameter":  # by identity
                leaves.append(p)
                c = p
            else:
                get_op(op)  # an unknown op raises here
                c = draws.setdefault((node.draw.id, key), p)
        slots[node.id] = c
        append(c)
    return classes, leaves


def _rebuild(source: list[Node], canonical: np.ndarray, leaf: np.ndarray, classes: list | dict) -> dict[int, Node]:
    """The copies the merged graph needs, by position: canonical nodes that read a replaced input.

    ``classes[node.id]`` is the class of each node. Only canonical nodes after the
    first duplicate can read a replaced input. Every other node of the merged graph is
    the original, read from ``source`` (a full list of the merged graph would touch
    every node; see :func:`_joined`).
    """
    rebuilt: dict[int, Node] = {}
    duplicate = canonical != np.arange(len(source))
    if not duplicate.any():
        return rebuilt
    candidates = np.flatnonzero(~duplicate & ~leaf)
    pure = {name for name, op in OPS.items() if op.pure}
    for p in candidates[candidates > np.argmax(duplicate)].tolist():
        node = source[p]
        new_inputs = tuple(_merged_nodes(source, rebuilt, [classes[i.id] for i in node.inputs]))
        if new_inputs == node.inputs:
            continue
        is_pure = node.op in pure or get_op(node.op).is_pure(node)
        rebuilt[p] = node.with_inputs(new_inputs) if is_pure else node.same_draw(new_inputs)
    return rebuilt


def _merged_nodes(source: list[Node], rebuilt: dict[int, Node], positions: list[int]) -> list[Node]:
    """The merged graph's nodes at canonical ``positions``: the copy :func:`_rebuild` made, else the original."""
    get = rebuilt.get
    return [get(p, source[p]) for p in positions]


def digests(outputs: Sequence[Node]) -> dict[Node, str]:
    """A stable hex digest per node: a Merkle hash of op, attrs and input digests.

    Leaves are identified by op, name, shape and dtype; constants by dtype, shape and
    bytes; impure nodes also by the position of their draw (:attr:`Node.draw`) among the
    draws of the graph, so two draws never share a digest. Provenance does not enter: a node rebuilt by two
    grad calls has one digest.
    """
    result: dict[Node, str] = {}
    draws: dict[int, int] = {}  # id of a draw -> its position among the graph's draws
    for node in topological_order(check_nodes(outputs, "digests: outputs")):
        h = hashlib.blake2b(digest_size=16)
        h.update(node.op.encode())
        h.update(repr((node.shape, node.dtype.str)).encode())
        if node.op == "constant":
            h.update(node.value.tobytes())
        elif node.op in ("placeholder", "parameter"):
            h.update(repr(node.name).encode())
        else:
            h.update(attrs_text(node.attrs).encode())
            if not get_op(node.op).is_pure(node):
                h.update(b"impure %d" % draws.setdefault(node.draw.id, len(draws)))
        for source in node.inputs:
            h.update(result[source].encode())
        result[node] = h.hexdigest()
    return result
