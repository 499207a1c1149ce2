"""A report's view as flat per-node columns: what the HTML report and the Model Explorer export show.

Both need, for every node of the *separate* view (the separate form as built) or the
*merged* view (the merged graph): a name a user can search for, its op, shape and FLOPs,
its *copies* (how many nodes of the separate form are equal to it), its *wasted* FLOPs
(what the copies beyond the first cost), the grad calls that built a copy, the user's line
behind it (when known), and its place
in the group tree (:mod:`graphaudit.views.groups`). Computing them once, here, keeps the two
exporters to the presentation. Constants are left out: they are leaves, never counted,
and every call makes its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graphaudit.analysis.cost import node_flops
from graphaudit.core.describe import adjoint_target, describe, leaf_text, shape_text
from graphaudit.core.graph import GradCall, Node, topological_order
from graphaudit.core.source import Source, source_of
from graphaudit.views.groups import Group, group_tree, source_tree

NAME_LENGTH = 80
VIEWS = ("separate", "merged")


@dataclass
class ViewData:
    """The columns of one view; row ``i`` of every list is ``nodes[i]``."""

    view: str
    title: str
    nodes: list[Node]
    names: list[str]
    shapes: list[str]
    flops: list[int]
    copies: list[int]
    wasted: list[int]
    calls: list[tuple[int, ...]]  # positions in ``call_labels``
    sources: list[Source | None]  # the user's line behind each node (a backward node: its origin's)
    duplicate: list[bool]  # separate view: equal to an earlier node (what merging removes)
    call_labels: list[str]
    tree: Group  # by the model's hierarchy (grad call, then scope)
    source_tree: Group  # by the user's line (grad call, then file:line)


def view_data(report, view: str) -> ViewData:
    """The ``"separate"`` or ``"merged"`` view of a (materialised) report as columns."""
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}: choose one of {', '.join(VIEWS)}")
    if not report.materialized:
        raise ValueError("this report was counted (materialize=False): there is no separate graph to show; "
                         "audit with materialize=True")
    result = report.merges[report.audited_form]
    source = result.source
    canonical = result.canonical.tolist()
    calls: dict[GradCall, int] = {}
    for node in source:
        if node.call is not None and node.call not in calls:
            calls[node.call] = len(calls)
    built_by: dict[int, set[int]] = {}  # canonical position -> calls that built a copy
    for position, node in enumerate(source):
        if node.call is not None:
            built_by.setdefault(canonical[position], set()).add(calls[node.call])
    ops = ~result.leaf
    sizes = np.bincount(result.canonical[ops], minlength=len(source)).tolist()

    if view == "separate":
        keep = [p for p, node in enumerate(source) if node.op != "constant"]
        nodes = [source[p] for p in keep]
        stands_for = nodes
        copies = [sizes[canonical[p]] if ops[p] else 1 for p in keep]
        duplicate = [bool(ops[p]) and canonical[p] != p for p in keep]
        call_sets = [built_by.get(canonical[p], ()) for p in keep]
        top = _separate_top
        title = f"separate form: {len(report.wrt)} grad calls, one per parameter"
    else:
        first: dict[Node, int] = {}  # merged node -> position of its first original
        for position, node in enumerate(source):
            first.setdefault(result.mapping[node], canonical[position])
        nodes = [n for n in topological_order(result.outputs) if n.op != "constant"]
        stands_for = [source[first[n]] for n in nodes]
        copies = [result.copies(n) if not n.is_leaf else 1 for n in nodes]
        duplicate = [False] * len(nodes)
        call_sets = [built_by.get(first[n], ()) for n in nodes]
        top = _merged_top
        title = "merged graph: each node once; copies = how many nodes of the separate form it stands for"
    flops = [node_flops(n) for n in nodes]
    sources = [source_of(n, report.sources) for n in stands_for]
    return ViewData(
        view=view,
        title=title,
        nodes=nodes,
        names=[_name(n, report.names) for n in stands_for],
        shapes=[shape_text(n.shape) for n in nodes],
        flops=flops,
        copies=copies,
        wasted=[f if d else 0 for f, d in zip(flops, duplicate)] if view == "separate"
        else [f * (c - 1) for f, c in zip(flops, copies)],
        calls=[tuple(sorted(s)) for s in call_sets],
        sources=sources,
        duplicate=duplicate,
        call_labels=[call.label for call in calls],
        tree=group_tree(nodes, top),
        source_tree=source_tree(nodes, top, [None if s is None else (s.location, s.code) for s in sources]),
    )


def _separate_top(node: Node) -> tuple[str, str]:
    return ("forward", "forward") if node.call is None else (node.call.label, "call")


def _merged_top(node: Node) -> tuple[str, str]:
    return ("forward", "forward") if node.call is None else ("backward", "call")


def _name(node: Node, names: dict[Node, str]) -> str:
    """What the user searches for: ``w3``, ``sigmoid_2``, ``d(sigmoid_2)``, ``matmul(d(add_3), w3)``."""
    if node.is_leaf:
        return leaf_text(node)
    if node in names:
        return names[node]
    target = adjoint_target(node)
    text = f"d({names.get(target, target.label)})" if target is not None else describe(node, names, depth=1)
    return text if len(text) <= NAME_LENGTH else text[: NAME_LENGTH - 1] + "…"
