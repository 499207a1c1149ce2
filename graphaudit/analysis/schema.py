"""The JSON schema of ``Report.to_dict()``, as TypedDicts, and a checker of data against them.

Every value is a JSON type; FLOPs and bytes are integers. ``to_dict(timings=False)`` sets
every measured time (the keys naming ``seconds``, and the ratios of times) to None: what is
left is the same in every run. A front-end's section declares its own keys with a TypedDict
of its own, named by its class's ``schema`` (:class:`graphaudit.analysis.report.Section`).
:func:`mismatches` checks data against any of these, recursively: a test checks real reports.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, TypedDict, Union

# --- the forms ---------------------------------------------------------------------------


class FormData(TypedDict):
    """One form's cost (operations only: leaves are not counted)."""

    nodes: int
    backward_nodes: int  # nodes built by a grad call
    flops: int  # a bound, not a count, when ``bounds`` has any node
    backward_flops: int
    matmul_flops: int
    bytes: int  # written by operations (views write nothing)
    no_cost_rule: dict[str, int]  # op -> nodes whose FLOPs are unknown (imported ops without a rule)
    bounds: dict[str, int]  # "upper" / "lower" / "mixed" -> nodes whose FLOPs are a bound (loops costed whole)
    build_seconds: float | None  # the grad calls' time; a merged form's is the time merging took


class GradForms(TypedDict):
    """A grad report's forms: one grad call per parameter, one joint call, and each merged."""

    separate: FormData
    joint: FormData
    separate_merged: FormData
    joint_merged: FormData


class GraphForms(TypedDict):
    """A graph report's forms: the graph as given, and merged."""

    original: FormData
    original_merged: FormData


# --- the duplicated work -----------------------------------------------------------------


class SourceData(TypedDict):
    """The user's line that built a node (a backward node: the forward node whose vjp rule built it)."""

    file: str  # relative to the working directory when under it, with "/"
    line: int  # 1-based
    code: str  # the line's text, stripped; "" when the file could not be read


class OpWork(TypedDict):
    nodes: int
    flops: int
    bytes: int


class CallWork(TypedDict):
    """What one grad call rebuilt of work an earlier call had built ("forward": forward nodes)."""

    nodes: int
    flops: int
    matmul_flops: int


class ForwardNodeWork(TypedDict):
    """A forward node whose vjp rule ran in several grad calls."""

    op: str
    shape: list[int]
    calls: int  # grad calls that ran its rule
    rebuilt: int  # calls - 1
    nodes: int  # the duplicated nodes its rule built
    flops: int
    source: SourceData | None  # None: the line is not known (an importer that records none)


class TopRow(TypedDict):
    """One of the costliest duplicated subexpressions."""

    expression: str
    shapes: str  # its operands' shapes: "3x10 @ 10x4"
    op: str
    copies: int
    wasted_flops: int  # the FLOPs of copies - 1 of them
    calls: list[str]  # the grad call that built each copy
    source: SourceData | None  # the first copy's line; None when not known


class DuplicatedWork(TypedDict):
    """What merging removes from a form."""

    nodes: int
    flops: int
    matmul_flops: int
    bytes: int
    bounds: dict[str, int]  # as in FormData
    by_op: dict[str, OpWork]  # costliest first
    by_call: dict[str, CallWork]  # in the order of each call's first duplicate
    by_forward_node: dict[str, ForwardNodeWork]  # empty for imported graphs, whose nodes carry no vjp origin
    top: list[TopRow]


class OpSides(TypedDict):
    separate_only: int
    joint_only: int


class MergedDifference(TypedDict):
    """What only one of merge(separate) and merge(joint) holds (operations)."""

    separate_only: int
    joint_only: int
    flops: int
    bytes: int
    views: int  # how many of them are views (no FLOPs, no bytes: the same work, laid out differently)
    ops: dict[str, OpSides]


class Measured(TypedDict):
    """Median run times of each form, one shape for every audit (:mod:`graphaudit.analysis.timing`):
    numpy's evaluation of graphaudit's forms, eager PyTorch, jitted JAX."""

    what: str  # what was timed, in words: "numpy run time", "eager step ...", "jitted run time on cpu:0 ..."
    repeats: int
    seconds: dict[str, float | None]  # median seconds of each run, by run: "separate", "joint", ...
    versus: dict[str, str]  # the run each run is compared with in the text
    max_abs_difference: float  # between the separate and joint gradients


# --- what equality saturation finds beyond value numbering ----------------------------------


class SemanticExtra(TypedDict):
    nodes: int
    flops: int
    matmul_flops: int
    bytes: int
    merged: int  # nodes merged into an equal earlier one; the rest fed only those
    by_op: dict[str, OpWork]


class SaturationLimits(TypedDict):
    iterations: int
    nodes: int  # e-nodes
    time_limit_s: float


class Saturation(TypedDict):
    iterations: int
    stopped: str  # "saturated", or the limit that stopped it
    enodes: int
    limits: SaturationLimits
    associativity: bool
    load_seconds: float | None
    saturate_seconds: float | None


class SemanticTopRow(TypedDict):
    expression: str
    shapes: str
    equals: str  # the earlier node it was merged into
    flops: int


class SemanticWork(TypedDict):
    """``audit(..., semantic=True)``: the duplicated work beyond the syntactic figure."""

    syntactic_classes: int  # nodes after value numbering
    semantic_nodes: int  # nodes after the semantic merge
    extra: SemanticExtra
    rules_matched: dict[str, int]  # rule -> matches
    rounding_rules_matched: list[str]  # matched rules that hold only up to float rounding
    rounding_merges: int  # classes merged only by such rules
    saturation: Saturation
    top: list[SemanticTopRow]


# --- the report --------------------------------------------------------------------------


class Advice(TypedDict):
    """What to change, and what it saves (:mod:`graphaudit.analysis.advice`)."""

    what: str  # the finding, in one sentence
    rewrite: str  # what to write instead, in the framework's words (or that its compiler already recovers it)
    saves_flops: int  # separate vs joint: exactly the duplicated FLOPs
    saves_nodes: int  # separate vs joint: exactly the duplicated nodes
    where: list[SourceData]  # the distinct lines of the top duplicated subexpressions, costliest first


class _ReportKeys(TypedDict):
    kind: Literal["grad", "graph"]  # from audit / compare_forms, or from audit_graph
    wrt: list[str]  # the parameters, in order (empty for "graph")
    forms: GradForms | GraphForms
    duplicated: DuplicatedWork  # from the separate (or original) form
    joint_duplicates: DuplicatedWork | None  # the joint form's own (None for "graph"); top is empty
    merged_equals_joint: bool | None  # whether merge(separate) is exactly merge(joint); None unless both built
    merged_difference: MergedDifference | None  # None unless both were built
    measured: Measured | None  # None unless measure=True
    commutative: bool  # whether merging put commutative inputs in order
    materialized: bool  # False: the separate form was counted, not built (audit(..., materialize=False))
    advice: list[Advice]  # empty when nothing is repeated


class ReportData(_ReportKeys, total=False):
    """``Report.to_dict()``; the keys below are present only when the report has them."""

    semantic: SemanticWork
    framework: dict[str, Any]  # the front-end's section: its keys are its class's ``schema``


# --- checking data against a schema ------------------------------------------------------


def mismatches(value: Any, schema: Any, where: str = "data") -> list[str]:
    """Where ``value`` departs from ``schema`` (a TypedDict or a type expression), one line each;
    empty when it matches. Keys must be exactly the declared ones; ``float`` takes an int too."""
    if schema is Any:
        return []
    if typing.is_typeddict(schema):
        return _typeddict_mismatches(value, schema, where)
    origin, arguments = typing.get_origin(schema), typing.get_args(schema)
    if origin in (Union, types.UnionType):
        options = [option for option in arguments if option is not type(None)]
        if value is None:
            return [] if len(options) < len(arguments) else [f"{where}: None, not {_name(schema)}"]
        found = [mismatches(value, option, where) for option in options]
        return [] if [] in found else found[0] if len(found) == 1 else [f"{where}: matches none of {_name(schema)}"]
    if origin is Literal:
        return [] if any(type(value) is type(a) and value == a for a in arguments) else [
            f"{where}: {value!r}, not one of {arguments}"]
    if origin is dict:
        if type(value) is not dict:
            return [f"{where}: {type(value).__name__}, not a dict"]
        key_type, item_type = arguments
        return [line for key, item in value.items()
                for line in mismatches(key, key_type, f"{where} key") + mismatches(item, item_type, f"{where}[{key!r}]")]
    if origin is list:
        if type(value) is not list:
            return [f"{where}: {type(value).__name__}, not a list"]
        return [line for i, item in enumerate(value) for line in mismatches(item, arguments[0], f"{where}[{i}]")]
    accepted = (int, float) if schema is float else (schema,)
    return [] if type(value) in accepted else [f"{where}: {type(value).__name__} {value!r}, not {_name(schema)}"]


def _typeddict_mismatches(value: Any, schema: Any, where: str) -> list[str]:
    if type(value) is not dict:
        return [f"{where}: {type(value).__name__}, not a dict ({schema.__name__})"]
    declared = typing.get_type_hints(schema)
    found = [f"{where}: no key {key!r} ({schema.__name__})" for key in sorted(schema.__required_keys__ - set(value))]
    found += [f"{where}: undeclared key {key!r} ({schema.__name__})" for key in value if key not in declared]
    for key, item in value.items():
        if key in declared:
            found += mismatches(item, declared[key], f"{where}[{key!r}]")
    return found


def _name(schema: Any) -> str:
    if typing.get_origin(schema) in (Union, types.UnionType):
        return " | ".join(map(_name, typing.get_args(schema)))
    return getattr(schema, "__name__", str(schema))
