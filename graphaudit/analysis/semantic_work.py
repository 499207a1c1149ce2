"""Semantic duplicated work: what a semantic merge removes beyond what value numbering removes.

Both merges of one graph share its nodes (``source``, in the same order). Value numbering
keeps one node per syntactic class; the semantic merge keeps the classes its outputs reach.
The nodes the first keeps and the second does not are the *semantic* duplicated work: each
either computes a value an earlier node computes (it is listed, with that node) or fed only
such nodes. Each costs what it costs itself (:func:`graphaudit.analysis.cost.total_cost`): a semantic
class can hold different ops (``x @ w`` and ``(w.T @ x.T).T``), so class costs would not do.
"""

from __future__ import annotations

import numpy as np

from graphaudit.analysis.cost import node_bytes, node_flops, total_cost
from graphaudit.core.describe import describe, operand_text
from graphaudit.core.graph import Node
from graphaudit.analysis.merge import MergeResult
from graphaudit.analysis.rewrites import ASSOCIATIVITY, RULES

TOP = 10  # how many semantic merges a report lists


def removed_positions(syntactic: MergeResult, semantic: MergeResult) -> np.ndarray:
    """Positions (in the shared ``source``) of the nodes value numbering keeps and the semantic merge does not."""
    return np.setdiff1d(syntactic.kept[~syntactic.leaf[syntactic.kept]], semantic.kept)


def semantic_work(syntactic: MergeResult, semantic: MergeResult, names: dict[Node, str], top: int = TOP) -> dict:
    """The extra duplicated work ``semantic`` finds in the graph ``syntactic`` merged, and how it was found."""
    source = semantic.source
    removed = removed_positions(syntactic, semantic)
    extra = total_cost(source[p] for p in removed.tolist())
    by_op: dict[str, dict] = {}
    for p in removed.tolist():
        entry = by_op.setdefault(source[p].op, {"nodes": 0, "flops": 0, "bytes": 0})
        entry["nodes"] += 1
        entry["flops"] += node_flops(source[p])
        entry["bytes"] += node_bytes(source[p])
    merged = removed[semantic.canonical[removed] != removed]
    rows = sorted((-node_flops(source[p]), p) for p in merged.tolist())[:top]
    stats = semantic.saturation
    rounding = {rule.name for rule in RULES + ASSOCIATIVITY if not rule.exact}
    return {
        "syntactic_classes": syntactic.nodes_after,
        "semantic_nodes": semantic.nodes_after,
        "extra": {"nodes": extra.nodes, "flops": extra.flops, "matmul_flops": extra.matmul_flops,
                  "bytes": extra.bytes, "merged": len(merged),
                  "by_op": dict(sorted(by_op.items(), key=lambda kv: (-kv[1]["flops"], -kv[1]["nodes"], kv[0])))},
        "rules_matched": stats.matches,
        "rounding_rules_matched": sorted(set(stats.matches) & rounding),
        "rounding_merges": stats.rounding_merges,
        "saturation": {
            "iterations": stats.iterations, "stopped": stats.stopped, "enodes": stats.enodes,
            "limits": {"iterations": stats.limits.iterations, "nodes": stats.limits.nodes,
                       "time_limit_s": stats.limits.seconds},
            "associativity": stats.associativity,
            "load_seconds": stats.load_seconds, "saturate_seconds": stats.saturate_seconds,
        },
        "top": [{"expression": describe(source[p], names), "shapes": operand_text(source[p]),
                 "equals": describe(source[int(semantic.canonical[p])], names), "flops": -minus} for minus, p in rows],
    }

