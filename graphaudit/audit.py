"""Separate versus joint: build both gradient forms, merge them, cost them, compare.

:func:`audit` answers the seed's question for any scalar cost: it builds the *separate*
form (one :func:`grad` call per ``wrt``) and the *joint* form (one call over all of
them), merges each, and reports the duplicated work, which is what merging removes
from the separate form, broken down by op, by grad call and by forward node.
:func:`audit_graph` does the same analysis for any outputs, with nothing to compare to.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence

import numpy as np

from graphaudit.cost import is_matmul, node_bytes, node_flops, total_cost
from graphaudit.describe import describe, forward_names, name_of, operand_text
from graphaudit.evaluate import evaluate
from graphaudit.grad import grad
from graphaudit.graph import Node, check_nodes, topological_order
from graphaudit.merge import MergeResult, merge
from graphaudit.report import Form, Report

TOP = 10  # how many duplicated subexpressions a report lists


def audit(
    cost: Node,
    wrt: Node | Sequence[Node],
    *,
    measure: bool = False,
    feed: Mapping | None = None,
    commutative: bool = False,
    repeats: int = 5,
) -> Report:
    """Audit one joint ``grad(cost, wrt)`` against one ``grad(cost, w)`` per ``w`` in ``wrt``.

    With ``measure=True`` and a ``feed``, also times (median of ``repeats`` runs) the
    numpy evaluation of the separate, joint and merged forms and checks that the
    separate and joint gradients agree.
    """
    targets = [wrt] if isinstance(wrt, Node) else check_nodes(wrt, "audit: wrt")
    if measure and feed is None:
        raise ValueError("audit: measure=True needs a feed (e.g. make_feed() of a graphaudit.models model)")

    start = time.perf_counter()
    separate = [grad(cost, w) for w in targets]
    separate_seconds = time.perf_counter() - start
    start = time.perf_counter()
    joint = grad(cost, targets)
    joint_seconds = time.perf_counter() - start

    names = forward_names(topological_order([cost]))
    report = compare_forms(
        separate,
        joint,
        wrt=[name_of(t, names) for t in targets],
        names=names,
        build_seconds=(separate_seconds, joint_seconds),
        commutative=commutative,
    )
    if measure:
        report.measured = _measure(report.forms, feed, repeats)
    return report


def compare_forms(
    separate: Sequence[Node],
    joint: Sequence[Node],
    *,
    wrt: Sequence[str],
    names: dict[Node, str] | None = None,
    build_seconds: tuple[float | None, float | None] = (None, None),
    commutative: bool = False,
) -> Report:
    """The comparison behind :func:`audit`, for gradient forms built elsewhere.

    ``separate[i]`` and ``joint[i]`` are the gradients for ``wrt[i]``, built by one call
    per parameter and by one joint call. Framework front-ends import both and call this.
    """
    separate, joint = list(separate), list(joint)
    if len(separate) != len(joint) or len(separate) != len(wrt):
        raise ValueError(f"compare_forms: {len(separate)} separate, {len(joint)} joint outputs for {len(wrt)} wrt")
    separate_merge, separate_merge_seconds = _timed_merge(separate, commutative)
    joint_merge, joint_merge_seconds = _timed_merge(joint, commutative)
    both = merge(separate + joint, commutative=commutative)
    merged_equals_joint = _same_graph(both.outputs[: len(separate)], both.outputs[len(separate):])

    separate_order = topological_order(separate)
    joint_order = topological_order(joint)
    if names is None:
        names = forward_names(topological_order(separate + joint))
    forms = {
        "separate": Form(separate, total_cost(separate_order), build_seconds[0]),
        "joint": Form(joint, total_cost(joint_order), build_seconds[1]),
        "separate_merged": Form(
            separate_merge.outputs, total_cost(separate_merge.order), separate_merge_seconds
        ),
        "joint_merged": Form(
            joint_merge.outputs, total_cost(joint_merge.order), joint_merge_seconds
        ),
    }
    return Report(
        kind="grad",
        wrt=list(wrt),
        forms=forms,
        subject="separate",
        merges={"separate": separate_merge, "joint": joint_merge},
        duplicated=duplicated_work(separate_order, separate_merge, names),
        joint_duplicates=duplicated_work(joint_order, joint_merge, names, top=0),
        merged_equals_joint=merged_equals_joint,
        measured=None,
        names=names,
        commutative=commutative,
    )


def audit_graph(outputs: Node | Sequence[Node], *, commutative: bool = False) -> Report:
    """What merging removes from any graph (forms ``original`` and ``merged``), by op and provenance."""
    outputs = [outputs] if isinstance(outputs, Node) else check_nodes(outputs, "audit_graph: outputs")
    if not outputs:
        raise ValueError("audit_graph: outputs is empty")
    order = topological_order(outputs)
    result, seconds = _timed_merge(outputs, commutative)
    names = forward_names(order)
    forms = {
        "original": Form(outputs, total_cost(order), None),
        "merged": Form(result.outputs, total_cost(result.order), seconds),
    }
    return Report(
        kind="graph",
        wrt=[],
        forms=forms,
        subject="original",
        merges={"original": result},
        duplicated=duplicated_work(order, result, names),
        joint_duplicates=None,
        merged_equals_joint=None,
        measured=None,
        names=names,
        commutative=commutative,
    )


def _timed_merge(outputs: list[Node], commutative: bool) -> tuple[MergeResult, float]:
    start = time.perf_counter()
    result = merge(outputs, commutative=commutative)
    return result, time.perf_counter() - start


def _same_graph(left: list[Node], right: list[Node]) -> bool:
    """Whether two lists of already-merged outputs are the same nodes over the same graph."""
    if any(a is not b for a, b in zip(left, right)) or len(left) != len(right):
        return False
    return {id(n) for n in topological_order(left)} == {id(n) for n in topological_order(right)}


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
    for position, (origin, (nodes, flops)) in enumerate(cost.items()):
        rows.append((-flops, -nodes, position, name_of(origin, names), {
            "op": origin.op,
            "shape": list(origin.shape),
            "calls": len(calls[origin]),
            "rebuilt": len(calls[origin]) - 1,
            "nodes": nodes,
            "flops": flops,
        }))
    return {name: row for *_, name, row in sorted(rows, key=lambda r: r[:3])}


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
    for position, (merged, copies) in enumerate(groups.items()):
        first = canonical_of.get(merged, copies[0])
        wasted = node_flops(first) * len(copies)
        labels = [c.call.label if c.call is not None else "forward" for c in [first, *copies]]
        rows.append((-wasted, position, {
            "expression": describe(first, names),
            "shapes": operand_text(first),
            "op": first.op,
            "copies": len(copies) + 1,
            "wasted_flops": wasted,
            "calls": labels,
        }))
    rows.sort(key=lambda r: r[:2])
    return [row for *_, row in rows[:top]]


def _measure(forms: dict[str, Form], feed: Mapping, repeats: int) -> dict:
    """Median numpy run time of each form, and how far separate and joint gradients differ."""
    if repeats < 1:
        raise ValueError(f"audit: repeats must be >= 1, got {repeats}")
    seconds: dict[str, float] = {}
    values: dict[str, list[np.ndarray]] = {}
    for name in ("separate", "joint", "separate_merged"):
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            values[name] = evaluate(forms[name].outputs, feed)
            runs.append(time.perf_counter() - start)
        seconds[name] = statistics.median(runs)
    difference = max(
        (float(np.max(np.abs(a - b), initial=0.0)) for a, b in zip(values["separate"], values["joint"])), default=0.0
    )
    return {
        "repeats": repeats,
        "separate_seconds": seconds["separate"],
        "joint_seconds": seconds["joint"],
        "separate_merged_seconds": seconds["separate_merged"],
        "separate_over_joint": seconds["separate"] / seconds["joint"],
        "max_abs_difference": difference,
    }
