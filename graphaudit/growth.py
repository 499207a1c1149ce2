"""How the duplicated work grows with depth: audits at several depths, fitted exponents, a log-log plot.

One grad call per parameter rebuilds the backward pass above each parameter, so on a chain
of ``L`` layers the separate form grows like ``L**2`` while the joint form grows like ``L``.
:func:`growth` audits a model at each depth (counting the separate form instead of building
it once it gets large: the same numbers, in the joint form's time), fits ``count ~ depth**k``
by least squares on log-log axes for every form, and :meth:`Growth.plot` draws nodes and
FLOPs against depth with the fitted ``k`` in the legend (matplotlib, an optional extra).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from graphaudit import progress
from graphaudit.audit import audit
from graphaudit.graph import Node, topological_order
from graphaudit.report import Report

FORMS = {"separate": "separate (one grad call per parameter)", "joint": "joint (one grad call)",
         "separate_merged": "merged separate form"}
STYLES = {"separate": ("o", "-"), "joint": ("s", "-"), "separate_merged": ("x", "--")}  # merged often equals joint
METRICS = {"nodes": "nodes", "flops": "FLOPs"}
COUNT_ABOVE = 200_000  # estimated separate nodes past which the separate form is counted, not built


@dataclass
class Growth:
    """Counts per form and metric at each depth, and the fitted exponent of each."""

    depths: list[int]
    counts: dict[str, dict[str, list[int]]]  # form -> metric -> one count per depth
    counted: list[bool]  # per depth: whether the separate form was counted (not built)

    @property
    def exponents(self) -> dict[str, dict[str, float]]:
        """``k`` in ``count ~ depth**k``: the least-squares slope of log(count) on log(depth)."""
        return {form: {metric: fit_exponent(self.depths, values) for metric, values in by_metric.items()}
                for form, by_metric in self.counts.items()}

    def to_dict(self) -> dict:
        return {"depths": self.depths, "counts": self.counts, "counted": self.counted, "exponents": self.exponents}

    def to_text(self) -> str:
        lines = [f"{'depth':>6}" + "".join(f"{f'{form} {metric}':>26}" for form in FORMS for metric in METRICS)]
        for row, depth in enumerate(self.depths):
            lines.append(f"{depth:>6}" + "".join(f"{self.counts[form][metric][row]:>26}" for form in FORMS
                                                   for metric in METRICS))
        lines.append("fitted exponents (count ~ depth^k): " + "; ".join(
            f"{form} nodes {k['nodes']:.2f}, FLOPs {k['flops']:.2f}" for form, k in self.exponents.items()))
        return "\n".join(lines)

    def plot(self, path: str | Path, title: str = "") -> str:
        """Nodes and FLOPs of each form against depth, log-log, to a PNG or SVG by suffix; returns the path."""
        try:
            from matplotlib.figure import Figure
        except ImportError:
            raise ImportError("the growth plot needs matplotlib: pip install 'graphaudit[plots]'") from None
        figure = Figure(figsize=(10, 4.2), layout="constrained")
        for axes, (metric, noun) in zip(figure.subplots(1, 2), METRICS.items()):
            for form, label in FORMS.items():
                k = self.exponents[form][metric]
                marker, line = STYLES[form]
                axes.loglog(self.depths, self.counts[form][metric], marker=marker, linestyle=line,
                            label=f"{label}: ~ depth^{k:.2f}")
            axes.set_xticks(self.depths, [str(d) for d in self.depths])
            axes.minorticks_off()
            axes.set_xlabel("depth (layers)")
            axes.set_ylabel(noun)
            axes.set_title(f"{noun} vs depth")
            axes.grid(True, which="both", alpha=0.3)
            axes.legend(fontsize=8)
        if title:
            figure.suptitle(title)
        metadata = {"Date": None} if str(path).lower().endswith(".svg") else {}  # same plot, same bytes
        figure.savefig(path, dpi=110, metadata=metadata)
        return str(path)


def fit_exponent(depths: Sequence[int], values: Sequence[int]) -> float:
    """The slope of ``log(values)`` against ``log(depths)`` (least squares)."""
    slope, _ = np.polyfit(np.log(np.asarray(depths, float)), np.log(np.maximum(np.asarray(values, float), 1)), 1)
    return float(slope)


def growth(build: Callable[[int], tuple[Node, Sequence[Node]] | Report], depths: Sequence[int], *,
           count_above: int = COUNT_ABOVE) -> Growth:
    """Audit ``build(depth)`` at each depth: ``build`` returns ``(cost, wrt)`` or a finished Report.

    The separate form is counted (``audit(..., materialize=False)``) when the forward graph's
    size times the number of parameters passes ``count_above``.
    """
    depths = sorted({int(d) for d in depths})
    if len(depths) < 2 or depths[0] < 1:
        raise ValueError(f"growth: need at least two positive depths to fit an exponent, got {list(depths)}")
    counts = {form: {metric: [] for metric in METRICS} for form in FORMS}
    counted = []
    for done, depth in enumerate(depths, start=1):
        built = build(depth)
        if isinstance(built, Report):
            report = built
        else:
            cost, wrt = built
            wrt = [wrt] if isinstance(wrt, Node) else list(wrt)
            large = len(topological_order([cost])) * len(wrt) > count_above
            report = audit(cost, wrt, materialize=not large)
        counted.append(not report.materialized)
        for form in FORMS:
            cost_of = report.forms[form].cost
            counts[form]["nodes"].append(cost_of.nodes)
            counts[form]["flops"].append(cost_of.flops)
        progress.step("depths", done, len(depths))
    return Growth(depths, counts, counted)
