"""The seed's question inside PyTensor: ``pytensor.grad`` per parameter against one joint call.

The separate form is one ``pytensor.grad(cost, [p])`` per parameter, the joint form one
``pytensor.grad(cost, wrt)``. Both are built ``repeats`` times (the seed's own measurement:
median and spread of the build times), imported and compared with
:func:`graphaudit.compare_forms`. With ``compile_check=True`` the report also gives what
PyTensor's own rewrites get back: its ``MergeOptimizer`` alone, and the default compile
rewrites, on both forms (node and dot counts beside graphaudit's).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any, NamedTuple

from graphaudit import progress
from graphaudit.analysis.timing import Run, spread, time_in_turn
from graphaudit.core.describe import forward_names
from graphaudit.frontends.common import AuditOptions, BuiltForms, audit_forms
from graphaudit.frontends.pytensor.importer import Importer, as_variables, variable_dtype
from graphaudit.frontends.pytensor.compile_check import compile_check
from graphaudit.frontends.pytensor.ops import PREFIX, pytensor_module
from graphaudit.frontends.common.loops import LoopRecord, Treatment, loop_rows, unrolls
from graphaudit.frontends.pytensor.scan import DEFAULT_BUDGET
from graphaudit.frontends.pytensor.sources import grad_origins, variable_sources
from graphaudit.core.graph import GradCall, Node, topological_order
from graphaudit.analysis.report import Report
from graphaudit.frontends.pytensor.section import PyTensorSection


REPEATS = 20  # builds of each form, by default


# --- the audit -------------------------------------------------------------------------------------


def build_both(cost, wrt: list, repeats: int) -> tuple[list, list, dict[str, Any]]:
    """Build the separate and the joint grads ``repeats`` times each, in turn, timing each build.

    Returns a separate form, a joint form, and the build-time statistics (seconds: a
    :func:`~graphaudit.analysis.timing.spread` per form). A plain loop, like the seed's: the
    garbage collector runs when it runs, and its pauses are part of the cost of building.
    """
    pt = pytensor_module()
    names = [p.name or f"wrt[{i}]" for i, p in enumerate(wrt)]
    made, calls = itertools.count(1), (repeats + 1) * (len(wrt) + 1)  # each form built once more, to warm up

    def grad(wrt_now: list, name: str) -> list:
        with grad_origins():
            grads = pt.grad(cost, wrt_now)
        progress.step("pytensor.grad calls", next(made), calls, name)
        return grads

    runs = {"joint": Run(lambda: list(grad(wrt, "joint"))),
            "separate": Run(lambda: [grad([p], name)[0] for p, name in zip(wrt, names)])}
    times, built = time_in_turn(runs, repeats)
    stats = {form: spread(times[form]) for form in ("joint", "separate")}
    build_seconds = {
        "repeats": repeats,
        "calls": {"joint": 1, "separate": len(wrt)},
        **stats,
        "separate_over_joint": stats["separate"]["median"] / stats["joint"]["median"],
    }
    return built["separate"], built["joint"], build_seconds


def audit(
    cost,
    wrt,
    *,
    shapes: Mapping | None = None,
    compile_check: bool = False,
    repeats: int = REPEATS,
    mode=None,
    commutative: bool = False,
    semantic: bool = False,
    loop_budget: int = DEFAULT_BUDGET,
) -> Report:
    """Audit PyTensor's separate grads (one ``pytensor.grad(cost, [p])`` per ``p``) against its joint grad.

    ``cost`` is a scalar PyTensor variable, ``wrt`` a variable or a list of them (shared
    variables, or inputs, which then count as parameters). ``shapes`` gives the shapes of
    inputs whose static shape PyTensor does not know (``{"x": (128, 16384), "y": (128,)}``).
    Both forms are built ``repeats`` times; the report's build times are the medians, and
    ``report.framework["build_seconds"]`` holds the spread. With ``compile_check=True``,
    ``report.framework["compile_check"]`` also holds what PyTensor's ``MergeOptimizer`` and its
    compile rewrites (``mode``, default: PyTensor's default mode) keep of each form. Scans are
    unrolled for the analysis when both forms unrolled hold at most ``loop_budget`` nodes, else
    imported whole, costing body x steps (:mod:`.scan`); ``report.framework["loops"]`` says which.
    ``semantic=True`` (needs egglog) adds what equality saturation finds beyond value numbering (``report.semantic``).
    """
    options = AuditOptions(commutative=commutative, semantic=semantic, repeats=repeats, compile_check=compile_check,
                           loop_budget=loop_budget)
    return audit_forms(PyTensorForms(cost, wrt, shapes, mode), options)


class PyTensorForms:
    """``pytensor.grad`` per parameter and one joint call, built ``repeats`` times each and imported
    (:func:`graphaudit.frontends.common.audit_forms`'s front-end)."""

    def __init__(self, cost, wrt, shapes: Mapping | None, mode):
        (cost,), _ = as_variables(cost, "audit: cost")
        if getattr(cost.type, "ndim", None) != 0 or variable_dtype(cost).kind != "f":
            raise ValueError(f"audit: cost must be a floating-point scalar, got {cost.type} ({cost})")
        targets, _ = as_variables(wrt, "audit: wrt")
        if not targets:
            raise ValueError("audit: wrt is empty; pass at least one variable")
        self.cost, self.targets, self.shapes, self.mode = cost, targets, shapes, mode

    def build(self, options: AuditOptions) -> BuiltForms:
        cost, targets = self.cost, self.targets
        self.separate_vars, self.joint_vars, self.build_seconds = build_both(cost, targets, options.repeats)
        parameters = [t for t in targets if t.owner is None]
        forms = _import_forms(Importer(self.shapes, parameters), cost, targets, self.separate_vars, self.joint_vars)
        if any(forms.loops.values()) and unrolls(forms.unrolled_nodes, options.loop_budget):  # one decision for both forms
            forms = _import_forms(Importer(self.shapes, parameters, unroll=True), cost, targets,
                                  self.separate_vars, self.joint_vars)
        self.forms, self.loop_budget = forms, options.loop_budget
        medians = (self.build_seconds["separate"]["median"], self.build_seconds["joint"]["median"])
        return BuiltForms(forms.wrt, forms.joint, forms.separate, _forward_names(forms.cost),
                          variable_sources(forms.importer.nodes), build_seconds=medians)

    def section(self, built: BuiltForms, report: Report) -> PyTensorSection:
        section = PyTensorSection(name="PyTensor", version=pytensor_module().__version__, build_seconds=self.build_seconds)
        if self.forms.importer.loops:
            section["loops"] = _loop_rows(self.forms, self.loop_budget)
        return section

    def compile_check(self, built: BuiltForms, report: Report) -> dict[str, Any]:
        return compile_check(report, self.forms.importer, self.separate_vars, self.joint_vars, self.mode)


class _Forms(NamedTuple):
    """Both forms imported over one importer: the cost's and wrt's nodes, the gradients, the Scans met
    (by where: ``forward``, ``separate``, ``joint``) and the op nodes all of it makes with every Scan unrolled."""

    importer: Importer
    cost: Node
    wrt: list[str]
    separate: list[Node]
    joint: list[Node]
    loops: dict[str, list[LoopRecord]]
    unrolled_nodes: int


def _import_forms(importer: Importer, cost, targets, separate_vars, joint_vars) -> _Forms:
    (cost_node,) = importer.import_outputs([cost])
    wrt_names = []
    for position, (target, node) in enumerate(zip(targets, importer.import_outputs(targets)), start=1):
        wrt_names.append(node.name if node.is_leaf else (target.name or f"wrt{position}"))
    forward = len(importer.loops)
    separate = []
    for name, variable in zip(wrt_names, separate_vars):
        separate += importer.import_outputs([variable], GradCall([name]))
    after_separate = len(importer.loops)
    joint = importer.import_outputs(joint_vars, GradCall(wrt_names))
    importer.check_shape_keys()
    loops = {"forward": importer.loops[:forward], "separate": importer.loops[forward:after_separate],
             "joint": importer.loops[after_separate:]}
    return _Forms(importer, cost_node, wrt_names, separate, joint, loops, importer.unrolled_size(separate + joint))


def _loop_rows(forms: _Forms, budget: int) -> dict[str, Any]:
    """How each distinct Scan was treated, and how often each form holds it (the forward Scans: both)."""
    unrolled = any(record.treatment == Treatment.UNROLLED for met in forms.loops.values() for record in met)
    return loop_rows(forms.loops, unrolled, forms.unrolled_nodes, budget)


def _forward_names(cost_node: Node) -> dict[Node, str]:
    """Forward nodes named like ``Elemwise{sigmoid}_2`` (the op without ``pytensor.``), by op and position."""
    names = forward_names(topological_order([cost_node]))
    return {node: name.removeprefix(PREFIX) for node, name in names.items()}
