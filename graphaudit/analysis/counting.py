"""Counting mode: the separate form's size and duplicated work, without building it.

The separate form of a deep network is quadratic: a 1,000-layer chain makes millions of
nodes. But every separate call builds a subset of what the joint call builds, and
which subset is known in advance:

- call ``k`` runs the turn of forward node ``F`` exactly when ``F`` lies on a path from
  ``wrt[k]`` (``reach[F]`` holds one bit per call, as a Python int used as a bitset);
- in that turn it builds the summation of ``F``'s adjoint (the same in every call) and,
  for each input ``i`` whose ``reach`` has bit ``k``, the nodes the vjp rule builds for
  input ``i``: the joint call's, since rules build each wanted input's adjoint alone.

So the joint call is built once with a record of what each turn built
(:func:`graphaudit.core.grad.grad_with_record`), calls are grouped by which inputs they
want at each ``F``, and every count is a sum over groups weighted by group size. Equal
nodes are recognised through the joint form's merge: two copies are duplicates when
they map to the same merged node. Merging the separate form gives the merged joint
form (the materialised :func:`graphaudit.audit` checks it), so the merged counts are
those of the joint form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from graphaudit.analysis.duplicates import select_top, source_data, top_row
from graphaudit.analysis.cost import Cost, node_bytes, node_flops, node_matmul_flops, total_cost
from graphaudit.core.describe import name_of
from graphaudit.core.grad import RuleRecord
from graphaudit.core.graph import Node, made_since, topological_order
from graphaudit.analysis.merge import MergeResult
from graphaudit.core.ops import get_op
from graphaudit.core.source import Source


@dataclass
class _Occurrence:
    """Nodes of one merged class built at one forward node's turn, by the calls in ``bits``."""

    node: Node
    turn: int
    bits: int


def count_separate(
    cost: Node,
    targets: Sequence[Node],
    joint: Sequence[Node],
    record: list[RuleRecord],
    joint_merge: MergeResult,
    names: dict[Node, str],
    call_labels: Sequence[str],
    *,
    top: int,
    sources: dict[Node, Source] | None = None,
) -> tuple[Cost, dict]:
    """The separate form's :class:`Cost` and its duplicated work (the dict of ``Report.duplicated``);
    ``sources`` the user's lines of forward nodes, for the rows."""
    reach = _reach(cost, targets)
    live = joint_merge.mapping
    forward = [n for n in topological_order(joint) if n.call is None and not n.is_leaf]

    occurrences: dict[Node, list[_Occurrence]] = {}  # merged node -> backward copies
    built_by_bits: dict[int, list[int]] = {}  # calls bitset -> [nodes, flops, matmul flops] built per call
    turn_calls: dict[Node, int] = {}  # forward node -> calls whose turn built a live node
    totals = [0, 0, 0, 0]  # nodes, flops, matmul flops, bytes of the backward part
    unknown: dict[str, int] = {}
    for turn, entry in enumerate(record):
        for bits, nodes in _groups(entry, reach):
            nodes = [n for n in nodes if n in live and not n.is_leaf]
            if not nodes:
                continue
            calls = bits.bit_count()
            turn_calls[entry.node] = turn_calls.get(entry.node, 0) | bits
            aggregate = built_by_bits.setdefault(bits, [0, 0, 0])
            for node in nodes:
                flops = node_flops(node)
                matmul = node_matmul_flops(node)
                aggregate[0] += 1
                aggregate[1] += flops
                aggregate[2] += matmul
                totals[0] += calls
                totals[1] += calls * flops
                totals[2] += calls * matmul
                totals[3] += calls * node_bytes(node)
                if get_op(node.op).cost is None:
                    unknown[node.op] = unknown.get(node.op, 0) + calls
                occurrences.setdefault(live[node], []).append(_Occurrence(node, turn, bits))

    shared = total_cost(forward)
    separate = Cost(
        nodes=shared.nodes + totals[0],
        backward_nodes=totals[0],
        flops=shared.flops + totals[1],
        backward_flops=totals[1],
        matmul_flops=shared.matmul_flops + totals[2],
        bytes=shared.bytes + totals[3],
        no_cost_rule=tuple(sorted({**dict(shared.no_cost_rule), **unknown}.items())),
    )
    forward_members: dict[Node, list[Node]] = {}
    for node in forward:
        forward_members.setdefault(live[node], []).append(node)
    duplicated = _duplicated(
        occurrences, forward_members, built_by_bits, turn_calls, record, names, sources or {}, call_labels, top
    )
    return separate, duplicated


def _reach(cost: Node, targets: Sequence[Node]) -> dict[Node, int]:
    """For every node the cost depends on, the bitset of calls whose wrt it lies downstream of.

    The same rule as ``grad``'s "on path": a target, or a floating-point consumer of one.
    """
    target_bits: dict[Node, int] = {}
    for k, target in enumerate(targets):
        target_bits[target] = target_bits.get(target, 0) | (1 << k)
    reach: dict[Node, int] = {}
    for node in topological_order([cost]):
        bits = target_bits.get(node, 0)
        if node.dtype.kind == "f":
            for source in node.inputs:
                bits |= reach.get(source, 0)
        reach[node] = bits
    return reach


def _groups(entry: RuleRecord, reach: dict[Node, int]) -> list[tuple[int, list[Node]]]:
    """Calls that ran ``entry.node``'s turn, grouped by the inputs they wanted, with what each group built."""
    summation = made_since([entry.total], entry.sum_start)
    per_input = [made_since([adjoint], entry.rule_start) for adjoint in entry.adjoints]
    groups: list[tuple[int, tuple[int, ...]]] = [(reach[entry.node], ())]
    for position, source in enumerate(entry.node.inputs):
        if entry.adjoints[position] is None:
            continue
        wants = reach.get(source, 0)
        split = []
        for bits, wanted in groups:
            if bits & wants:
                split.append((bits & wants, wanted + (position,)))
            if bits & ~wants:
                split.append((bits & ~wants, wanted))
        groups = split
    result = []
    for bits, wanted in groups:
        nodes = dict.fromkeys(summation)
        for position in wanted:
            nodes.update(dict.fromkeys(per_input[position]))
        result.append((bits, list(nodes)))
    return result


def _lowest(bits: int) -> int:
    return (bits & -bits).bit_length() - 1


def _calls_in(bits: int) -> list[int]:
    calls = []
    while bits:
        low = bits & -bits
        calls.append(low.bit_length() - 1)
        bits ^= low
    return calls


def _duplicated(
    occurrences: dict[Node, list[_Occurrence]],
    forward_members: dict[Node, list[Node]],
    built_by_bits: dict[int, list[int]],
    turn_calls: dict[Node, int],
    record: list[RuleRecord],
    names: dict[Node, str],
    sources: dict[Node, Source],
    call_labels: Sequence[str],
    top: int,
) -> dict:
    """Totals and breakdowns of the copies, as :func:`graphaudit.analysis.audit.duplicated_work` reports them."""
    merged_nodes = list(dict.fromkeys([*forward_members, *occurrences]))
    by_op: dict[str, dict] = {}
    canonical_by_call: dict[int, list[int]] = {}  # call -> [nodes, flops, matmul] first built there
    canonical_at_turn: dict[int, list[int]] = {}  # turn -> [nodes, flops] first built there
    forward_duplicates = [0, 0, 0]
    rows = []
    totals = {"nodes": 0, "flops": 0, "matmul_flops": 0, "bytes": 0}
    for merged in merged_nodes:
        members = forward_members.get(merged, [])
        backward = occurrences.get(merged, [])
        copies = len(members) + sum(o.bits.bit_count() for o in backward)
        sample = members[0] if members else backward[0].node
        flops = node_flops(sample)
        matmul = node_matmul_flops(sample)
        if members:
            forward_duplicates[0] += len(members) - 1
            forward_duplicates[1] += (len(members) - 1) * flops
            forward_duplicates[2] += (len(members) - 1) * matmul
        else:
            first = min(backward, key=lambda o: (_lowest(o.bits), o.turn, o.node.id))
            entry = canonical_by_call.setdefault(_lowest(first.bits), [0, 0, 0])
            entry[0] += 1
            entry[1] += flops
            entry[2] += matmul
            entry = canonical_at_turn.setdefault(first.turn, [0, 0])
            entry[0] += 1
            entry[1] += flops
        if copies < 2:
            continue
        extra = copies - 1
        totals["nodes"] += extra
        totals["flops"] += extra * flops
        totals["matmul_flops"] += extra * matmul
        totals["bytes"] += extra * node_bytes(sample)
        op = by_op.setdefault(sample.op, {"nodes": 0, "flops": 0, "bytes": 0})
        op["nodes"] += extra
        op["flops"] += extra * flops
        op["bytes"] += extra * node_bytes(sample)
        rows.append((members[0] if members else first.node, copies, members, backward))

    return {
        **totals,
        "bounds": {},  # graphaudit's own ops (the only ones counted) cost exactly what they run
        "by_op": dict(sorted(by_op.items(), key=lambda kv: (-kv[1]["flops"], -kv[1]["nodes"], kv[0]))),
        "by_call": _by_call(built_by_bits, canonical_by_call, forward_duplicates, call_labels),
        "by_forward_node": _by_forward_node(occurrences, canonical_at_turn, turn_calls, record, names, sources),
        "top": _top(rows, names, sources, call_labels, top),
    }


def _by_call(built_by_bits, canonical_by_call, forward_duplicates, call_labels) -> dict[str, dict]:
    """Per call: what it built minus what it built first. Bitsets become rows of a 0/1 matrix."""
    count = len(call_labels)
    bitsets = list(built_by_bits)
    width = (count + 7) // 8
    matrix = np.unpackbits(
        np.frombuffer(b"".join(b.to_bytes(width, "little") for b in bitsets), dtype=np.uint8).reshape(-1, width),
        axis=1, bitorder="little",
    )[:, :count].astype(np.int64)
    built = np.asarray([built_by_bits[b] for b in bitsets], dtype=np.int64).reshape(-1, 3).T @ matrix
    result: dict[str, dict] = {}
    if forward_duplicates[0]:
        result["forward"] = dict(zip(("nodes", "flops", "matmul_flops"), forward_duplicates))
    for call, label in enumerate(call_labels):
        canonical = canonical_by_call.get(call, [0, 0, 0])
        nodes, flops, matmul = (int(built[i, call]) - canonical[i] for i in range(3))
        if nodes:
            key, suffix = label, 2
            while key in result:
                key, suffix = f"{label} #{suffix}", suffix + 1
            result[key] = {"nodes": nodes, "flops": flops, "matmul_flops": matmul}
    return result


def _by_forward_node(occurrences, canonical_at_turn, turn_calls, record, names, sources) -> dict[str, dict]:
    """Per forward node whose turn built copies: how many calls ran it, and the copies' cost."""
    built: dict[int, list[int]] = {}
    for backward in occurrences.values():
        for occurrence in backward:
            entry = built.setdefault(occurrence.turn, [0, 0])
            calls = occurrence.bits.bit_count()
            entry[0] += calls
            entry[1] += calls * node_flops(occurrence.node)
    rows = []
    for turn, (nodes, flops) in built.items():
        canonical = canonical_at_turn.get(turn, [0, 0])
        nodes, flops = nodes - canonical[0], flops - canonical[1]
        if nodes == 0:
            continue
        origin = record[turn].node
        calls = turn_calls[origin].bit_count()
        rows.append((-flops, -nodes, name_of(origin, names), {
            "op": origin.op, "shape": list(origin.shape), "calls": calls, "rebuilt": calls - 1,
            "nodes": nodes, "flops": flops, "source": source_data(origin, sources),
        }))
    return {name: row for *_, name, row in sorted(rows, key=lambda r: r[:3])}


def _top(rows, names, sources, call_labels, top) -> list[dict]:
    """The costliest duplicated subexpressions; call lists are spelled out only for the rows shown."""
    if top <= 0:
        return []
    candidates = []
    for first, copies, members, backward in rows:
        partial = (-node_flops(first) * (copies - 1), -copies, first.op)
        candidates.append((partial, first, copies, members, backward))

    def row(first: Node, copies: int, members: list[Node], backward: list[_Occurrence]) -> dict:
        calls = sorted(k for o in backward for k in _calls_in(o.bits))
        labels = ["forward"] * len(members) + [call_labels[k] for k in calls]
        return top_row(first, copies, labels, names, sources)

    return select_top(candidates, row, top)
