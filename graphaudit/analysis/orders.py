"""Derivatives by order: how the work of nested reverse mode grows, and how much of it merging removes.

A PINN takes u_x, then u_xx, ... by differentiating the last derivative again. Order ``j``
is the program ``y = u(x)``, then ``j`` times ``y = grad(sum(y), x)``. The front-ends trace
each order's program and audit it (:func:`graphaudit.audit_graph`); this module turns the
reports into one row per order: the traced program's ``nodes`` and ``flops``, the merged
program's (``merged_nodes``, ``merged_flops``), and ``growth`` and ``merged_growth``, the
factor of FLOPs over the previous order. What merging removes is repeated work a compiler's
CSE could remove too; what the merged program still grows by is intrinsic to nesting reverse
mode, which Taylor mode (``jax.experimental.jet``) avoids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from graphaudit.core.describe import si

COLUMNS = ("order", "nodes", "flops", "growth", "merged_nodes", "merged_flops", "merged_growth")


def order_rows(reports: Sequence[Any]) -> list[dict]:
    """One row per report (order 1, 2, ...): the original and merged forms' nodes and FLOPs, and their growth."""
    rows: list[dict] = []
    for order, report in enumerate(reports, start=1):
        original, merged = report.forms["original"].cost, report.forms["original_merged"].cost
        previous = rows[-1] if rows else None
        rows.append({
            "order": order,
            "nodes": original.nodes,
            "flops": original.flops,
            "merged_nodes": merged.nodes,
            "merged_flops": merged.flops,
            "growth": _factor(original.flops, previous and previous["flops"]),
            "merged_growth": _factor(merged.flops, previous and previous["merged_flops"]),
        })
    return rows


def _factor(value: int, previous: int | None) -> float | None:
    return value / previous if previous else None


@dataclass(frozen=True)
class Orders:
    """The rows of :func:`order_rows` for one framework's program (``to_dict()["orders"]``), and their table."""

    framework: str  # "PyTorch 2.13.0", "JAX 0.7.0"
    rows: list[dict]

    def to_dict(self) -> dict[str, Any]:
        return {"framework": self.framework, "orders": [dict(row) for row in self.rows]}

    def lines(self) -> list[str]:
        """A row per order; growth is FLOPs over the previous order's."""
        header = (f"{'order':>5}{'nodes':>9}{'FLOPs':>13}{'growth':>9}{'merged nodes':>15}{'merged FLOPs':>15}"
                  f"{'growth':>9}")
        lines = [f"{self.framework}: derivatives by order (y = u(x), then j times y = grad(sum(y), x))",
                 header, "-" * len(header)]
        for row in self.rows:
            lines.append(f"{row['order']:>5}{row['nodes']:>9}{si(row['flops'], 'FLOP'):>13}{_times(row['growth']):>9}"
                         f"{row['merged_nodes']:>15}{si(row['merged_flops'], 'FLOP'):>15}"
                         f"{_times(row['merged_growth']):>9}")
        return lines

    def to_text(self) -> str:
        return "\n".join(self.lines())

    __str__ = to_text


def _times(factor: float | None) -> str:
    return "-" if factor is None else f"{factor:.2f}x"


def parse_orders(text: str) -> int:
    """The highest order of ``1..K`` (or ``K``): orders always start at 1, each built on the one before."""
    first, _, last = text.partition("..")
    try:
        start, end = (int(first), int(last)) if last else (1, int(first))
    except ValueError:
        raise ValueError(f"orders must look like 1..6, got {text!r}") from None
    if start != 1 or end < 1:
        raise ValueError(f"orders must run from 1 up (1..K with K >= 1), got {text!r}")
    return end
