"""The Report: data first (``to_dict``), views second (text, JSON, DOT, PNG/SVG, notebook).

A Report never changes after it is made: it is a frozen dataclass, and what it holds is
read-only (:mod:`graphaudit.analysis.frozen`); ``dataclasses.replace`` makes a changed copy.
The keys and types of ``to_dict()`` are the TypedDicts of :mod:`graphaudit.analysis.schema`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, ClassVar

from graphaudit.analysis.advice import AdviceWords, advice, advice_lines
from graphaudit.analysis.cost import Cost, combined_bound
from graphaudit.analysis.frozen import FreezableDict, frozen, thawed
from graphaudit.core.describe import seconds_text, shape_text, si
from graphaudit.core.graph import Node
from graphaudit.core.source import Source
from graphaudit.analysis.merge import MergeResult
from graphaudit.analysis.timing import measured_lines
from graphaudit.analysis.schema import ReportData


# How a figure that is a bound, not a count, is marked, and what the mark means.
BOUND_MARKS = {"upper": "<=", "lower": ">=", "mixed": "~"}
BOUND_WORDS = {"upper": "an upper bound", "lower": "a lower bound", "mixed": "parts upper, parts lower bounds"}


def bound_mark(bounds: Any) -> str:
    """The mark of figures summed over nodes with these ``bounds`` (kind -> nodes): "" for a count."""
    kind = combined_bound(dict(bounds))
    return BOUND_MARKS[kind] if kind else ""


class Section(FreezableDict):
    """A front-end's part of a report: its data (this dict, ``to_dict()["framework"]``) and its text.

    The report prints :meth:`lines` after its verdicts and :meth:`closing_lines` at its end,
    and knows nothing else of any framework: each front-end subclasses this
    (:mod:`graphaudit.frontends.common`) and says what its data means in its own words, and
    its keys and types in a TypedDict, its ``schema``. A front-end fills its section, then
    attaches it: the report keeps a read-only copy.
    """

    schema: ClassVar[Any] = dict[str, Any]  # keys undeclared

    def lines(self) -> list[str]:
        return []

    def closing_lines(self) -> list[str]:
        return []

    def advice_words(self) -> AdviceWords | None:
        """What to write instead of one grad call per parameter, in the framework's words, and whether
        its compiler already recovers the repeated work (:class:`~graphaudit.analysis.advice.AdviceWords`);
        None: graphaudit's own words."""
        return None


@dataclass(frozen=True)
class Form:
    """One gradient form: its outputs, their cost, and how long building it took."""

    outputs: list[Node] | None  # None: counted, not built (audit(..., materialize=False))
    cost: Cost
    build_seconds: float | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "outputs", frozen(self.outputs))

    def to_dict(self, timings: bool = True) -> dict[str, Any]:
        return {**self.cost.to_dict(), "build_seconds": self.build_seconds if timings else None}


@dataclass(frozen=True)
class Report:
    """The result of :func:`graphaudit.audit` or :func:`graphaudit.audit_graph`.

    Besides the data of ``to_dict``, it keeps the graphs themselves: ``forms[name].outputs``,
    ``merges[name]`` (the :class:`MergeResult` of the separate, joint or original form),
    ``semantic_duplicates`` (the nodes only a semantic merge removes, which pictures mark apart),
    ``names`` (the readable names of forward nodes) for drawing, and ``sources`` (the user's line
    that built a node; a backward node's is its ``origin``'s: :func:`graphaudit.core.source.source_of`).

    It never changes: assigning a field raises, and so does changing what a field holds.
    """

    kind: str
    wrt: list[str]
    forms: dict[str, Form]
    audited_form: str  # the form whose duplicated work is reported: "separate", or "original" of a graph
    merges: dict[str, MergeResult]
    duplicated: dict[str, Any]
    joint_duplicates: dict[str, Any] | None
    merged_equals_joint: bool | None
    measured: dict[str, Any] | None
    names: dict[Node, str]
    sources: dict[Node, Source] = dataclasses.field(default_factory=dict)  # the user's line of nodes (forward)
    commutative: bool = False
    framework: Section | None = None
    materialized: bool = True
    semantic: dict[str, Any] | None = None
    semantic_duplicates: tuple[Node, ...] = ()
    merged_difference: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        # What the caller passed stays theirs: the report keeps read-only copies (of what is not read-only already).
        for field in dataclasses.fields(self):
            object.__setattr__(self, field.name, frozen(getattr(self, field.name)))

    @property
    def merged(self) -> Form:
        """The merged form of what was audited: ``forms["separate_merged"]`` of a grad report,
        ``forms["original_merged"]`` of a graph report (every form ``X`` merges to ``X_merged``)."""
        return self.forms[f"{self.audited_form}_merged"]

    # --- data --------------------------------------------------------------------------

    def to_dict(self, timings: bool = True) -> ReportData:
        """The report's data (:class:`~graphaudit.analysis.schema.ReportData`), a plain copy: yours to change.

        With ``timings=False`` every measured time is None: what is left is the same in every
        run, so two runs can be compared byte for byte.
        """
        measured = self.measured if timings else _without_timings(self.measured)
        data = {
            "kind": self.kind,
            "wrt": list(self.wrt),
            "forms": {name: form.to_dict(timings) for name, form in self.forms.items()},
            "duplicated": self.duplicated,
            "joint_duplicates": self.joint_duplicates,
            "merged_equals_joint": self.merged_equals_joint,
            "merged_difference": self.merged_difference,
            "measured": measured,
            "commutative": self.commutative,
            "materialized": self.materialized,
            "advice": advice(self),
        }
        if self.semantic is not None:
            data["semantic"] = self.semantic if timings else _without_timings(self.semantic)
        if self.framework is not None:
            data["framework"] = self.framework if timings else _without_timings(self.framework)
        return thawed(data)

    def to_json(self, timings: bool = True, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(timings), indent=indent)

    # --- text --------------------------------------------------------------------------

    def to_text(self) -> str:
        """A readable table: what ``print(report)`` shows."""
        lines = [self.headline(), ""]
        header = f"{'form':<17}{'nodes':>8}{'backward':>10}{'FLOPs':>14}{'matmul FLOPs':>14}{'bytes':>12}{'build':>11}"
        lines += [header, "-" * len(header)]
        for name, form in self.forms.items():
            c = form.cost
            mark = bound_mark(c.bounds)
            lines.append(
                f"{name.replace('_', ' '):<17}{c.nodes:>8}{c.backward_nodes:>10}{mark + si(c.flops, 'FLOP'):>14}"
                f"{mark + si(c.matmul_flops, 'FLOP'):>14}{si(c.bytes, 'B'):>12}{seconds_text(form.build_seconds):>11}"
            )
        kinds = sorted({kind for form in self.forms.values() for kind, _ in form.cost.bounds})
        if kinds:
            lines.append("FLOPs marked " + ", ".join(f"{BOUND_MARKS[k]} are {BOUND_WORDS[k]}" for k in kinds)
                         + ": loops costed without knowing their branch or trip count")
        unknown: dict[str, int] = {}
        for form in self.forms.values():
            for op, count in form.cost.no_cost_rule:
                unknown[op] = max(unknown.get(op, 0), count)
        if unknown:
            listed = ", ".join(f"{op} ({count})" for op, count in sorted(unknown.items()))
            lines.append(f"no cost rule, FLOPs not counted: {listed}")
        dup = self.duplicated
        lines += ["", self.verdict()]
        if self.kind == "grad":
            if self.materialized:
                lines.append(f"merge(separate) == merge(joint): {self.merged_verdict()}")
            else:
                lines.append("counting mode: the separate form was counted, not built (merged forms = merge(joint))")
            own = self.joint_duplicates
            lines.append(
                f"the joint form's own duplicates: {own['nodes']} nodes, {si(own['flops'], 'FLOP')}"
                + (" (" + ", ".join(f"{op} x{e['nodes']}" for op, e in own["by_op"].items()) + ")" if own["nodes"] else "")
            )
        if self.measured is not None:
            lines += measured_lines(self.measured)
        if self.semantic is not None:
            lines += self.semantic_lines()
        if self.framework is not None:
            lines += self.framework.lines()
        if dup["nodes"]:
            lines += ["", "duplicated work by op:"]
            width = max([14] + [len(op) + 1 for op in dup["by_op"]])  # imported ops have long names
            lines += [f"  {op:<{width}}{e['nodes']:>6} nodes {si(e['flops'], 'FLOP'):>12}" for op, e in dup["by_op"].items()]
            lines += ["", "by grad call (copies of work an earlier call had built):"]
            lines += [f"  {call:<40}{e['nodes']:>6} nodes {si(e['flops'], 'FLOP'):>12}" for call, e in dup["by_call"].items()]
            if dup["by_forward_node"]:  # empty for imported graphs, whose nodes carry no vjp origin
                lines += ["", "by forward node (whose vjp rule ran in several grad calls):"]
                lines += [
                    f"  {name} {shape_text(tuple(e['shape']))}: rule ran in {e['calls']} calls, "
                    f"{e['nodes']} duplicated nodes, {si(e['flops'], 'FLOP')}{_at(e['source'])}"
                    for name, e in list(dup["by_forward_node"].items())[:12]
                ]
            lines += ["", "top duplicated subexpressions:"]
            for rank, row in enumerate(dup["top"], start=1):
                lines.append(
                    f"  {rank:>2}. {row['expression']}  {row['shapes']}  x{row['copies']} copies, "
                    f"{si(row['wasted_flops'], 'FLOP')} wasted{_at(row['source'])}"
                )
        if self.framework is not None:
            lines += self.framework.closing_lines()
        lines += advice_lines(self, bound_mark(dup["bounds"]))
        return "\n".join(lines)

    __str__ = to_text

    def headline(self) -> str:
        """The report's first line: what was compared."""
        if self.kind == "grad":
            shown = self.wrt if len(self.wrt) <= 10 else [*self.wrt[:8], "...", self.wrt[-1]]
            return f"graphaudit: {len(self.wrt)} separate grad calls vs one joint call, wrt {', '.join(shown)}"
        return "graphaudit: what merging equal subexpressions removes from this graph"

    def verdict(self) -> str:
        """How much work the separate (or original) form duplicates, in one line."""
        dup = self.duplicated
        audited = self.forms[self.audited_form].cost
        mark = bound_mark(dup["bounds"])
        text = (
            f"duplicated work in the {self.audited_form} form: {dup['nodes']} of {audited.nodes} nodes, "
            f"{mark}{si(dup['flops'], 'FLOP')} ({mark}{si(dup['matmul_flops'], 'FLOP')} in matmuls)"
        )
        if self.kind == "grad":
            joint_backward = self.forms["joint"].cost.backward_flops
            separate_backward = audited.backward_flops
            if joint_backward:
                text += f"; separate backward = {separate_backward / joint_backward:.2f}x joint backward FLOPs"
        return text

    def merged_verdict(self) -> str:
        """Whether merge(separate) is merge(joint): "yes"; "equal but for" the views only one holds
        (no FLOPs, no bytes: the same work, laid out differently); else "NO" and what differs."""
        diff = self.merged_difference
        if self.merged_equals_joint:
            return "yes"
        if diff is None:
            return "NO"
        separate, joint = diff["separate_only"], diff["joint_only"]
        if not separate + joint:
            return "NO: the same nodes, but the gradients are different ones of them"
        if diff["views"] == separate + joint and not diff["flops"] and not diff["bytes"]:
            where = ", ".join(f"{_ops_text(diff, side)} only in the {side.removesuffix('_only')}"
                              for side in ("separate_only", "joint_only") if diff[side])
            return f"equal but for {separate + joint} view{'s' if separate + joint > 1 else ''}, 0 FLOP ({where})"
        return (f"NO: {separate} nodes only in the separate ({_ops_text(diff, 'separate_only')}), {joint} only in "
                f"the joint ({_ops_text(diff, 'joint_only')}); {si(diff['flops'], 'FLOP')} and "
                f"{si(diff['bytes'], 'B')} between them")

    def semantic_lines(self) -> list[str]:
        """What equality saturation found beyond value numbering, how, and whether it stopped early."""
        sem, extra = self.semantic, self.semantic["extra"]
        run, limits = sem["saturation"], sem["saturation"]["limits"]
        lines = [
            "",
            f"semantic duplicates (equality saturation, beyond the syntactic figure above): {extra['nodes']} more "
            f"nodes, {si(extra['flops'], 'FLOP')} ({si(extra['matmul_flops'], 'FLOP')} in matmuls)",
            f"  nodes after merging: {sem['syntactic_classes']} syntactic, {sem['semantic_nodes']} semantic "
            f"({extra['merged']} merged into an equal earlier node, {extra['nodes'] - extra['merged']} fed only those)",
            "  rules matched: " + (", ".join(f"{r} x{n}" for r, n in sem["rules_matched"].items()) or "none"),
        ]
        if sem["rounding_merges"]:
            lines.append(f"  {sem['rounding_merges']} merges rest on rules that hold only up to float rounding "
                         f"({', '.join(sem['rounding_rules_matched'])}): merged values agree to rounding, not bit for bit")
        else:
            lines.append("  every merge rests on exact rules: merged values are equal")
        stop = "saturated" if run["stopped"] == "saturated" else f"STOPPED EARLY at the {run['stopped']}"
        lines.append(
            f"  saturation: {stop} after {run['iterations']} iterations, {run['enodes']} e-nodes (limits: "
            f"{limits['iterations']} iterations, {limits['nodes']} e-nodes, {limits['time_limit_s']:g} s; "
            f"associativity {'on' if run['associativity'] else 'off'}); load {seconds_text(run['load_seconds'])}, "
            f"saturate {seconds_text(run['saturate_seconds'])}")
        if sem["top"]:
            lines.append("  top semantic merges:")
            lines += [f"  {rank:>3}. {row['expression']}  {row['shapes']}  = {row['equals']}, "
                      f"{si(row['flops'], 'FLOP')}" for rank, row in enumerate(sem["top"], start=1)]
        return lines

    # --- pictures (graphaudit.views.draw) ------------------------------------------------------

    def to_dot(self, view: str = "merged", **options: Any) -> str:
        """DOT source of the ``"merged"`` or ``"separate"`` view (see :mod:`graphaudit.views.draw`)."""
        from graphaudit.views.draw import report_dot

        self._check_drawable()
        return report_dot(self, view, **options)

    def render(self, path: str, view: str = "merged", **options: Any) -> str:
        """Write the view to ``path``: PNG, SVG or DOT by its suffix. Returns the path."""
        from graphaudit.views.draw import render_report

        self._check_drawable()
        return render_report(self, path, view, **options)

    def _check_drawable(self) -> None:
        if not self.materialized:
            raise ValueError("this report was counted (materialize=False): there is no separate graph to draw; "
                             "audit with materialize=True for pictures")

    def to_html(self, path: str, group_by: str = "scope") -> str:
        """Write the interactive, self-contained HTML report to ``path`` (see :mod:`graphaudit.views.html`),
        its graph first grouped by ``"scope"`` (the model's hierarchy) or ``"source"`` (the user's lines)."""
        from graphaudit.views.html import write_html

        self._check_drawable()
        return write_html(self, path, group_by)

    def to_model_explorer(self, folder: str) -> list[str]:
        """Write both views as Model Explorer graphs with overlays into ``folder`` (see :mod:`graphaudit.views.explorer`)."""
        from graphaudit.views.explorer import write_model_explorer

        self._check_drawable()
        return write_model_explorer(self, folder)

    def _repr_html_(self) -> str:
        from graphaudit.views.draw import report_html

        return report_html(self)


def _at(source: dict[str, Any] | None) -> str:
    """`` at file:line``, what an editor links to, beside a row; "" when the line is not known."""
    return f"  at {source['file']}:{source['line']}" if source is not None else ""


def _ops_text(difference: dict[str, Any], side: str, shown: int = 3) -> str:
    """The ops of the nodes only one merged form holds, most first: ``reshape x2, slice x1``."""
    counts = sorted(((-sides[side], op) for op, sides in difference["ops"].items() if sides[side]))
    text = ", ".join(f"{op} x{-count}" for count, op in counts[:shown])
    return text + (", ..." if len(counts) > shown else "") if counts else "none"


def _without_timings(value: Any, timed: bool = False) -> Any:
    """``value`` with every measured time (a float under a key naming seconds) set to None."""
    if isinstance(value, dict):
        return {k: v if k in ("repeats", "calls") else _without_timings(v, timed or "seconds" in k)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_without_timings(v, timed) for v in value]
    return None if timed and isinstance(value, float) else value
