"""One audit driver for every front-end: options once, the framework's forms built, compared, sectioned.

Every front-end's audit is the same steps: check the options, build the framework's separate
and joint forms and import them (one :class:`~graphaudit.core.graph.GradCall` per separate
call), compare them with :func:`graphaudit.compare_forms` (or count the separate form from the
joint one, :func:`graphaudit.count_forms`), make the framework's section, ask its compiler what
it keeps, time both forms, and attach what it found. :func:`audit_forms` does those steps; a
front-end gives only what its framework does, as a :class:`FrameworkForms`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Protocol

from graphaudit.analysis.audit import compare_forms, count_forms
from graphaudit.analysis.report import Report
from graphaudit.analysis.timing import Run, measure
from graphaudit.core.graph import Node
from graphaudit.core.source import Source
from graphaudit.frontends.common.loops import DEFAULT_LOOP_BUDGET
from graphaudit.frontends.common.section import FrameworkSection


@dataclasses.dataclass(frozen=True)
class AuditOptions:
    """What an audit is asked to do, given once; each front-end's ``audit`` turns its keywords into these.

    ``commutative`` and ``semantic``: how equal subexpressions are found; ``repeats``: runs of
    each timing (builds, for PyTensor); ``measure``: time the framework's forms;
    ``compile_check``: ask the framework's compiler what it keeps (JAX's ``xla``);
    ``loop_budget``: nodes the unrolled forms may hold; ``materialize=False``: count the
    separate form from the joint one instead of building it.
    """

    commutative: bool = False
    semantic: bool = False
    repeats: int = 5
    measure: bool = False
    compile_check: bool = False
    loop_budget: int = DEFAULT_LOOP_BUDGET
    materialize: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.repeats, bool) or not isinstance(self.repeats, int) or self.repeats < 1:
            raise ValueError(f"audit: repeats must be >= 1, got {self.repeats!r}")
        if isinstance(self.loop_budget, bool) or not isinstance(self.loop_budget, int) or self.loop_budget < 0:
            raise ValueError(f"audit: loop_budget must be >= 0, got {self.loop_budget!r}")
        if not self.materialize:
            refused = [name for name in ("compile_check", "measure", "semantic") if getattr(self, name)]
            if refused:
                raise ValueError(f"audit: {refused[0]}=True needs the separate form built; drop materialize=False")


@dataclasses.dataclass
class BuiltForms:
    """A front-end's two forms, imported: what :func:`audit_forms` compares.

    ``separate`` is None when the separate form was not built (``materialize=False``): it is
    counted from ``joint``, whose outputs are one gradient per ``wrt``. ``names`` and
    ``sources`` name forward nodes and their lines; ``build_seconds`` is the framework's own
    time to build each form (separate, joint), when it is known. ``retraced_forward``: each separate
    call traces the forward again (``jax.grad``), which counting must know.
    """

    wrt: list[str]
    joint: list[Node]
    separate: list[Node] | None
    names: Mapping[Node, str] | None = None
    sources: Mapping[Node, Source] | None = None
    build_seconds: tuple[float | None, float | None] = (None, None)
    retraced_forward: bool = False


class FrameworkForms(Protocol):
    """What a front-end does for :func:`audit_forms`; everything else is shared."""

    def build(self, options: AuditOptions) -> BuiltForms:
        """Build the framework's forms and import them."""

    def section(self, built: BuiltForms, report: Report) -> FrameworkSection:
        """The framework's own figures for ``report``."""

    def compile_check(self, built: BuiltForms, report: Report) -> dict[str, Any]:
        """What the framework's compiler keeps of each form (``section["compile_check"]``)."""

    def timed_runs(self) -> tuple[str, Mapping[str, Run], Mapping[str, Any]]:
        """What ``measure`` times: the words for it, the runs (``separate`` and ``joint`` among
        them), and facts to keep with the times (the device)."""


def audit_forms(frontend: FrameworkForms, options: AuditOptions) -> Report:
    """Audit ``frontend``'s forms: build, compare (or count), section, compile check, measure."""
    built = frontend.build(options)
    if built.separate is None:
        report = count_forms(built.joint, wrt=built.wrt, names=built.names, sources=built.sources,
                             build_seconds=built.build_seconds[1], commutative=options.commutative,
                             retraced_forward=built.retraced_forward)
    else:
        report = compare_forms(built.separate, built.joint, wrt=built.wrt, names=built.names, sources=built.sources,
                               build_seconds=built.build_seconds, commutative=options.commutative,
                               semantic=options.semantic)
    section = frontend.section(built, report)
    if options.compile_check:
        section["compile_check"] = frontend.compile_check(built, report)
    measured = None
    if options.measure:
        what, runs, facts = frontend.timed_runs()
        measured = measure(what, runs, options.repeats, **facts)
    return dataclasses.replace(report, framework=section, measured=measured)
