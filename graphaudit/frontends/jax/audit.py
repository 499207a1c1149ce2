"""Is JAX smart enough? One ``jax.grad`` trace per parameter against one joint trace.

:func:`audit` traces both forms, imports them (:mod:`.importer`), and compares them with
the core :func:`graphaudit.compare_forms`; optionally it asks what XLA's optimised HLO
keeps (``xla=True``) and times the jitted forms (``measure=True``). JAX's figures go in
a :class:`JaxSection`, which says in the report's text what they mean.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from graphaudit import progress
from graphaudit.analysis.timing import Run
from graphaudit.analysis.cost import Cost, total_cost
from graphaudit.frontends import require
from graphaudit.frontends.common import AuditOptions, BuiltForms, audit_forms
from graphaudit.frontends.jax.arguments import FlatFunction, Group
from graphaudit.frontends.jax.compiled import timed_runs, xla_check
from graphaudit.frontends.jax.importer import count_equations, from_jaxpr
from graphaudit.frontends.common.loops import LoopRecord, loop_rows, unrolls
from graphaudit.frontends.jax.loops import DEFAULT_BUDGET, unrolled_size
from graphaudit.frontends.jax.ops import ATTR_REMAT
from graphaudit.frontends.jax.sources import EquationSources
from graphaudit.core.graph import GradCall, Node, topological_order
from graphaudit.analysis.report import Report
from graphaudit.frontends.jax.section import JaxSection


def audit(
    fn: Callable,
    *args: Any,
    argnums: int | Sequence[int] = 0,
    xla: bool = False,
    measure: bool = False,
    commutative: bool = False,
    semantic: bool = False,
    repeats: int = 5,
    loop_budget: int = DEFAULT_BUDGET,
    has_aux: bool = False,
    group: Group = None,
    materialize: bool = True,
) -> Report:
    """Audit one ``jax.grad`` trace per differentiated leaf against one joint ``jax.grad`` trace.

    ``fn(*args)`` must return a scalar, or ``(loss, aux)`` with ``has_aux=True``. The
    arguments named by ``argnums`` may be pytrees (dicts of arrays, Flax params, Equinox
    modules): every inexact array leaf of them is differentiated and named by its path
    (``params['dense_1']['w']``); leaves that are not arrays are static (:mod:`.arguments`).
    ``group="module"`` makes one separate grad call per parent in the pytree (a layer's
    weight and bias together), a callable one per key it maps leaf names to. ``args`` may be arrays or
    ``jax.ShapeDtypeStruct`` (nothing is allocated then; ``measure`` needs arrays).
    ``xla=True`` compiles the separate grads in one ``jit`` and the joint grad and counts
    what the optimised HLO keeps; ``measure=True`` times the jitted forms (median of ``repeats``).
    Loops (``scan``, ``cond``, ``while``) are imported with their bodies (:mod:`.loops`): scans
    are unrolled for the analysis when all the forms unrolled hold at most ``loop_budget``
    nodes, else imported whole. The report's ``framework`` is a :class:`JaxSection`, which
    says how each loop was treated. ``semantic=True`` (needs egglog) adds what equality saturation finds beyond value numbering (``report.semantic``).
    """
    options = AuditOptions(commutative=commutative, semantic=semantic, repeats=repeats, measure=measure,
                           compile_check=xla, loop_budget=loop_budget, materialize=materialize)
    return audit_forms(JaxForms(fn, args, argnums, has_aux=has_aux, group=group), options)


class JaxForms:
    """One ``jax.grad`` trace per differentiated leaf (or group of leaves) and one joint trace, imported
    (:func:`graphaudit.frontends.common.audit_forms`'s front-end)."""

    def __init__(self, fn: Callable, args: tuple, argnums: int | Sequence[int], has_aux: bool = False,
                 group: Group = None):
        require("jax", "jax")
        if not callable(fn):
            raise TypeError(f"audit: fn must be a function, got {type(fn).__name__}")
        self.flat = FlatFunction(fn, args, _normalise_argnums(argnums, len(args)), has_aux=has_aux, group=group)
        if not self.flat.wrt:
            raise ValueError(f"audit: the arguments {argnums} hold no arrays to differentiate")
        self.grouped = group is not None

    def build(self, options: AuditOptions) -> BuiltForms:
        jax, flat = require("jax", "jax"), self.flat
        if options.measure and any(isinstance(leaf, jax.ShapeDtypeStruct) for leaf in flat.leaves):
            raise ValueError("audit: measure=True needs arrays, not jax.ShapeDtypeStruct, to run the gradients on")
        if not options.materialize and self.grouped:
            raise ValueError("audit: group= needs the separate form built; drop materialize=False")
        wrt_names = [flat.names[i] for i in flat.wrt]
        start = time.perf_counter()
        joint_traced = jax.make_jaxpr(flat.joint())(*flat.leaves)
        joint_seconds = time.perf_counter() - start
        inputs = flat.nodes(joint_traced)

        start = time.perf_counter()
        separate_traced = []  # counted (materialize=False): none traced
        for index, members in enumerate(flat.groups if options.materialize else ()):
            separate_traced.append(jax.make_jaxpr(flat.separate(index))(*flat.leaves))
            progress.step("jax.grad traces", index + 1, len(flat.groups), ", ".join(wrt_names[members]))
        trace_seconds = time.perf_counter() - start
        unrolled = sum(map(unrolled_size, [*separate_traced, joint_traced]))
        unroll = unrolls(unrolled, options.loop_budget)
        loops: dict[str, list[LoopRecord]] = {"separate": [], "joint": []}

        start = time.perf_counter()
        separate: list[Node] = []
        sources = EquationSources()
        for members, traced in zip(flat.groups, separate_traced):
            separate += from_jaxpr(traced, inputs, call=GradCall(wrt_names[members]), unroll=unroll,
                                   loops=loops["separate"], sources=sources)
        import_seconds = time.perf_counter() - start
        start = time.perf_counter()
        joint = from_jaxpr(joint_traced, inputs, call=GradCall(wrt_names), unroll=unroll, loops=loops["joint"],
                           sources=sources)
        joint_import = time.perf_counter() - start

        if not options.materialize and loops["joint"] and not unroll:
            raise ValueError(f"audit: materialize=False counts loops unrolled only, and these would make {unrolled} "
                             f"nodes, over loop_budget={options.loop_budget}; raise loop_budget or drop "
                             "materialize=False")
        self.avals = [var.aval for var in joint_traced.jaxpr.invars]
        self.figures = {
            "traces": {"separate": len(separate_traced), "joint": 1},
            "jaxpr_equations": {"separate": sum(map(count_equations, separate_traced)) if options.materialize else None,
                                "joint": count_equations(joint_traced)},
            "import_seconds": {"separate": import_seconds, "joint": joint_import},
            "loops": loop_rows(loops, unroll, unrolled, options.loop_budget),
        }
        if not options.materialize:
            return BuiltForms(wrt_names, joint, None, sources=sources.sources, build_seconds=(None, joint_seconds),
                              retraced_forward=True)
        return BuiltForms(wrt_names, joint, separate, sources=sources.sources,
                          build_seconds=(trace_seconds, joint_seconds))

    def section(self, built: BuiltForms, report: Report) -> JaxSection:
        figures = self.figures
        section = JaxSection(name="JAX", version=require("jax", "jax").__version__, traces=figures["traces"],
                             jaxpr_equations=figures["jaxpr_equations"], import_seconds=figures["import_seconds"],
                             retraced_forward=_retraced_forward(report),
                             intentional_recomputation=_recomputation(report), loops=figures["loops"])
        if not report.materialized:
            section["counted"] = len(built.wrt)
            # Each separate trace runs its own copy of a loop, whose body (transposed for one leaf only)
            # the joint trace does not hold: with loops, counted figures are estimates (see the tests).
            section["counted_exact"] = not figures["loops"]["rows"]
        if self.grouped:
            section["groups"] = [built.wrt[members] for members in self.flat.groups]
        return section

    def compile_check(self, built: BuiltForms, report: Report) -> dict[str, Any]:
        return xla_check(self.flat, self.avals)

    def timed_runs(self) -> tuple[str, dict[str, Run], dict[str, Any]]:
        return timed_runs(self.flat)


def _normalise_argnums(argnums: int | Sequence[int], count: int) -> tuple[int, ...]:
    raw = (argnums,) if isinstance(argnums, (int, np.integer)) else tuple(argnums)
    if not raw:
        raise ValueError("audit: argnums is empty; name at least one argument to differentiate")
    result = []
    for a in raw:
        if not isinstance(a, (int, np.integer)) or not -count <= a < count:
            raise ValueError(f"audit: argnums {a!r} is out of range for {count} positional arguments")
        result.append(int(a) % count)
    if len(set(result)) != len(result):
        raise ValueError(f"audit: repeated argument in argnums {argnums!r}")
    return tuple(result)


def _cost_figures(cost: Cost) -> dict[str, int]:
    return {"nodes": cost.nodes, "flops": cost.flops, "matmul_flops": cost.matmul_flops}


def _retraced_forward(report: Report) -> dict[str, int]:
    """The forward nodes that merging removes from the separate form: the re-traced forward passes
    (of a counted separate form: the forward's share of the duplicated work, counted alike)."""
    if not report.materialized:
        forward = report.duplicated["by_call"].get("forward", {"nodes": 0, "flops": 0, "matmul_flops": 0})
        return {key: forward[key] for key in ("nodes", "flops", "matmul_flops")}
    order = topological_order(report.forms["separate"].outputs)
    duplicates = report.merges["separate"].duplicates
    return _cost_figures(total_cost(n for n in order if n.call is None and n in duplicates))


def _is_recomputed(node: Node) -> bool:
    return node.attr(ATTR_REMAT, False) is True


def _recomputation(report: Report) -> dict[str, dict[str, int] | None]:
    """Nodes ``jax.checkpoint`` recomputes, per form, and their copies that separate calls duplicate
    (a counted separate form has no nodes to look at: its two figures are None)."""
    forms = ("separate", "joint", "separate_merged") if report.materialized else ("joint", "separate_merged")
    result: dict[str, dict[str, int] | None] = {
        form: _cost_figures(total_cost(n for n in topological_order(report.forms[form].outputs) if _is_recomputed(n)))
        for form in forms
    }
    if not report.materialized:
        return {"separate": None, **result, "duplicated": None}
    duplicates = report.merges["separate"].duplicates
    order = topological_order(report.forms["separate"].outputs)
    result["duplicated"] = _cost_figures(total_cost(n for n in order if n in duplicates and _is_recomputed(n)))
    return result
