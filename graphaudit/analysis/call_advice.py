"""Two of the user's grad calls on the same output: one call over both inputs does their shared work once.

A front-end that sees the user's own grad calls (``audit_function``: an interatomic
potential's forces and stress, a PINN's u_x and u_t) gives each call a ``differentiates``
key: equal keys, equal differentiated outputs. Calls with one key are halves of one call
(``torch.autograd.grad(energy, [positions, cell])``): what they both build, a joint call
builds once. The saving is counted on the merged graph: every class of equal nodes built by
k of the group's calls costs k - 1 copies too many.
"""

from __future__ import annotations

from typing import Any

from graphaudit.analysis.cost import node_flops
from graphaudit.core.describe import si


def joint_call_advice(report: Any) -> list[dict]:
    """One advice entry (:class:`graphaudit.analysis.schema.Advice`) per group of two or more calls
    with the same ``differentiates`` key whose backward passes repeat work; in order of their first call."""
    if report.kind != "graph":
        return []
    result = report.merges[report.audited_form]
    groups: dict[Any, list] = {}
    for node in result.source:
        key = getattr(node.call, "differentiates", None)
        if key and node.call not in groups.setdefault(key, []):
            groups[key].append(node.call)
    groups = {key: calls for key, calls in groups.items() if len(calls) > 1}
    if not groups:
        return []
    # A front-end whose calls trace their own forward pass (JAX) lists those nodes in each call's ``traced``:
    # a joint call traces them once too.
    traced_by = {id(node): call for calls in groups.values() for call in calls for node in getattr(call, "traced", ())}
    builders: dict[int, set] = {}  # class (canonical position) -> the group's calls that built a copy of it
    for position, node in enumerate(result.source):
        builder = node.call if getattr(node.call, "differentiates", None) in groups else traced_by.get(id(node))
        if not result.leaf[position] and builder is not None:
            builders.setdefault(int(result.canonical[position]), set()).add(builder)
    entries = []
    for calls in sorted(groups.values(), key=lambda calls: min(c.index for c in calls)):
        calls.sort(key=lambda c: c.index)
        members = set(calls)
        nodes = flops = 0
        for canonical, built_by in builders.items():
            repeats = len(built_by & members) - 1
            if repeats > 0:
                nodes += repeats
                flops += repeats * node_flops(result.source[canonical])
        if not nodes:
            continue
        lines = ", ".join(getattr(c, "where", c.label) for c in calls)
        kind = getattr(calls[0], "kind", "grad")
        which = "both calls" if len(calls) == 2 else f"all {len(calls)} calls"
        entries.append({
            "what": f"{len(calls)} grad calls differentiate the same output ({lines}): they "
                    f"repeat {nodes} nodes and {si(flops, 'FLOP')}",
            "rewrite": f"one `{kind}` over the inputs of {which} ({lines}) instead of one call each",
            "saves_flops": flops,
            "saves_nodes": nodes,
            "where": list({(c.source.file, c.source.line): c.source.to_dict()
                           for c in calls if getattr(c, "source", None) is not None}.values()),
        })
    return entries
