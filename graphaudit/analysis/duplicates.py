"""Duplicated work: what merging removed from a graph, in totals and broken down.

The breakdowns say where the copies came from: by op, by the grad call that built
them (the first call to build a node owns it; later copies are the waste), by the
forward node whose vjp rule built them, and the costliest duplicated subexpressions.
They are computed on positions in the merged graph's source (numpy group sums), with
each copy costing what its class costs (:class:`graphaudit.analysis.cost.MergedNodeCosts`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from graphaudit.analysis.cost import MergedNodeCosts, node_flops
from graphaudit.core.describe import describe, name_of, operand_text
from graphaudit.core.graph import Node
from graphaudit.core.source import Source, source_of
from graphaudit.analysis.merge import MergeResult

TOP = 10  # how many duplicated subexpressions a report lists


def duplicated_work(result: MergeResult, names: dict[Node, str], *, sources: dict[Node, Source] | None = None,
                    costs: MergedNodeCosts | None = None, top: int = TOP) -> dict:
    """What merging removed from the graph merged into ``result``: totals, by op, by call, by forward node, top list.

    ``sources`` gives the user's line of nodes (:func:`graphaudit.core.source.source_of`): each
    forward-node and top row says its own, or None. ``costs`` (of the same result) saves
    costing the classes again. Works on positions:
    each duplicate's cost is its class's, and breakdowns are sums over groups of positions.
    """
    costs = costs if costs is not None else MergedNodeCosts(result)
    sources = sources if sources is not None else {}
    source = result.source
    dups = np.flatnonzero((result.canonical != np.arange(len(source))) & ~result.leaf)
    classes = costs.index[result.canonical[dups]]
    copies = np.bincount(classes, minlength=len(costs.first))
    totals = costs.cost(copies.tolist(), [0] * len(costs.first))
    by_op: dict[str, dict] = {}
    for k in np.flatnonzero(copies).tolist():
        entry = by_op.setdefault(costs.ops[k], {"nodes": 0, "flops": 0, "bytes": 0})
        entry["nodes"] += int(copies[k])
        entry["flops"] += costs.flops[k] * int(copies[k])
        entry["bytes"] += costs.bytes[k] * int(copies[k])
    # each duplicate's FLOPs: int64 sums are exact while the total fits; past that, Python ints
    flops = np.array(costs.flops, np.int64 if totals.flops < 2**63 else object)[classes]
    matmul = np.array(costs.matmul, flops.dtype)[classes]  # a class's matmul FLOPs never exceed its FLOPs
    call = costs.call
    origin = np.fromiter([-1 if (o := node.origin) is None else o.id for node in source], np.int64, len(source))
    return {
        "nodes": totals.nodes,
        "flops": totals.flops,
        "matmul_flops": totals.matmul_flops,
        "bytes": totals.bytes,
        "bounds": dict(totals.bounds),
        "by_op": dict(sorted(by_op.items(), key=lambda kv: (-kv[1]["flops"], -kv[1]["nodes"], kv[0]))),
        "by_call": _by_call(source, dups, call[dups], flops, matmul),
        "by_forward_node": _by_forward_node(result, dups, call, origin, flops, names, sources),
        "top": _top(result, costs, dups, classes, copies, names, sources, top),
    }


def _group_sums(groups: np.ndarray, *values: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """The distinct ``groups`` (sorted), the first index of each, and per group the count and the sums of ``values``."""
    order = np.argsort(groups, kind="stable")
    keys, starts = _runs(groups[order])
    counts = np.diff(np.append(starts, len(groups)))
    sums = [np.add.reduceat(v[order], starts) if len(v) else v for v in values]
    return keys, order[starts], [counts, *sums]


def _runs(ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of a sorted array and where each run of equal values starts."""
    if not len(ordered):
        return ordered, np.zeros(0, np.int64)
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    return ordered[starts], starts


def _distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values, sorted (a plain sort: faster here than np.unique's hashing)."""
    return _runs(np.sort(values))[0]


def _by_call(source: list[Node], dups: np.ndarray, call: np.ndarray, flops: np.ndarray,
             matmul: np.ndarray) -> dict[str, dict]:
    """Per grad call (in order of its first duplicate), the copies it built of work already built."""
    _, first, (nodes, flop_sums, matmul_sums) = _group_sums(call, flops, matmul)
    by_call: dict[str, dict] = {}
    call_keys: dict[int, str] = {}
    for g in np.argsort(first, kind="stable").tolist():
        by_call[_call_key(source[dups[first[g]]].call, call_keys)] = {
            "nodes": int(nodes[g]), "flops": int(flop_sums[g]), "matmul_flops": int(matmul_sums[g])}
    return by_call


def _call_key(call, call_keys: dict[int, str]) -> str:
    """A readable key for a grad call ("forward" for forward nodes); the same label twice gets a suffix."""
    if call is None:
        return "forward"
    key = call_keys.get(call.index)
    if key is None:
        key = call.label
        taken = set(call_keys.values())
        suffix = 2
        while key in taken:
            key, suffix = f"{call.label} #{suffix}", suffix + 1
        call_keys[call.index] = key
    return key


def _by_forward_node(result: MergeResult, dups: np.ndarray, call: np.ndarray, origin: np.ndarray,
                     flops: np.ndarray, names: dict[Node, str], sources: dict[Node, Source]) -> dict[str, dict]:
    """For each forward node whose vjp rule ran in several calls: how often, and the cost of the copies.

    ``call`` and ``origin`` hold each node's grad call index and its origin's id (-1: none).
    """
    built = (origin >= 0) & ~result.leaf
    if not built.any():
        return {}
    # how many distinct calls ran each origin's rule: count distinct (origin, call) pairs
    width = int(call[built].max()) + 1
    pairs = _distinct(origin[built] * width + call[built])
    origins, starts = _runs(pairs // width)
    calls_per_origin = np.diff(np.append(starts, len(pairs)))
    dup_origin = origin[dups]
    keep = dup_origin >= 0
    kept = dups[keep]
    keys, first, (nodes, flop_sums) = _group_sums(dup_origin[keep], flops[keep])
    rows = []
    for g, key in enumerate(keys.tolist()):
        node = result.source[int(kept[first[g]])].origin
        calls = int(calls_per_origin[np.searchsorted(origins, key)])
        rows.append((-int(flop_sums[g]), -int(nodes[g]), name_of(node, names), {
            "op": node.op,
            "shape": list(node.shape),
            "calls": calls,
            "rebuilt": calls - 1,
            "nodes": int(nodes[g]),
            "flops": int(flop_sums[g]),
            "source": source_data(node, sources),
        }))
    return {name: row for *_, name, row in sorted(rows, key=lambda r: r[:3])}  # names are unique


def _top(result: MergeResult, costs: MergedNodeCosts, dups: np.ndarray, classes: np.ndarray, copies: np.ndarray,
         names: dict[Node, str], sources: dict[Node, Source], top: int) -> list[dict]:
    """The duplicated subexpressions that waste most FLOPs, one row per canonical node."""
    if top <= 0:
        return []
    source = result.source
    by_class = dups[np.argsort(classes, kind="stable")]  # duplicates grouped by class, each group in order
    ends = np.cumsum(copies)
    candidates = []
    for k in np.flatnonzero(copies).tolist():
        first = source[int(costs.first[k])]  # the first copy, as the user built it
        count = int(copies[k])
        candidates.append(((-costs.flops[k] * count, -(count + 1), first.op), first, k))

    def row(first: Node, k: int) -> dict:
        copies_of = [source[p] for p in by_class[ends[k] - copies[k]:ends[k]].tolist()]
        labels = [c.call.label if c.call is not None else "forward" for c in [first, *copies_of]]
        return top_row(first, len(copies_of) + 1, labels, names, sources)

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


def top_row(first: Node, copies: int, calls: list[str], names: dict[Node, str], sources: dict[Node, Source]) -> dict:
    """One row of the top duplicated subexpressions: ``first`` built ``copies`` times by ``calls``."""
    return {
        "expression": describe(first, names),
        "shapes": operand_text(first),
        "op": first.op,
        "copies": copies,
        "wasted_flops": node_flops(first) * (copies - 1),
        "calls": calls,
        "source": source_data(first, sources),
    }


def source_data(node: Node, sources: dict[Node, Source]) -> dict | None:
    """A row's ``source``: ``{"file", "line", "code"}`` of the user's line behind ``node``, or None if unknown."""
    found = source_of(node, sources)
    return None if found is None else found.to_dict()


def top_order(row: dict) -> tuple:
    """Costliest first; ties in an order that depends on content only."""
    return (-row["wasted_flops"], -row["copies"], row["op"], row["expression"], row["shapes"], row["calls"])
