"""Separate versus joint: build both gradient forms, merge them, cost them, compare.

:func:`audit` answers the seed's question for any scalar cost: it builds the *separate*
form (one :func:`grad` call per ``wrt``) and the *joint* form (one call over all of
them), merges each, and reports the duplicated work, which is what merging removes
from the separate form, broken down by op, by grad call and by forward node.
:func:`audit_graph` does the same analysis for any outputs, with nothing to compare to.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Mapping, Sequence

from graphaudit.analysis.cost import MergedNodeCosts, merge_costs, node_bytes, node_flops
from graphaudit.analysis.counting import count_separate
from graphaudit.analysis.joint_counting import separate_from_joint
from graphaudit.core.describe import forward_names, name_of
from graphaudit.analysis.duplicates import TOP, duplicated_work
from graphaudit.core.evaluate import evaluate
from graphaudit.core.grad import grad, grad_with_record, separate_grads
from graphaudit.core.graph import GradCall, Node, check_nodes, paused_gc, topological_order
from graphaudit.analysis.merge import MergeResult, merge
from graphaudit.core.ops import get_op
from graphaudit.analysis.report import Form, Report
from graphaudit.analysis.semantic_work import removed_positions, semantic_work
from graphaudit.analysis.timing import Run, measure
from graphaudit.core.source import Source, recorded_sources
from graphaudit.errors import culprit


def audit(
    cost: Node,
    wrt: Node | Sequence[Node],
    *,
    measure: bool = False,
    feed: Mapping | None = None,
    commutative: bool = False,
    repeats: int = 5,
    materialize: bool = True,
    semantic: bool = False,
    sources: Mapping[Node, Source] | None = None,
) -> Report:
    """Audit one joint ``grad(cost, wrt)`` against one ``grad(cost, w)`` per ``w`` in ``wrt``.

    With ``measure=True`` and a ``feed``, also times (median of ``repeats`` runs) the
    numpy evaluation of the separate, joint and merged forms and checks that the
    separate and joint gradients agree.

    With ``materialize=False`` the separate form is counted, not built
    (:mod:`graphaudit.analysis.counting`): the same counts and breakdowns in time and memory
    proportional to the joint form, for graphs whose separate form is too big to build.
    Such a report has no separate graph to draw or evaluate, and takes merge(separate)
    to be merge(joint), which the materialised audit verifies.

    With ``semantic=True`` (needs egglog) the report also gives the duplicated work that
    only equality saturation finds (``report.semantic``; :mod:`graphaudit.analysis.semantic_work`).

    ``sources`` maps nodes to the user's line that built them (:class:`graphaudit.core.source.Source`);
    by default, the lines graphaudit noted as the forward nodes were built. A backward node's
    line is its ``origin``'s. Every ``top`` and ``by_forward_node`` row of the report says its line.
    """
    targets = [wrt] if isinstance(wrt, Node) else check_nodes(wrt, "audit: wrt")
    if measure and feed is None:
        raise ValueError("audit: measure=True needs a feed (e.g. make_feed() of a graphaudit.models model)")
    if not materialize:
        if measure or semantic:
            option = "measure" if measure else "semantic"
            raise ValueError(f"audit: {option}=True needs the separate form built; drop materialize=False")
        with paused_gc():
            return _counted_audit(cost, targets, commutative, sources)

    # Millions of new nodes, few of them garbage: a collection would walk them all, again and again.
    with paused_gc():
        start = time.perf_counter()
        separate = separate_grads(cost, targets)
        separate_seconds = time.perf_counter() - start
        start = time.perf_counter()
        joint = grad(cost, targets)
        joint_seconds = time.perf_counter() - start

        names = forward_names(topological_order([cost]))  # every forward node, so every backward node's origin
        report = compare_forms(
            separate,
            joint,
            wrt=[name_of(t, names) for t in targets],
            names=names,
            sources=_sources(sources, list(names)),
            build_seconds=(separate_seconds, joint_seconds),
            commutative=commutative,
            semantic=semantic,
        )
    if measure:
        report = dataclasses.replace(report, measured=_measure(report.forms, feed, repeats))
    return report


def _counted_audit(cost: Node, targets: list[Node], commutative: bool, sources: Mapping[Node, Source] | None) -> Report:
    start = time.perf_counter()
    joint, record = grad_with_record(cost, targets)
    joint_seconds = time.perf_counter() - start
    joint_merge, merge_seconds = _timed_merge(joint, commutative)
    names = forward_names(topological_order([cost]))
    labels = [GradCall.label_for([t.label]) for t in targets]
    sources = _sources(sources, list(names))
    separate_cost, duplicated = count_separate(cost, targets, joint, record, joint_merge, names, labels, top=TOP,
                                               sources=sources)
    return _counted_report(joint, (joint_seconds, merge_seconds), joint_merge, [name_of(t, names) for t in targets],
                           names, sources, separate_cost, duplicated, commutative)


def count_forms(
    joint: Sequence[Node],
    *,
    wrt: Sequence[str],
    names: dict[Node, str] | None = None,
    sources: Mapping[Node, Source] | None = None,
    build_seconds: float | None = None,
    commutative: bool = False,
    retraced_forward: bool = False,
) -> Report:
    """:func:`compare_forms` with the separate form counted from the joint form, not built.

    ``joint[i]`` is the joint call's gradient for ``wrt[i]``. One call per parameter runs
    exactly the part of the joint backward its gradient depends on
    (:mod:`graphaudit.analysis.joint_counting`), so a front-end traces the forward and the
    joint call only: one trace instead of one per parameter. ``retraced_forward=True``: each separate
    call traces the forward again, as some frameworks' grad does (its part of it: the forward ancestors
    of its gradient), so the separate form holds a copy of the forward per call.
    """
    joint = list(joint)
    if len(joint) != len(wrt):
        raise ValueError(f"count_forms: {len(joint)} joint outputs for {len(wrt)} wrt")
    with paused_gc():
        joint_merge, merge_seconds = _timed_merge(joint, commutative)
        if names is None:
            names = forward_names(topological_order(joint))
        sources = dict(sources) if sources is not None else {}
        labels = [GradCall.label_for([w]) for w in wrt]
        separate_cost, duplicated = separate_from_joint(joint, joint_merge, names, labels, top=TOP, sources=sources,
                                                        retraced_forward=retraced_forward)
        return _counted_report(joint, (build_seconds, merge_seconds), joint_merge, list(wrt), names, sources,
                               separate_cost, duplicated, commutative)


def _counted_report(joint: list[Node], seconds: tuple, joint_merge: MergeResult, wrt: list[str],
                    names: dict[Node, str], sources: dict, separate_cost, duplicated: dict,
                    commutative: bool) -> Report:
    """A report whose separate form was counted: it has no graph, and merge(separate) is merge(joint)."""
    joint_costs = MergedNodeCosts(joint_merge)
    joint_cost, merged_cost = merge_costs(joint_merge, joint_costs)
    forms = {
        "separate": Form(None, separate_cost, None),
        "joint": Form(joint, joint_cost, seconds[0]),
        "separate_merged": Form(joint_merge.outputs, merged_cost, None),
        "joint_merged": Form(joint_merge.outputs, merged_cost, seconds[1]),
    }
    return Report(
        kind="grad",
        wrt=wrt,
        forms=forms,
        audited_form="separate",
        merges={"joint": joint_merge},
        duplicated=duplicated,
        joint_duplicates=duplicated_work(joint_merge, names, sources=sources, costs=joint_costs, top=0),
        merged_equals_joint=None,
        measured=None,
        names=names,
        sources=sources,
        commutative=commutative,
        materialized=False,
    )


def compare_forms(
    separate: Sequence[Node],
    joint: Sequence[Node],
    *,
    wrt: Sequence[str],
    names: dict[Node, str] | None = None,
    sources: Mapping[Node, Source] | None = None,
    build_seconds: tuple[float | None, float | None] = (None, None),
    commutative: bool = False,
    semantic: bool = False,
) -> Report:
    """The comparison behind :func:`audit`, for gradient forms built elsewhere.

    ``separate[i]`` and ``joint[i]`` are the gradients for ``wrt[i]``, built by one call
    per parameter and by one joint call. Framework front-ends import both and call this,
    with ``names`` and ``sources`` (the user's line of forward nodes, and of backward ones
    where the framework records it) read from the framework's graph.
    """
    separate, joint = list(separate), list(joint)
    if len(separate) != len(joint) or len(separate) != len(wrt):
        raise ValueError(f"compare_forms: {len(separate)} separate, {len(joint)} joint outputs for {len(wrt)} wrt")
    with paused_gc():
        separate_merge, separate_merge_seconds = _timed_merge(separate, commutative)
        joint_merge, joint_merge_seconds = _timed_merge(joint, commutative)
        # Merging is transitive: the merged forms merge together exactly when the forms do.
        both = merge(separate_merge.outputs + joint_merge.outputs, commutative=commutative)
        merged_separate, merged_joint = both.outputs[: len(separate)], both.outputs[len(separate):]
        merged_equals_joint = all(a is b for a, b in zip(merged_separate, merged_joint))  # then all they reach too
        merged_difference = _difference(merged_separate, merged_joint)
        if names is None:
            names = forward_names(topological_order(separate + joint))
        sources = _sources(sources, separate_merge.source + joint_merge.source)
        separate_costs, joint_costs = MergedNodeCosts(separate_merge), MergedNodeCosts(joint_merge)
        separate_cost, separate_merged_cost = merge_costs(separate_merge, separate_costs)
        joint_cost, joint_merged_cost = merge_costs(joint_merge, joint_costs)
        duplicated = duplicated_work(separate_merge, names, sources=sources, costs=separate_costs)
        joint_duplicates = duplicated_work(joint_merge, names, sources=sources, costs=joint_costs, top=0)
        extra, removed = _semantic(separate_merge, separate, names) if semantic else (None, ())
    forms = {
        "separate": Form(separate, separate_cost, build_seconds[0]),
        "joint": Form(joint, joint_cost, build_seconds[1]),
        "separate_merged": Form(separate_merge.outputs, separate_merged_cost, separate_merge_seconds),
        "joint_merged": Form(joint_merge.outputs, joint_merged_cost, joint_merge_seconds),
    }
    return Report(
        kind="grad",
        wrt=list(wrt),
        forms=forms,
        audited_form="separate",
        merges={"separate": separate_merge, "joint": joint_merge},
        duplicated=duplicated,
        joint_duplicates=joint_duplicates,
        merged_equals_joint=merged_equals_joint,
        measured=None,
        names=names,
        sources=sources,
        commutative=commutative,
        semantic=extra,
        semantic_duplicates=removed,
        merged_difference=merged_difference,
    )


def audit_graph(outputs: Node | Sequence[Node], *, commutative: bool = False, semantic: bool = False,
                sources: Mapping[Node, Source] | None = None) -> Report:
    """What merging removes from any graph (forms ``original`` and ``original_merged``), by op and provenance.

    With ``semantic=True``, also what equality saturation removes beyond that (``report.semantic``).
    ``sources`` as for :func:`audit`.
    """
    outputs = [outputs] if isinstance(outputs, Node) else check_nodes(outputs, "audit_graph: outputs")
    if not outputs:
        raise ValueError("audit_graph: outputs is empty")
    with paused_gc():
        result, seconds = _timed_merge(outputs, commutative)
        names = forward_names(result.source)
        sources = _sources(sources, result.source)
        costs = MergedNodeCosts(result)
        original_cost, merged_cost = merge_costs(result, costs)
        duplicated = duplicated_work(result, names, sources=sources, costs=costs)
        extra, removed = _semantic(result, outputs, names) if semantic else (None, ())
    forms = {
        "original": Form(outputs, original_cost, None),
        "original_merged": Form(result.outputs, merged_cost, seconds),
    }
    return Report(
        kind="graph",
        wrt=[],
        forms=forms,
        audited_form="original",
        merges={"original": result},
        duplicated=duplicated,
        joint_duplicates=None,
        merged_equals_joint=None,
        measured=None,
        names=names,
        sources=sources,
        commutative=commutative,
        semantic=extra,
        semantic_duplicates=removed,
    )


def _sources(given: Mapping[Node, Source] | None, nodes: list[Node]) -> dict[Node, Source]:
    """The sources given (checked), else the lines graphaudit noted as it built the forward nodes
    among ``nodes`` and their backward nodes' origins (which a graph of gradients may not reach)."""
    if given is None:
        forward = dict.fromkeys(n for n in nodes if n.call is None and not n.is_leaf)
        forward.update(dict.fromkeys(n.origin for n in nodes if n.origin is not None))
        return recorded_sources(forward)
    for node, source in given.items():
        if not isinstance(node, Node):
            raise TypeError(f"sources: a key is {culprit(node)}, not a graphaudit Node")
        if not isinstance(source, Source):
            raise TypeError(f"sources[{node!r}] is {culprit(source)}, not a graphaudit Source(file, line, code)")
    return dict(given)


def _semantic(syntactic: MergeResult, outputs: list[Node], names: dict[Node, str]) -> tuple[dict, tuple[Node, ...]]:
    """What a semantic merge of ``outputs`` removes beyond ``syntactic``: the report's figures, and the nodes."""
    semantic = merge(outputs, semantic=True)
    removed = tuple(syntactic.source[p] for p in removed_positions(syntactic, semantic).tolist())
    return semantic_work(syntactic, semantic, names), removed


def _timed_merge(outputs: list[Node], commutative: bool) -> tuple[MergeResult, float]:
    start = time.perf_counter()
    result = merge(outputs, commutative=commutative)
    return result, time.perf_counter() - start


def _difference(left: list[Node], right: list[Node]) -> dict:
    """What only one of two merged graphs holds (operations; leaves differ only under them): how many
    nodes each side alone holds, their FLOPs and bytes, how many are views, and the counts by op."""
    left_nodes, right_nodes = topological_order(left), topological_order(right)
    left_ids, right_ids = {id(n) for n in left_nodes}, {id(n) for n in right_nodes}
    sides = {"separate_only": [n for n in left_nodes if not n.is_leaf and id(n) not in right_ids],
             "joint_only": [n for n in right_nodes if not n.is_leaf and id(n) not in left_ids]}
    differing = [*sides["separate_only"], *sides["joint_only"]]
    ops: dict[str, dict[str, int]] = {}
    for side, nodes in sides.items():
        for node in nodes:
            entry = ops.setdefault(node.op, {"separate_only": 0, "joint_only": 0})
            entry[side] += 1
    return {
        "separate_only": len(sides["separate_only"]),
        "joint_only": len(sides["joint_only"]),
        "flops": sum(map(node_flops, differing)),
        "bytes": sum(map(node_bytes, differing)),
        "views": sum(get_op(n.op).view for n in differing),
        "ops": dict(sorted(ops.items())),
    }


def _measure(forms: dict[str, Form], feed: Mapping, repeats: int) -> dict:
    """Median numpy run time of each form, and how far separate and joint gradients differ."""
    if repeats < 1:
        raise ValueError(f"audit: repeats must be >= 1, got {repeats}")
    runs = {name: Run(functools.partial(evaluate, forms[name].outputs, feed), versus=versus)
            for name, versus in (("separate", "joint"), ("joint", None), ("separate_merged", "joint"))}
    return measure("numpy run time", runs, repeats)
