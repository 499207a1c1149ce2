"""What every front-end shares: its op table, hashable attrs, imported nodes, and its report section.

A front-end turns a framework's graph into graphaudit nodes (its *importer*), and says
how each framework op counts (its *table*: one :class:`ImportedOp` row per op, as netron
keeps one metadata file and tf2onnx one handler table per format). It audits by building
the framework's separate and joint forms, importing both, calling the core
:func:`graphaudit.compare_forms`, and attaching its :class:`FrameworkSection` to the
report with :func:`attach_section`. The report prints sections and names no framework.

The pieces, in the order an importer meets them:

- :class:`OpTable` registers ``prefix + key`` in the op registry the first time it is
  seen, with the row's kind, cost rule and numpy code (or the table's fallback, which
  runs the framework itself), and refuses a purity change.
- :func:`hashable_param` makes a framework op's parameters into attrs that hash, compare
  by value and look the same in every process; what is not a plain value becomes an
  :class:`Opaque`, compared by a digest of :func:`canonical_text`.
- :func:`imported_node` makes one node per output of a framework op (``output=i`` tells
  the outputs of a multi-output op apart) with its provenance passed explicitly.
- :class:`FrameworkSection` holds the framework's own figures (build-time spread, what its
  compiler keeps) and renders them; a front-end subclasses it for its own lines.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import hashlib
import re
import statistics
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from graphaudit.core.attrs import canonical_attrs
from graphaudit.core.describe import seconds_text
from graphaudit.errors import GraphauditError
from graphaudit.frontends import MissingFrameworkError
from graphaudit.core.graph import GradCall, Node, new_node
from graphaudit.core.ops import OPS, define_imported
from graphaudit.analysis.report import Report, Section

ATTR_OUTPUT = "output"  # which result of a multi-result op a node is


# --- the op table ----------------------------------------------------------------------------


class ImportedOp(NamedTuple):
    """One row of a front-end's op table: how graphaudit counts and runs one framework op.

    ``kind`` is the family (``"matmul"`` is the one reports single out); ``cost`` the FLOP
    rule (None: reported as "no cost rule", never dropped); ``impl`` numpy code called as
    ``impl(node, *arrays)`` (None: the table's fallback, which asks the framework); ``view``
    whether its output is a view of an input (a transpose, reshape, broadcast or basic
    slice): it writes no new buffer, so it costs no bytes; ``operand_text`` what a node of
    it works on, for reports (None: its input shapes, as for graphaudit's own ops); ``same_as``
    and ``swapped`` the forms semantic merging reads; ``matmul_cost`` and ``bound`` what a loop
    kept whole runs in products and whether its FLOPs are a bound (:class:`graphaudit.core.ops.Op`).
    """

    kind: str = "imported"
    cost: Callable[[Node], int] | None = None
    impl: Callable[..., np.ndarray] | None = None
    view: bool = False
    operand_text: Callable[[Node], str] | None = None
    same_as: Callable[[Node], tuple[str, tuple] | None] | None = None
    swapped: Callable[[Node], tuple[str, tuple, tuple[int, ...]]] | None = None
    matmul_cost: Callable[[Node], int] | None = None
    bound: Callable[[Node], str | None] | None = None


UNKNOWN = ImportedOp()


class OpTable:
    """A front-end's ops: ``prefix + key`` registered in graphaudit's op registry on first sight."""

    def __init__(self, prefix: str, rows: Mapping[str, ImportedOp], fallback_impl: Callable | None = None):
        self.prefix = prefix
        self.rows = dict(rows)
        self.fallback_impl = fallback_impl

    def row(self, key: str) -> ImportedOp:
        return self.rows.get(key, UNKNOWN)

    def op_name(self, key: str, *, pure: bool = True, row: ImportedOp | None = None, doc: str = "",
                pure_when: Callable[[Node], bool] | None = None) -> str:
        """The registered name of framework op ``key`` (``row`` overrides the table's row for it).

        ``pure_when``, for an impure op, picks the calls that are deterministic after all
        (:attr:`graphaudit.core.ops.Op.pure_when`).

        Registered once. An op first seen with side effects stays impure when seen without
        (that only keeps its nodes apart); one first seen pure and now with side effects is
        refused, since nodes of it may already have merged.
        """
        name = self.prefix + key
        existing = OPS.get(name)
        if existing is None:
            row = row if row is not None else self.row(key)
            define_imported(name, kind=row.kind, cost=row.cost, impl=row.impl or self.fallback_impl, pure=pure,
                            doc=doc, view=row.view, operand_text=row.operand_text, same_as=row.same_as,
                            swapped=row.swapped, pure_when=None if pure else pure_when,
                            matmul_cost=row.matmul_cost, bound=row.bound)
        elif existing.pure and not pure:
            raise ValueError(f"op {key!r} has side effects here but was imported as pure before")
        return name


# --- params as hashable attrs ----------------------------------------------------------------


class Opaque:
    """A param that is not a plain value (a sub-graph, an array, a callable): equal when digests are.

    ``value`` is the original object (given back to the framework when evaluating);
    ``digest`` a blake2b of its canonical text, the same in every process.
    """

    __slots__ = ("value", "digest")

    def __init__(self, value: Any):
        self.value = value
        self.digest = hashlib.blake2b(canonical_text(value).encode(), digest_size=16).hexdigest()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    def __repr__(self) -> str:
        return f"<{type(self.value).__name__} {self.digest}>"


ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")

# Front-ends add the texts of their own objects here (a jaxpr, say): each rule returns a
# canonical text for the values it knows, None for the others.
TEXT_RULES: list[Callable[[Any, int], str | None]] = []


def canonical_text(value: Any, depth: int = 4) -> str:
    """A text that is equal for equal values and stable across processes (no addresses, no hash order)."""
    for rule in TEXT_RULES:
        text = rule(value, depth)
        if text is not None:
            return text
    if hasattr(value, "__array__") and hasattr(value, "shape") and hasattr(value, "dtype"):
        try:
            array = np.asarray(value)
        except TypeError:  # arrays numpy cannot hold (PRNG keys): their repr shows their data
            return f"{type(value).__qualname__}:{value!r}"
        digest = hashlib.blake2b(array.tobytes(), digest_size=16).hexdigest()
        return f"array({array.dtype.str}, {array.shape}, {digest})"
    if depth <= 0:
        return type(value).__qualname__
    inner = functools.partial(canonical_text, depth=depth - 1)
    if isinstance(value, Mapping):
        return "{" + ", ".join(sorted(f"{inner(k)}: {inner(v)}" for k, v in value.items())) + "}"
    if isinstance(value, (set, frozenset)):
        return "set(" + ", ".join(sorted(map(inner, value))) + ")"
    if isinstance(value, (list, tuple)):
        return f"{type(value).__qualname__}(" + ", ".join(map(inner, value)) + ")"
    if isinstance(value, functools.partial):
        return f"partial({inner(value.func)}, {inner(value.args)}, {inner(value.keywords)})"
    if isinstance(value, types.FunctionType):
        cells = [c.cell_contents for c in value.__closure__ or ()]
        code = value.__code__
        return (f"function({value.__module__}.{value.__qualname__}, {code.co_code.hex()}, "
                f"{inner(code.co_consts)}, {inner(cells)})")
    text = repr(value)
    if not ADDRESS.search(text):
        return f"{type(value).__qualname__}:{text}"
    state = getattr(value, "__dict__", None)
    return f"{type(value).__qualname__}({inner(state) if state is not None else ''})"


def hashable_param(value: Any) -> Any:
    """``value`` as a hashable attr that the framework still accepts back.

    Numbers, strings, dtypes and enums as they are (numpy scalars as Python ones), lists
    and tuples as tuples (named tuples keep their type), anything else with a value hash
    and an address-free repr as it is; the rest as an :class:`Opaque`, never by ``id()``.
    """
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, np.dtype, enum.Enum)):
        return value
    if isinstance(value, np.generic) and value.shape == ():
        return value.item()
    if isinstance(value, (list, tuple)):
        items = [hashable_param(v) for v in value]
        if any(isinstance(item, Opaque) for item in items):  # the framework must get the original back, whole
            return Opaque(value)
        return type(value)._make(items) if hasattr(type(value), "_fields") else tuple(items)
    value_hash = type(value).__hash__ not in (None, object.__hash__)
    if value_hash and not isinstance(value, (Mapping, set, frozenset)) and not ADDRESS.search(repr(value)):
        try:
            hash(value)
            return value
        except TypeError:
            pass
    return Opaque(value)


# --- imported nodes --------------------------------------------------------------------------


def imported_node(
    op: str,
    inputs: Sequence[Node],
    attrs: Sequence[tuple[str, Any]],
    shape: tuple[int, ...],
    dtype: np.dtype,
    *,
    call: GradCall | None,
    output: int | None = None,
    origin: Node | None = None,
) -> Node:
    """One node of an imported op: attrs in canonical form (:mod:`graphaudit.core.attrs`), ``output=i``
    for result ``i`` of a multi-result op, and provenance given here: ``call``, and ``origin`` when
    the framework says which forward op a backward node belongs to (PyTorch's ``seq_nr``)."""
    if output is not None:
        attrs = [*attrs, (ATTR_OUTPUT, output)]
    return new_node(op, tuple(inputs), canonical_attrs(attrs), shape, dtype, None, None, (call, origin))


# --- the framework's section of a report -----------------------------------------------------


def spread(times: Sequence[float]) -> dict[str, float]:
    """Median, mean, standard deviation, quartiles and range of measured ``times`` (seconds)."""
    ordered = sorted(times)
    quartiles = statistics.quantiles(ordered, n=4) if len(ordered) > 1 else [ordered[0]] * 3
    return {
        "median": statistics.median(ordered), "mean": statistics.fmean(ordered),
        "stdev": statistics.stdev(ordered) if len(ordered) > 1 else 0.0,
        "q1": quartiles[0], "q3": quartiles[2], "min": ordered[0], "max": ordered[-1],
    }


# How a front-end treated a loop (JAX's scans, PyTensor's Scans), in the words every report uses.
UNROLLED = "unrolled"
WHOLE = "whole, body x trip count"
DEFAULT_LOOP_BUDGET = 1_000_000  # nodes the unrolled forms may hold, all forms together


def loop_heading(loops: Mapping[str, Any], noun: str) -> list[str]:
    """The first lines of a section's ``loops:`` block: were the ``noun`` (scans) unrolled, and why."""
    if loops["unrolled"]:
        how = (f"{noun} unrolled for the analysis, step by step ({loops['unrolled_nodes']} nodes, within the budget "
               f"of {loops['budget']})")
    else:
        how = (f"{noun} imported whole, bodies compared by digest (unrolled they would make {loops['unrolled_nodes']} "
               f"nodes, over the budget of {loops['budget']})")
    return ["", f"loops: {how}"]


class FrameworkSection(Section):
    """A framework's figures in a report (``report.framework``; ``to_dict()["framework"]``).

    Keys every front-end may fill: ``name`` and ``version``; ``build_seconds`` (``repeats``,
    ``calls`` per form, a :func:`spread` per form, ``separate_over_joint``): the framework's
    own time to build the symbolic gradients; ``compile_check`` (``title`` and ``rows``, each
    ``graph`` and per form ``nodes``, ``dots`` and ``seconds``): what its compiler keeps.
    A front-end's subclass adds its own keys and lines.
    """

    @property
    def framework(self) -> str:
        return f"{self.get('name', 'framework')} {self.get('version', '')}".strip()

    def lines(self) -> list[str]:
        return self.build_lines() + self.compile_check_lines()

    def build_lines(self) -> list[str]:
        build = self.get("build_seconds")
        if not build:
            return []
        lines = ["", f"{self.framework}: time to build the symbolic gradients, {build['repeats']} builds of each form"]
        lines.append(f"  {'form':<10}{'calls':>6}{'median':>11}{'quartiles':>22}{'mean +- std':>22}{'min .. max':>22}")
        for form in ("joint", "separate"):
            s = build[form]
            lines.append(
                f"  {form:<10}{build['calls'][form]:>6}{seconds_text(s['median']):>11}"
                f"{seconds_text(s['q1']) + ' .. ' + seconds_text(s['q3']):>22}"
                f"{seconds_text(s['mean']) + ' +- ' + seconds_text(s['stdev']):>22}"
                f"{seconds_text(s['min']) + ' .. ' + seconds_text(s['max']):>22}"
            )
        lines.append(f"  separate / joint (medians): {build['separate_over_joint']:.2f}x")
        return lines

    def compile_check_lines(self) -> list[str]:
        check = self.get("compile_check")
        if not check:
            return []
        lines = ["", f"{check.get('title', 'compile check')} (op nodes / matmuls):"]
        lines.append(f"  {'graph':<44}{'separate':>20}{'joint':>20}")
        for row in check["rows"]:
            cells = []
            for form in ("separate", "joint"):
                r = row[form]
                took = f" {seconds_text(r['seconds'])}" if r.get("seconds") is not None else ""
                cells.append(f"{r['nodes']} / {r['dots']}{took}")
            lines.append(f"  {row['graph']:<44}{cells[0]:>20}{cells[1]:>20}")
        return lines


def attach_section(report: Report, section: Section) -> Report:
    """``report`` with ``section`` as its framework section (a new Report; the given one is unchanged)."""
    return dataclasses.replace(report, framework=section)


# --- the command line ------------------------------------------------------------------------


def a_type(value: Any) -> str:
    """``an int``, ``a tuple``: the type of ``value`` with its article, for one-line errors."""
    type_name = type(value).__name__
    return ("an " if type_name[:1].lower() in "aeiou" else "a ") + type_name


class TargetError(ValueError):
    """A command-line target that a front-end cannot audit, said in one line that names the culprit."""


@contextlib.contextmanager
def failures_in(framework: str, target_name: str):
    """A framework's own failure on a target (bad arguments, a trace or compile that fails) as one
    TargetError line; graphaudit's own errors and a missing framework pass through as they are."""
    try:
        yield
    except (MissingFrameworkError, GraphauditError):
        raise
    except Exception as exc:
        raise TargetError(f"auditing {target_name} with {framework} failed: {type(exc).__name__}: {exc}") from exc


def target_wrt(wrt: Any, kind: type, noun: str, name: str, returns: str) -> Any:
    """A target's ``wrt``: one ``kind`` as it is, or a non-empty list of them; else a TargetError.

    ``noun`` names one item (``"graphaudit Node"``), ``returns`` what the target should return.
    """
    if isinstance(wrt, (tuple, list)):
        bad = [i for i, item in enumerate(wrt) if not isinstance(item, kind)]
        if bad:
            raise TargetError(f"{name}: wrt[{bad[0]}] is {a_type(wrt[bad[0]])}, not a {noun}")
        if not wrt:
            raise TargetError(f"{name}: wrt is empty; return at least one {noun} to differentiate with respect to")
        return list(wrt)
    if not isinstance(wrt, kind):
        raise TargetError(f"{name} must return {returns}: wrt is {a_type(wrt)}, not a {noun} or a list of them")
    return wrt


@dataclasses.dataclass(frozen=True)
class CliFrontend:
    """How ``graphaudit audit file.py:function`` reaches a front-end.

    The command line calls the target function, then asks each front-end in turn whether
    it ``recognise``\\ s what the function returned; the first that does ``run``\\ s it with
    the command line's analysis options. An option given that the front-end does not list
    in ``options`` is refused with one line, never silently ignored. ``--help`` shows each
    front-end's ``example``.
    """

    name: str  # how messages name the front-end's targets: "JAX"
    returns: str  # what a target function returns for it: "(fn, args, argnums) for a JAX function"
    options: frozenset[str]  # the analysis options it honours: measure, repeats, commutative, count, xla, ...
    # what the function returned -> this front-end's target; None: not this front-end's;
    # TargetError: this front-end's, but malformed
    recognise: Callable[[Any, str], Any | None]
    # audit the target, the options by name; TargetError when the framework fails on it
    run: Callable[[Any, Mapping[str, Any]], Report]
    example: str  # a target of it in this repository, for --help: "examples/jax_seed_mlp.py:target"
    # the framework's module and the graphaudit extra that installs it ("" for graphaudit's own graphs):
    # a target file that cannot import it is told which extra to install
    module: str = ""
    extra: str = ""
