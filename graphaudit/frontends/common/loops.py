"""Loops as every front-end reports them: how each was treated, and the budget for unrolling."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# How a front-end treated a loop (JAX's scans, PyTensor's Scans), in the words every report uses.
UNROLLED = "unrolled"
WHOLE = "whole, body x trip count"
DEFAULT_LOOP_BUDGET = 1_000_000  # nodes the unrolled forms may hold, all forms together


def loop_heading(loops: Mapping[str, Any], noun: str) -> list[str]:
    """The first lines of a section's ``loops:`` block: were the ``noun`` (scans) unrolled, and why."""
    if loops["unrolled"]:
        how = (f"{noun} unrolled for the analysis, step by step ({loops['unrolled_nodes']} nodes, within the budget "
               f"of {loops['budget']})")
    else:
        how = (f"{noun} imported whole, bodies compared by digest (unrolled they would make {loops['unrolled_nodes']} "
               f"nodes, over the budget of {loops['budget']})")
    return ["", f"loops: {how}"]
