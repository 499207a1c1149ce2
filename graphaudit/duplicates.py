"""Duplicated work: what merging removed from a graph, in totals and broken down.

The breakdowns say where the copies came from: by op, by the grad call that built
them (the first call to build a node owns it; later copies are the waste), by the
forward node whose vjp rule built them, and the costliest duplicated subexpressions.
"""

from __future__ import annotations

from graphaudit.cost import is_matmul, node_bytes, node_flops, total_cost
from graphaudit.describe import describe, name_of, operand_text
from graphaudit.graph import Node
from graphaudit.merge import MergeResult

TOP = 10  # how many duplicated subexpressions a report lists


def duplicated_work(order: list[Node], result: MergeResult, names: dict[Node, str], *, top: int = TOP) -> dict:
    """What merging removed from the graph ``order``: totals, by op, by call, by forward node, top list.

    ``order`` is the topological order of the graph that was merged into ``result``.
    """
    dups = [node for node in order if node in result.duplicates and not node.is_leaf]
    totals = total_cost(dups)

    by_op: dict[str, dict] = {}
    by_call: dict[str, dict] = {}
    call_keys: dict[int, str] = {}
    for node in dups:
        flops = node_flops(node)
        entry = by_op.setdefault(node.op, {"nodes": 0, "flops": 0, "bytes": 0})
        entry["nodes"] += 1
        entry["flops"] += flops
        entry["bytes"] += node_bytes(node)
        key = _call_key(node, call_keys)
        entry = by_call.setdefault(key, {"nodes": 0, "flops": 0, "matmul_flops": 0})
        entry["nodes"] += 1
        entry["flops"] += flops
        entry["matmul_flops"] += flops if is_matmul(node) else 0

    return {
        **{k: v for k, v in totals.to_dict().items() if k in ("nodes", "flops", "matmul_flops", "bytes")},
        "by_op": dict(sorted(by_op.items(), key=lambda kv: (-kv[1]["flops"], -kv[1]["nodes"], kv[0]))),
        "by_call": by_call,
        "by_forward_node": _by_forward_node(order, result, names),
        "top": _top(dups, result, names, top),
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


def _by_forward_node(order: list[Node], result: MergeResult, names: dict[Node, str]) -> dict[str, dict]:
    """For each forward node whose vjp rule ran in several calls: how often, and the cost of the copies."""
    calls: dict[Node, set[int]] = {}
    cost: dict[Node, list[int]] = {}
    for node in order:
        if node.origin is None or node.is_leaf:
            continue
        calls.setdefault(node.origin, set()).add(node.call.index)
        if node in result.duplicates:
            entry = cost.setdefault(node.origin, [0, 0])
            entry[0] += 1
            entry[1] += node_flops(node)
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


def _top(dups: list[Node], result: MergeResult, names: dict[Node, str], top: int) -> list[dict]:
    """The duplicated subexpressions that waste most FLOPs, one row per canonical node."""
    if top <= 0:
        return []
    groups: dict[Node, list[Node]] = {}
    for node in dups:
        groups.setdefault(result.duplicates[node], []).append(node)
    canonical_of: dict[Node, Node] = {}
    for node, merged in result.mapping.items():
        if merged in groups and node not in result.duplicates:
            canonical_of[merged] = node  # the first copy, as the user built it
    rows = []
    for merged, copies in groups.items():
        first = canonical_of.get(merged, copies[0])
        labels = [c.call.label if c.call is not None else "forward" for c in [first, *copies]]
        rows.append(top_row(first, len(copies) + 1, labels, names))
    return sorted(rows, key=top_order)[:top]


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
