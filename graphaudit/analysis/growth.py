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
from graphaudit.analysis.audit import audit
from graphaudit.core.describe import si
from graphaudit.errors import MissingExtraError
from graphaudit.core.graph import Node, topological_order
from graphaudit.analysis.report import Report

FORMS = {"separate": "separate (one grad call per parameter)", "joint": "joint (one grad call)",
         "separate_merged": "merged separate form"}
STYLES = {"separate": ("o", "-"), "joint": ("s", "-"), "separate_merged": ("x", "--")}  # merged often equals joint
FORM_NAMES = {form: form.replace("_", " ") for form in FORMS}  # as the audit's table names them
FORM_WIDTH = 17  # the audit's first column
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
        """For nodes and for FLOPs, a table like the audit's: a row per form, a column per depth, then ``k``."""
        depths = [f"{depth}*" if counted else str(depth) for depth, counted in zip(self.depths, self.counted)]
        tables = []
        for metric, noun in METRICS.items():
            show = str if metric == "nodes" else (lambda value: si(value, "FLOP"))
            rows = [[FORM_NAMES[form], *map(show, self.counts[form][metric]), f"{self.exponents[form][metric]:.2f}"]
                    for form in FORMS]
            title = f"{noun} at each depth, and k of {noun} ~ depth^k (least squares, log-log)"
            tables.append("\n".join([title, *_table(["form", *depths, "k"], rows)]))
        if any(self.counted):
            tables.append("* the separate form was counted, not built: the same numbers (audit(..., materialize=False))")
        return "\n\n".join(tables)

    def plot(self, path: str | Path, title: str = "") -> str:
        """Nodes and FLOPs of each form against depth, log-log, to a PNG or SVG by suffix; returns the path."""
        figure = matplotlib_figure()(figsize=(10, 4.2), layout="constrained")
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


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """The audit's table layout: the form's name left in the first column, the numbers right-aligned."""
    widths = [max(len(row[i]) for row in [header, *rows]) + 2 for i in range(1, len(header))]
    lines = ["".join([cells[0].ljust(FORM_WIDTH), *(c.rjust(w) for c, w in zip(cells[1:], widths))])
             for cells in [header, *rows]]
    return [lines[0], "-" * len(lines[0]), *lines[1:]]


def matplotlib_figure() -> type:
    """matplotlib's ``Figure``, or a :class:`MissingExtraError` naming the extra that installs it."""
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise MissingExtraError(f"the growth plot needs matplotlib, which is not installed: "
                                f"pip install 'graphaudit[plots]' ({error})") from error
    return Figure


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
        progress.step("depths", done, len(depths), f"depth {depth}")
    return Growth(depths, counts, counted)
