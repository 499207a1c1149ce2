"""The separate form of an imported program, counted from its joint form alone.

A framework's grad call w.r.t. one parameter runs exactly the part of the joint backward
that that parameter's gradient depends on: its ancestors among the joint backward's nodes
(PyTorch's engine executes only the nodes on a path to the requested inputs; a node's
adjoint sums every consumer on such a path, as the joint call's does). So the separate
form is the shared forward plus, for every backward node of the joint form, one copy per
call whose gradient it reaches, and each call's part is known from one reverse walk
that gives every node the bitset of the gradients it reaches (a Python int, one bit per
call).

Copies of one node are equal, and copies of equal joint nodes are equal, so the classes
of the joint form's merge are the separate form's classes too: merging the separate form
gives the merged joint form, and every figure of :func:`graphaudit.analysis.duplicates.duplicated_work`
follows from how many copies each class has and which call built each copy. Nodes are
grouped by bitset (a layer's backward nodes serve the same calls), so the work is one walk
of the joint graph plus, per distinct bitset, one step per call in it.

Where the materialised separate form orders copies, calls are traced in order (the
forward first, then call 0, 1, ...): the first copy of a class, which merging keeps, is
its forward member if it has one, else the copy of the lowest call, the earliest node.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from graphaudit.analysis.cost import MergedNodeCosts, Cost
from graphaudit.analysis.duplicates import select_top, source_data, top_row
from graphaudit.analysis.merge import MergeResult
from graphaudit.core.describe import name_of
from graphaudit.core.source import Source
from graphaudit.core.graph import Node

FORWARD = -1  # the "call" of a forward node


def gradient_bits(result: MergeResult, outputs: Sequence[Node]) -> list[int]:
    """For each position of ``result.source``, the bitset of ``outputs`` it is an ancestor of (bit k: outputs[k])."""
    source = result.source
    position = {node.id: p for p, node in enumerate(source)}
    bits = [0] * len(source)
    for k, output in enumerate(outputs):
        bits[position[output.id]] |= 1 << k
    for p in range(len(source) - 1, -1, -1):  # inputs come before their consumers
        if b := bits[p]:
            for i in source[p].inputs:
                bits[position[i.id]] |= b
    return bits


def separate_from_joint(joint: Sequence[Node], result: MergeResult, names: dict[Node, str],
                        call_labels: Sequence[str], *, costs: MergedNodeCosts | None = None,
                        top: int, sources: dict[Node, Source] | None = None,
                        retraced_forward: bool = False) -> tuple[Cost, dict]:
    """The separate form's :class:`Cost` and its duplicated work (``Report.duplicated``), from the joint form.

    ``joint[k]`` is the joint call's gradient for call ``k``, ``result`` the merge of the
    joint form, ``call_labels[k]`` how reports name call ``k``, ``sources`` the user's lines
    of nodes (for the rows' ``source``). ``retraced_forward=True`` is for frameworks whose every
    grad call traces the forward pass again: a forward node then has one copy per
    call whose gradient it reaches (those calls trace it: the primal values and the derivative
    factors their backward reads), all of them forward work, instead of the one shared copy.
    """
    sources = sources if sources is not None else {}
    costs = costs if costs is not None else MergedNodeCosts(result)
    source = result.source
    bits = gradient_bits(result, joint)
    operations = np.flatnonzero(~result.leaf).tolist()
    classes = len(costs.first)
    copies, backward_copies = [0] * classes, [0] * classes
    owner: list[tuple | None] = [None] * classes  # (call, position) of each class's first copy
    by_bits: dict[int, list[int]] = {}  # bitset -> positions of the backward nodes that serve those calls
    for p in operations:
        c = int(costs.index[p])
        if costs.backward[p]:
            count, first = bits[p].bit_count(), _lowest(bits[p])
            backward_copies[c] += count
            by_bits.setdefault(bits[p], []).append(p)
        else:
            count, first = (bits[p].bit_count() if retraced_forward else 1), FORWARD
        copies[c] += count
        if owner[c] is None or (first, p) < owner[c]:
            owner[c] = (first, p)
    separate = costs.cost(copies, backward_copies)
    forward_copies = [(bits[p].bit_count() if retraced_forward else 1) for p in operations]
    duplicates = [n - 1 for n in copies]
    totals = costs.cost(duplicates, [0] * classes)
    return separate, {
        "nodes": totals.nodes,
        "flops": totals.flops,
        "matmul_flops": totals.matmul_flops,
        "bytes": totals.bytes,
        "bounds": dict(totals.bounds),
        "by_op": _by_op(costs, duplicates),
        "by_call": _by_call(costs, by_bits, owner, duplicates, operations, call_labels, forward_copies),
        "by_forward_node": _by_forward_node(source, costs, bits, owner, by_bits, names, sources),
        "top": _top(source, costs, bits, owner, copies, operations, names, sources, call_labels, top,
                    retraced_forward),
    }


def _lowest(bits: int) -> int:
    return (bits & -bits).bit_length() - 1


def _calls_in(bits: int) -> list[int]:
    calls = []
    while bits:
        low = bits & -bits
        calls.append(low.bit_length() - 1)
        bits ^= low
    return calls


def _by_op(costs: MergedNodeCosts, duplicates: list[int]) -> dict[str, dict]:
    by_op: dict[str, dict] = {}
    for c, n in enumerate(duplicates):
        if n:
            entry = by_op.setdefault(costs.ops[c], {"nodes": 0, "flops": 0, "bytes": 0})
            entry["nodes"] += n
            entry["flops"] += costs.flops[c] * n
            entry["bytes"] += costs.bytes[c] * n
    return dict(sorted(by_op.items(), key=lambda kv: (-kv[1]["flops"], -kv[1]["nodes"], kv[0])))


def _by_call(costs: MergedNodeCosts, by_bits: dict[int, list[int]], owner: list, duplicates: list[int],
             operations: list[int], call_labels: Sequence[str], forward_copies: list[int]) -> dict[str, dict]:
    """Per call (the forward first, then the calls in order), the copies it built of work already built."""
    built: dict[int, list[int]] = {}  # call -> [nodes, flops, matmul] of every copy it built

    def add(call: int, c: int, sign: int, times: int = 1) -> None:
        entry = built.setdefault(call, [0, 0, 0])
        entry[0] += sign * times
        entry[1] += sign * times * costs.flops[c]
        entry[2] += sign * times * costs.matmul[c]

    for bits, positions in by_bits.items():
        class_counts: dict[int, int] = {}
        for p in positions:
            c = int(costs.index[p])
            class_counts[c] = class_counts.get(c, 0) + 1
        for call in _calls_in(bits):
            for c, n in class_counts.items():
                add(call, c, 1, n)
    for p, n in zip(operations, forward_copies):
        if not costs.backward[p]:
            add(FORWARD, int(costs.index[p]), 1, n)
    for c, (call, _) in enumerate(owner):
        add(call, c, -1)  # the first copy is the one merging keeps
    by_call = {}
    for call in sorted(built):
        nodes, flops, matmul = built[call]
        if nodes:
            key = "forward" if call == FORWARD else call_labels[call]
            by_call[key] = {"nodes": nodes, "flops": flops, "matmul_flops": matmul}
    return by_call


def _by_forward_node(source: list[Node], costs: MergedNodeCosts, bits: list[int], owner: list,
                     by_bits: dict[int, list[int]], names: dict[Node, str],
                     sources: dict[Node, Source]) -> dict[str, dict]:
    """For each forward node whose vjp rule ran in several calls: how often, and the cost of the copies."""
    calls: dict[int, int] = {}  # origin id -> bitset of the calls that ran its rule
    duplicated: dict[int, list[int]] = {}  # origin id -> [nodes, flops] of its rule's extra copies
    origins: dict[int, Node] = {}
    for positions in by_bits.values():
        for p in positions:
            origin = source[p].origin
            if origin is None:
                continue
            origins[origin.id] = origin
            calls[origin.id] = calls.get(origin.id, 0) | bits[p]
            entry = duplicated.setdefault(origin.id, [0, 0])
            c = int(costs.index[p])
            entry[0] += bits[p].bit_count()
            entry[1] += bits[p].bit_count() * costs.flops[c]
    for c, (_, p) in enumerate(owner):
        origin = source[p].origin
        if origin is not None and costs.backward[p]:
            duplicated[origin.id][0] -= 1
            duplicated[origin.id][1] -= costs.flops[c]
    rows = []
    for key, (nodes, flops) in duplicated.items():
        if nodes:
            node, ran = origins[key], calls[key].bit_count()
            rows.append((-flops, -nodes, name_of(node, names), {
                "op": node.op, "shape": list(node.shape), "calls": ran, "rebuilt": ran - 1, "nodes": nodes,
                "flops": flops, "source": source_data(node, sources)}))
    return {name: row for *_, name, row in sorted(rows, key=lambda r: r[:3])}


def _top(source: list[Node], costs: MergedNodeCosts, bits: list[int], owner: list, copies: list[int],
         operations: list[int], names: dict[Node, str], sources: dict[Node, Source], call_labels: Sequence[str],
         top: int, retraced_forward: bool) -> list[dict]:
    """The duplicated subexpressions that waste most FLOPs, one row per class, as the built form lists them."""
    if top <= 0:
        return []
    members: dict[int, list[int]] = {}
    for p in operations:
        members.setdefault(int(costs.index[p]), []).append(p)

    def row(first: Node, c: int) -> dict:
        def calls(p: int) -> list[int]:
            if costs.backward[p]:
                return _calls_in(bits[p])
            return [FORWARD] * (bits[p].bit_count() if retraced_forward else 1)

        built = sorted(call for p in members[c] for call in calls(p))
        labels = ["forward" if call == FORWARD else call_labels[call] for call in built]
        return top_row(first, copies[c], labels, names, sources)

    candidates = [((-costs.flops[c] * (n - 1), -n, costs.ops[c]), source[owner[c][1]], c)
                  for c, n in enumerate(copies) if n > 1]
    return select_top(candidates, row, top)
