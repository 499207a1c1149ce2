"""Loops as every front-end reports them: one record per loop met, how it was treated, and one renderer.

A front-end imports a loop (JAX's ``scan``/``cond``/``while``, PyTensor's ``Scan``) either
unrolled, step by step, or whole, one node costing body x trip count. Which one is decided once
per audit, for all forms together, against a budget of nodes (:func:`unrolls`). Each loop
met leaves a :class:`LoopRecord`; :func:`loop_rows` counts them per form for the section's
``loops`` and :func:`loop_lines` renders them, under the figures they affect. The front-ends
keep only their body import.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

DEFAULT_LOOP_BUDGET = 1_000_000  # nodes the unrolled forms may hold, all forms together


class Treatment(enum.StrEnum):
    """How a loop was imported, in the words every report uses; :attr:`bound` says whether the FLOPs
    it adds are an upper or a lower bound (None: a count)."""

    UNROLLED = "unrolled"
    WHOLE = "whole, body x trip count"
    TAKEN_BRANCH = "taken branch (index known at trace time)"
    COSTLIEST_BRANCH = "costliest branch: an upper bound"
    ONE_ITERATION = "one iteration (trip count unknown): a lower bound"
    N_STEPS = "whole, body x n_steps: an upper bound (a while loop)"
    TRUNCATED = "whole, body x trip count (a truncated gradient is not unrolled)"
    SHORTENED = "whole, body x trip count (buffers shortened by a rewrite are not unrolled)"

    @property
    def bound(self) -> str | None:
        return {"COSTLIEST_BRANCH": "upper", "N_STEPS": "upper", "ONE_ITERATION": "lower"}.get(self.name)


# What a report says under its figures when a treatment made them bounds.
BOUND_NOTES = {
    Treatment.COSTLIEST_BRANCH: "upper bounds: conds costed at their costliest branch (matmul FLOPs: the branch "
                                "with the most)",
    Treatment.ONE_ITERATION: "lower bounds: while loops costed for one iteration",
    Treatment.N_STEPS: "upper bounds: while loops costed for n_steps iterations",
}


class LoopRecord(NamedTuple):
    """One loop as imported: ``primitive`` (``scan``, ``cond``, ``while``, ``Scan``), ``length`` (steps, or
    branches; None when unknown), its :class:`Treatment`, the ``body`` digest (equal loops, equal digests),
    and, where the front-end costs the body apart, its op nodes, FLOPs and matmul FLOPs per step."""

    primitive: str
    length: int | None
    treatment: Treatment
    body: str
    body_nodes: int | None = None
    body_flops: int | None = None
    body_matmul_flops: int | None = None


def unrolls(unrolled_nodes: int, budget: int) -> bool:
    """The one unroll decision of an audit: unroll every loop when all the forms unrolled fit the budget."""
    return unrolled_nodes <= budget


def loop_rows(records: Mapping[str, Sequence[LoopRecord]], unrolled: bool, unrolled_nodes: int,
              budget: int) -> dict[str, Any]:
    """A section's ``loops``: whether loops were ``unrolled``, the ``unrolled_nodes`` against the ``budget``,
    and one row per distinct loop, with how often the ``separate`` and ``joint`` forms hold it.

    ``records`` are by where they were met: ``separate``, ``joint``, and ``forward`` (held by both).
    Rows in a fixed order; a row leaves out the body figures its front-end does not cost apart.
    """
    counts: dict[LoopRecord, dict[str, int]] = {}
    for where, met in records.items():
        for record in met:
            seen = counts.setdefault(record, {"separate": 0, "joint": 0})
            for form in (("separate", "joint") if where == "forward" else (where,)):
                seen[form] += 1
    rows = [{**{k: v for k, v in record._asdict().items() if v is not None or k == "length"}, **seen}
            for record, seen in counts.items()]
    rows.sort(key=lambda row: (row["primitive"], row["body"], row["treatment"], row["length"] or 0))
    return {"unrolled": unrolled, "unrolled_nodes": unrolled_nodes, "budget": budget, "rows": rows}


def loop_lines(loops: Mapping[str, Any] | None, noun: str) -> list[str]:
    """A section's ``loops:`` block: were the ``noun`` (scans) unrolled and why, a line per loop, and which
    figures are bounds."""
    if not loops or not loops["rows"]:
        return []
    if loops["unrolled"]:
        how = (f"{noun} unrolled for the analysis, step by step ({loops['unrolled_nodes']} nodes, within the budget "
               f"of {loops['budget']})")
    else:
        how = (f"{noun} imported whole, bodies compared by digest (unrolled they would make {loops['unrolled_nodes']} "
               f"nodes, over the budget of {loops['budget']})")
    lines = ["", f"loops: {how}"]
    for row in loops["rows"]:
        size = "" if row["length"] is None else f"{row['length']} {'branches' if row['primitive'] == 'cond' else 'steps'}"
        body = f"body {row['body'][:8]}"
        if "body_nodes" in row:
            body += (f" ({row['body_nodes']} nodes, {row['body_flops']} FLOPs, {row['body_matmul_flops']} in "
                     "matmuls)")
        lines.append(f"  {row['primitive']:<6}{size:>12}  {body}  {row['treatment']}  "
                     f"(met {row['separate']}x in the separate form, {row['joint']}x in the joint)")
    treatments = {row["treatment"] for row in loops["rows"]}
    lines += [f"  the FLOPs and matmul FLOPs above are {note}" for treatment, note in BOUND_NOTES.items()
              if treatment in treatments]
    return lines
