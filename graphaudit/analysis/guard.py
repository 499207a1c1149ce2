"""The guard: a budget of repeated work, and the lines of the user's code that go over it.

``graphaudit check`` and :func:`graphaudit.testing.assert_duplicated_at_most` read a budget
(:func:`parse_budget`: FLOPs, ``5G``, or a share of the joint backward FLOPs, ``12%``),
compare the report's duplicated FLOPs with it (:func:`check`), and name the lines that
repeat the work (:func:`findings`), one compiler-style line each, so that editors and CI
logs link to them::

    train.py:41: 5.05 GFLOP of backward work repeated by 6 grad calls (9 duplicated nodes; ...)

Each duplicated node counts at its user's line (a backward node at its forward node's:
:func:`graphaudit.core.source.source_of`); work at no known line is one finding without a place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from graphaudit.analysis.advice import backward_share, percent, share_base, share_text
from graphaudit.analysis.cost import node_flops
from graphaudit.core.describe import describe, operand_text, si
from graphaudit.core.source import Source, source_of

_SI = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}
_NUMBER = r"(?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"
_FLOPS = re.compile(rf"{_NUMBER}\s*(?P<prefix>[kKMGTP]?)\s*(?:FLOPs?)?")
_SHARE = re.compile(rf"{_NUMBER}\s*%")


class Budget(NamedTuple):
    """How much repeated work is allowed: ``flops``, and/or a ``share`` (0..1) of the joint backward
    FLOPs (of a graph report: of its FLOPs). With both, the smaller limit holds."""

    flops: int | None = None
    share: float | None = None

    def limit(self, report: Any) -> float:
        """The most duplicated FLOPs ``report`` may have."""
        limits = [] if self.flops is None else [self.flops]
        if self.share is not None:
            limits.append(self.share * share_base(report))
        return min(limits)

    def text(self, report: Any) -> str:
        """``1 GFLOP``, ``12% of the joint backward (3.53 GFLOP)``."""
        parts = [] if self.flops is None else [si(self.flops, "FLOP")]
        if self.share is not None:
            whole = "the joint backward" if report.kind == "grad" else "the graph"
            parts.append(f"{percent(self.share)} of {whole} ({si(self.share * share_base(report), 'FLOP')})")
        return " and ".join(parts)


def parse_budget(text: str) -> Budget:
    """``"5G"`` -> 5e9 FLOPs, ``"2.5e9"``, ``"500 MFLOP"``; ``"12%"`` -> a share of the joint backward FLOPs."""
    if not isinstance(text, str):
        raise TypeError(f"budget: {text!r} is not a string such as '5G' or '12%'")
    stripped = text.strip()
    share = _SHARE.fullmatch(stripped)
    if share:
        return Budget(share=float(share["number"]) / 100)  # past 100%: separate calls can repeat more than it
    flops = _FLOPS.fullmatch(stripped)
    if not flops:
        raise ValueError(f"budget {text!r}: give FLOPs with an optional SI prefix (5G, 2.5e9, 500M) "
                         "or a share of the joint backward FLOPs (12%)")
    return Budget(flops=round(float(flops["number"]) * _SI[flops["prefix"]]))


@dataclass
class LineWork:
    """The duplicated work attributed to one line of the user's code (``source`` None: to no known line)."""

    source: Source | None
    nodes: int = 0
    flops: int = 0
    call_ids: set = field(default_factory=set)  # grad calls that built a copy of this line's repeated work
    least_calls: int = 0  # a counted report knows how many calls, not which
    copies: int = 0  # the most copies of one subexpression at this line
    costliest: str = ""  # the costliest repeated subexpression, as the report writes it
    costliest_key: tuple[int, int] = (-1, 0)  # its FLOPs per copy, then minus its first copy's position

    @property
    def calls(self) -> int:
        return max(len(self.call_ids), self.least_calls)


def work_by_line(report: Any) -> list[LineWork]:
    """The report's duplicated work by the user's line, costliest first; work at no known line last.

    A built report is read node by node (every duplicate counts at its line); a counted one
    (``materialize=False``) from its forward-node rows, the rest at no known line.
    """
    lines: dict[Any, LineWork] = {}

    def at(source: Source | None) -> LineWork:
        key = None if source is None else (source.file, source.line)
        return lines.setdefault(key, LineWork(source))

    if report.materialized:
        result = report.merges[report.audited_form]
        nodes, canonical = result.source, result.canonical
        duplicates = np.flatnonzero((canonical != np.arange(len(nodes))) & ~result.leaf).tolist()
        copies = np.bincount(canonical[duplicates], minlength=len(nodes)) + 1
        for p in duplicates:
            node, first = nodes[p], int(canonical[p])
            work = at(source_of(node, report.sources))
            flops = node_flops(node)
            work.nodes += 1
            work.flops += flops
            work.call_ids.update(n.call.index for n in (node, nodes[first]) if n.call is not None)
            work.copies = max(work.copies, int(copies[first]))
            work.costliest_key = max(work.costliest_key, (flops, -first))
        for work in lines.values():  # described once per line, not once per duplicate
            first = nodes[-work.costliest_key[1]]
            work.costliest = f"{describe(first, report.names)} {operand_text(first)}"
    else:
        for name, row in report.duplicated["by_forward_node"].items():
            work = at(None if row["source"] is None else Source(**row["source"]))
            work.nodes += row["nodes"]
            work.flops += row["flops"]
            work.least_calls = max(work.least_calls, row["calls"])
            work.copies = max(work.copies, row["calls"])
            if (row["flops"], 0) > work.costliest_key:
                work.costliest, work.costliest_key = f"the vjp rule of {name}", (row["flops"], 0)
        rest = LineWork(None, report.duplicated["nodes"] - sum(w.nodes for w in lines.values()),
                        report.duplicated["flops"] - sum(w.flops for w in lines.values()))
        if rest.nodes > 0:
            lines[None] = rest
    return sorted(lines.values(), key=lambda w: (w.source is None, -w.flops, -w.nodes,
                                                  (w.source.file, w.source.line) if w.source else ("", 0)))


def finding_message(work: LineWork, kind: str) -> str:
    """What is repeated at one line, without the place: ``5.05 GFLOP of backward work repeated by 6 grad calls (...)``."""
    if kind == "grad":
        head = f"{si(work.flops, 'FLOP')} of backward work repeated by {work.calls} grad calls"
    else:
        head = f"{si(work.flops, 'FLOP')} of work computed up to {work.copies} times"
    detail = f"{work.nodes} duplicated nodes" + (f"; costliest {work.costliest}" if work.costliest else "")
    return f"{head} ({detail})"


def findings(report: Any) -> list[str]:
    """One compiler-style line per line of the user's code that repeats work: ``file:line: message``."""
    return [f"{work.source.location if work.source else 'graphaudit'}: {finding_message(work, report.kind)}"
            + ("" if work.source else " at no known line") for work in work_by_line(report)]


class CheckResult(NamedTuple):
    """Whether a report stays within a budget, and the lines to show when it does not."""

    within: bool
    duplicated_flops: int
    limit: float
    summary: str  # one line: the figure against the budget
    findings: list[str]


def check(report: Any, budget: Budget) -> CheckResult:
    """``report``'s duplicated FLOPs against ``budget`` (within: at most the limit)."""
    duplicated, limit = report.duplicated["flops"], budget.limit(report)
    within = duplicated <= limit
    share = backward_share(report)
    of = f" ({share_text(share, 'the joint backward' if report.kind == 'grad' else 'the graph')})" if share else ""
    summary = (f"{si(duplicated, 'FLOP')} of repeated work{of}: {'within' if within else 'over'} "
               f"the budget of {budget.text(report)}")
    return CheckResult(within, duplicated, limit, summary, findings(report))
