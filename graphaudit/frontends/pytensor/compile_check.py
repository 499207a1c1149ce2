"""What PyTensor's own rewrites keep of the two forms: ``MergeOptimizer`` alone, and a compile.

:func:`compile_check` is the audit's ``compile_check=True``: node and dot counts of each form
as built, after graphaudit's merge, after PyTensor's ``MergeOptimizer`` and after
``pytensor.function``'s rewrites, and the merges ``MergeOptimizer`` makes that graphaudit's
merge does not (0 is the cross-check passing).
"""

from __future__ import annotations

import time
from typing import Any

from graphaudit.analysis.cost import is_matmul
from graphaudit.analysis.report import Report
from graphaudit.core.graph import topological_order
from graphaudit.frontends.pytensor.importer import Importer
from graphaudit.frontends.pytensor.ops import TABLE, pytensor_module


def _traversal():
    """``pytensor.graph.traversal`` (PyTensor 3), or ``pytensor.graph.basic`` where older releases keep the walks."""
    pytensor_module()
    try:
        from pytensor.graph import traversal
    except ImportError:
        from pytensor.graph import basic as traversal
    return traversal


def _roots(outputs) -> list:
    pt = pytensor_module()
    return [v for v in _traversal().graph_inputs(outputs) if not isinstance(v, pt.graph.basic.Constant)]


def _applies(outputs) -> list:
    return list(_traversal().applys_between(_roots(outputs), outputs))


MATMUL_CLASSES = frozenset(name for name, row in TABLE.rows.items() if row.kind == "matmul")


def matmul_count(applies) -> int:
    """How many of these PyTensor Apply nodes are matrix products (Dot, Dot22, Gemm, ..., Blockwise{Dot})."""
    return sum(_is_matmul_op(a.op) for a in applies)


def _is_matmul_op(op) -> bool:
    from pytensor.tensor.blockwise import Blockwise

    if isinstance(op, Blockwise):
        return _is_matmul_op(op.core_op)
    return type(op).__name__ in MATMUL_CLASSES


def merge_optimizer(outputs) -> dict[str, Any]:
    """Run PyTensor's ``MergeOptimizer`` alone on a clone of the graph of ``outputs``.

    Returns ``nodes`` and ``dots`` (Apply nodes after merging), ``seconds``, and ``merged``:
    the pairs ``(removed, kept)`` of Apply nodes *of the original graph* that it merged.
    """
    pt = pytensor_module()
    from pytensor.graph.basic import clone_get_equiv
    from pytensor.graph.features import Feature
    from pytensor.graph.fg import FunctionGraph
    from pytensor.graph.rewriting.basic import MergeOptimizer

    outputs = list(outputs)
    inputs = _roots(outputs)
    equiv = clone_get_equiv(inputs, outputs)
    original = {clone: orig for orig, clone in equiv.items() if isinstance(orig, pt.graph.basic.Apply)}

    class Replacements(Feature):
        def __init__(self):
            self.pairs = []

        def on_change_input(self, fgraph, node, i, var, new_var, reason=None):
            if var.owner is not None and new_var.owner is not None:
                self.pairs.append((var.owner, new_var.owner))

    graph = FunctionGraph([equiv[v] for v in inputs], [equiv[v] for v in outputs], clone=False)
    seen = Replacements()
    graph.attach_feature(seen)
    start = time.perf_counter()
    MergeOptimizer().rewrite(graph)
    seconds = time.perf_counter() - start
    merged = list(dict.fromkeys(
        (original[a], original[b]) for a, b in seen.pairs if a in original and b in original and a is not b
    ))
    return {"nodes": len(graph.apply_nodes), "dots": matmul_count(graph.apply_nodes), "seconds": seconds,
            "merged": merged}


def default_compile(outputs, mode=None) -> dict[str, Any]:
    """Compile ``outputs`` with ``pytensor.function`` (default mode unless ``mode``): nodes and dots it keeps."""
    pt = pytensor_module()
    outputs = list(outputs)
    inputs = [v for v in _roots(outputs) if not isinstance(v, pt.compile.sharedvalue.SharedVariable)]
    start = time.perf_counter()
    function = pt.function(inputs, outputs, mode=mode, on_unused_input="ignore")
    seconds = time.perf_counter() - start
    applies = function.maker.fgraph.apply_nodes
    return {"nodes": len(applies), "dots": matmul_count(applies), "seconds": seconds}


def mode_name(mode) -> str:
    """``"default mode, Numba"``, ``"FAST_COMPILE, VM"``: the mode and its linker, briefly."""
    pt = pytensor_module()
    resolved = pt.compile.mode.get_mode(mode)
    linker = type(resolved.linker).__name__.removesuffix("Linker") or "?"
    return f"{mode if isinstance(mode, str) else 'default mode'}, {linker}"


def compile_check(report: Report, importer: Importer, separate_vars, joint_vars, mode) -> dict[str, Any]:
    """Per form: PyTensor's Apply nodes as built, graphaudit's merge, ``MergeOptimizer`` alone and a default
    compile (``mode``), with the merges ``MergeOptimizer`` makes that graphaudit's merge does not."""
    def ga_counts(form):
        order = [n for n in topological_order(report.forms[form].outputs) if not n.is_leaf]
        return {"nodes": len(order), "dots": sum(is_matmul(n) for n in order),
                "seconds": report.forms[form].build_seconds if form.endswith("_merged") else None}

    rows = []
    as_built = {}
    for form, variables in (("separate", separate_vars), ("joint", joint_vars)):
        applies = _applies(variables)
        as_built[form] = {"nodes": len(applies), "dots": matmul_count(applies), "seconds": None}
    rows.append({"graph": "as built (PyTensor Apply nodes)", **as_built})
    rows.append({"graph": "graphaudit merge", "separate": ga_counts("separate_merged"),
                 "joint": ga_counts("joint_merged")})
    pt_merge = {form: merge_optimizer(v) for form, v in (("separate", separate_vars), ("joint", joint_vars))}
    rows.append({"graph": "PyTensor MergeOptimizer",
                 **{form: {k: r[k] for k in ("nodes", "dots", "seconds")} for form, r in pt_merge.items()}})
    compiled = {form: default_compile(v, mode) for form, v in (("separate", separate_vars), ("joint", joint_vars))}
    rows.append({"graph": f"PyTensor compile ({mode_name(mode)})", **compiled})

    # An unrolled Scan's bookkeeping (its n_steps, the buffer rows it never reads) has no node in
    # graphaudit's graph: a merge with such an Apply node is not graphaudit's to make.
    missed = {}
    for form in ("separate", "joint"):
        mapping = report.merges[form].mapping
        missed[form] = 0
        for x, y in pt_merge[form]["merged"]:
            pairs = [(mapping.get(importer.nodes.get(a)), mapping.get(importer.nodes.get(b)))
                     for a, b in zip(x.outputs, y.outputs)]
            missed[form] += any(a is not b for a, b in pairs if a is not None and b is not None)
    return {
        "title": "what PyTensor's compiler gets back",
        "rows": rows,
        "merge_optimizer_merges": {form: len(pt_merge[form]["merged"]) for form in ("separate", "joint")},
        "merges_graphaudit_missed": missed,
    }
