"""Duplicated work: what merging removed from a graph, in totals and broken down.

The breakdowns say where the copies came from: by op, by the grad call that built
them (the first call to build a node owns it; later copies are the waste), by the
forward node whose vjp rule built them, and the costliest duplicated subexpressions.
"""

from __future__ import annotations

from collections.abc import Callable

from graphaudit.cost import is_matmul, node_bytes, node_flops
from graphaudit.describe import describe, name_of, operand_text
from graphaudit.graph import Node
from graphaudit.merge import MergeResult

TOP = 10  # how many duplicated subexpressions a report lists


def duplicated_work(order: list[Node], result: MergeResult, names: dict[Node, str], *, top: int = TOP) -> dict:
    """What merging removed from the graph ``order``: totals, by op, by call, by forward node, top list.

    ``order`` is the topological order of the graph that was merged into ``result``.
    """
    duplicates = result.duplicates
    dups = [node for node in order if node in duplicates and not node.is_leaf]
    totals = {"nodes": 0, "flops": 0, "matmul_flops": 0, "bytes": 0}
    by_op: dict[str, dict] = {}
    by_call: dict[str, dict] = {}
    call_keys: dict[int, str] = {}
    flops_of: dict[Node, int] = {}
    for node in dups:
        flops = flops_of[node] = node_flops(node)
        written = node_bytes(node)
        matmul = flops if is_matmul(node) else 0
        totals["nodes"] += 1
        totals["flops"] += flops
        totals["matmul_flops"] += matmul
        totals["bytes"] += written
        entry = by_op.setdefault(node.op, {"nodes": 0, "flops": 0, "bytes": 0})
        entry["nodes"] += 1
        entry["flops"] += flops
        entry["bytes"] += written
        entry = by_call.setdefault(_call_key(node, call_keys), {"nodes": 0, "flops": 0, "matmul_flops": 0})
        entry["nodes"] += 1
        entry["flops"] += flops
        entry["matmul_flops"] += matmul

    return {
        **totals,
        "by_op": dict(sorted(by_op.items(), key=lambda kv: (-kv[1]["flops"], -kv[1]["nodes"], kv[0]))),
        "by_call": by_call,
        "by_forward_node": _by_forward_node(order, flops_of, names),
        "top": _top(order, dups, result, names, top),
    }


def _call_key(node: Node, call_keys: dict[int, str]) -> str:
    """A readable key for the grad call that built ``node`` ("forward" for forward nodes)."""
    if node.call is None:
        return "forward"
    key = call_keys.get(node.call.index)
    if key is None:
        key = node.call.label
        taken = set(call_keys.values())
        suffix = 2
        while key in taken:
            key, suffix = f"{node.call.label} #{suffix}", suffix + 1
        call_keys[node.call.index] = key
    return key


def _by_forward_node(order: list[Node], flops_of: dict[Node, int], names: dict[Node, str]) -> dict[str, dict]:
    """For each forward node whose vjp rule ran in several calls: how often, and the cost of the copies.

    ``flops_of`` holds the FLOPs of every duplicate (and only of duplicates).
    """
    calls: dict[Node, set[int]] = {}
    cost: dict[Node, list[int]] = {}
    for node in order:
        if node.origin is None or node.is_leaf:
            continue
        calls.setdefault(node.origin, set()).add(node.call.index)
        flops = flops_of.get(node)
        if flops is not None:
            entry = cost.setdefault(node.origin, [0, 0])
            entry[0] += 1
            entry[1] += flops
    rows = []
    for origin, (nodes, flops) in cost.items():
        rows.append((-flops, -nodes, name_of(origin, names), {
            "op": origin.op,
            "shape": list(origin.shape),
            "calls": len(calls[origin]),
            "rebuilt": len(calls[origin]) - 1,
            "nodes": nodes,
            "flops": flops,
        }))
    return {name: row for *_, name, row in sorted(rows, key=lambda r: r[:3])}  # names are unique


def _top(order: list[Node], dups: list[Node], result: MergeResult, names: dict[Node, str], top: int) -> list[dict]:
    """The duplicated subexpressions that waste most FLOPs, one row per canonical node."""
    if top <= 0:
        return []
    groups: dict[Node, list[Node]] = {}
    for node in dups:
        groups.setdefault(result.duplicates[node], []).append(node)
    first_of: dict[Node, Node] = {}
    for node in order:  # the first copy, as the user built it
        merged = result.mapping[node]
        if merged in groups and merged not in first_of and node not in result.duplicates:
            first_of[merged] = node
    candidates = []
    for merged, copies in groups.items():
        first = first_of.get(merged, copies[0])
        partial = (-node_flops(first) * len(copies), -(len(copies) + 1), first.op)
        candidates.append((partial, first, copies))

    def row(first: Node, copies: list[Node]) -> dict:
        labels = [c.call.label if c.call is not None else "forward" for c in [first, *copies]]
        return top_row(first, len(copies) + 1, labels, names)

    return select_top(candidates, row, top)


def select_top(candidates: list[tuple], row: Callable[..., dict], top: int) -> list[dict]:
    """The ``top`` rows in :func:`top_order`, building (describing) only the rows that can make it.

    ``candidates`` are ``(partial key, *arguments of row)``; the partial key is the first
    three fields of :func:`top_order`, which decide the order unless they tie.
    """
    candidates.sort(key=lambda c: c[0])
    cut = candidates[:top]
    for candidate in candidates[top:]:  # rows tied with the last one shown are ordered by content
        if candidate[0] != cut[-1][0]:
            break
        cut.append(candidate)
    return sorted((row(*arguments) for _, *arguments in cut), key=top_order)[:top]


def top_row(first: Node, copies: int, calls: list[str], names: dict[Node, str]) -> dict:
    """One row of the top duplicated subexpressions: ``first`` built ``copies`` times by ``calls``."""
    return {
        "expression": describe(first, names),
        "shapes": operand_text(first),
        "op": first.op,
        "copies": copies,
        "wasted_flops": node_flops(first) * (copies - 1),
        "calls": calls,
    }


def top_order(row: dict) -> tuple:
    """Costliest first; ties in an order that depends on content only."""
    return (-row["wasted_flops"], -row["copies"], row["op"], row["expression"], row["shapes"], row["calls"])
