"""Semantic classes: which nodes compute equal values though written differently, by equality saturation.

:func:`semantic_classes` hands the graph to egglog and reads back, for every node, the
class of equal values it fell into; nothing is extracted. Steps:

1. **Load in bulk.** One row per node, written to tab-separated files and read by
   egglog's ``input`` (one command per node is quadratic in egglog): ``(N i)`` is node
   ``i``'s term, unioned with its structure ``(Op2 op attrs (N x) (N y))`` by one rule
   run over all rows at once. Leaves, impure ops, and ops with no inputs or more than
   three are opaque ``(Leaf i)``: equal only to what a rule proves equal to them.
2. **Saturate** with the exact rules of :mod:`graphaudit.analysis.rewrites`, then with all of
   them, one iteration at a time, stopping when nothing changes or at a limit
   (:class:`Limits`), whichever comes first. The class of each node after each stage
   tells which merges rest on rules that hold only up to rounding.
3. **Read** ``(Cls t)``, the smallest position in each class (a ``min`` merge), for
   every ``(N i)``: the classes, as positions into the graph like :attr:`MergeResult.canonical`.

egglog is optional (``pip install 'graphaudit[egraph]'``) and imported only here.
"""

from __future__ import annotations

import importlib
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from graphaudit.core.attrs import canonical_attrs
from graphaudit.errors import MissingExtraError
from graphaudit.core.graph import Node
from graphaudit.core.ops import get_op
from graphaudit.analysis.rewrites import ASSOCIATIVITY, RULES, Rule

SCHEMA = """
(datatype Term (Leaf i64) (Op1 String i64 Term) (Op2 String i64 Term Term) (Op3 String i64 Term Term Term))
(constructor N (i64) Term)
(function Ty (Term) i64 :merge old)
(function Cls (Term) i64 :merge (min old new))
(relation Zero (Term))
(relation One (Term))
(relation Matrix (i64))
(relation SwapAxes (i64))
(relation IdentityPerm (i64))
(relation InversePerms (i64 i64))
(relation NoAttrs (i64))
(relation Square (i64))
(relation DotSwap (i64 String i64 i64))
(relation Row0 (i64 i64))
(relation Row1 (i64 String i64 i64 i64))
(relation Row2 (i64 String i64 i64 i64 i64))
(relation Row3 (i64 String i64 i64 i64 i64 i64))
(relation ZeroRow (i64))
(relation OneRow (i64))
(ruleset load)
(rule ((Row0 i t)) ((union (N i) (Leaf i)) (set (Ty (N i)) t) (set (Cls (N i)) i)) :ruleset load)
(rule ((Row1 i op a t x)) ((union (N i) (Op1 op a (N x))) (set (Ty (N i)) t) (set (Cls (N i)) i)) :ruleset load)
(rule ((Row2 i op a t x y)) ((union (N i) (Op2 op a (N x) (N y))) (set (Ty (N i)) t) (set (Cls (N i)) i))
      :ruleset load)
(rule ((Row3 i op a t x y z)) ((union (N i) (Op3 op a (N x) (N y) (N z))) (set (Ty (N i)) t) (set (Cls (N i)) i))
      :ruleset load)
(rule ((ZeroRow i)) ((Zero (N i))) :ruleset load)
(rule ((OneRow i)) ((One (N i))) :ruleset load)
(ruleset exact)
(ruleset rounding)
(function Canon (i64) i64 :merge new)
(ruleset read)
(rule ((= c (Cls (N i)))) ((set (Canon i) c)) :ruleset read)
"""


@dataclass(frozen=True)
class Limits:
    """When saturation stops early: after ``iterations`` rounds of rules, or once the e-graph holds
    more than ``nodes`` e-nodes or has run ``seconds`` (both checked after each round)."""

    iterations: int = 12
    nodes: int = 2_000_000
    seconds: float = 60.0


@dataclass
class Saturation:
    """What saturating did: rounds run, why it stopped, e-graph size, which rules matched, times."""

    iterations: int = 0
    stopped: str = "saturated"  # or "iteration limit", "node limit", "time limit"
    enodes: int = 0
    matches: dict[str, int] = field(default_factory=dict)  # rule name -> matches (rules that matched)
    rounding_merges: int = 0  # classes merged only once rules that hold up to rounding ran
    load_seconds: float = 0.0
    saturate_seconds: float = 0.0
    limits: Limits = field(default_factory=Limits)
    associativity: bool = False


def semantic_classes(source: list[Node], canonical: np.ndarray, leaf: np.ndarray, *, limits: Limits | None = None,
                     associativity: bool = False, rules: tuple[Rule, ...] | None = None
                     ) -> tuple[np.ndarray, np.ndarray, Saturation]:
    """The classes of equal values over ``source`` (in topological order), refining ``canonical``.

    ``canonical`` are syntactic classes (value numbering's): only their first nodes are
    loaded. Returns the classes with the exact rules only, with all rules, and what saturation did.
    """
    bindings = _egglog()
    limits = limits or Limits()
    rules = (RULES + (ASSOCIATIVITY if associativity else ())) if rules is None else rules
    stats = Saturation(limits=limits, associativity=associativity)
    egraph = bindings.EGraph()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="graphaudit-egraph-") as folder:
        loaded = _load(egraph, source, canonical, leaf, Path(folder))
    stats.load_seconds = time.perf_counter() - start
    program = "".join(_in_ruleset(rule) + "\n" for rule in rules)
    egraph.run_program(*egraph.parse_program(program))
    start = time.perf_counter()
    _saturate(egraph, "(run exact 1)", stats, start)
    exact = full = _read(egraph, canonical)
    if any(not rule.exact for rule in rules) and stats.stopped == "saturated":
        _saturate(egraph, "(run-schedule (seq (run exact) (run rounding)))", stats, start)
        full = _read(egraph, canonical)
    stats.saturate_seconds = time.perf_counter() - start
    stats.rounding_merges = _count_classes(exact[loaded]) - _count_classes(full[loaded])
    stats.matches = {rule.name: stats.matches[rule.name] for rule in rules if stats.matches.get(rule.name)}
    _check_types(source, full)
    return exact, full, stats


def _in_ruleset(rule: Rule) -> str:
    """The rule's text with its ruleset (``exact`` or ``rounding``) and name before its closing parenthesis."""
    return f"{rule.text[:-1]} :ruleset {'exact' if rule.exact else 'rounding'} :name \"{rule.name}\")"


def _egglog():
    try:
        return importlib.import_module("egglog.bindings")
    except ImportError as error:
        raise MissingExtraError(f"semantic merging needs egglog, which is not installed: "
                          f"pip install 'graphaudit[egraph]' ({error})") from error


def _load(egraph, source: list[Node], canonical: np.ndarray, leaf: np.ndarray, folder: Path) -> np.ndarray:
    """Write one row per syntactic class and load them all with one run of the load rules."""
    kept = np.flatnonzero(canonical == np.arange(len(source)))
    position = {node.id: p for p, node in enumerate(source)}
    attrs_ids: dict = {(): 0}
    perms: dict[int, tuple[int, ...]] = {}  # attrs number -> the axes of a transpose
    types: dict = {}
    rows: list[list[str]] = [[], [], [], []]
    zeros, ones, dots = [], [], []
    for p in kept.tolist():
        node = source[p]
        t = types.setdefault((node.shape, node.dtype.str), len(types))
        op = node.op
        ins = node.inputs
        if leaf[p] or not ins or len(ins) > 3 or not get_op(op).is_pure(node):
            rows[0].append(f"{p}\t{t}")
            if op == "constant" and node.value.size and not np.any(node.value):
                zeros.append(p)
            elif op == "constant" and node.value.size and np.all(node.value == 1):
                ones.append(p)
            continue
        attrs = node.attrs
        spec = get_op(op)
        if spec.same_as is not None:  # an imported op that is one of graphaudit's: load it as that
            op, attrs = spec.same_as(node) or (op, attrs)
        a = attrs_ids.setdefault(attrs, len(attrs_ids))
        if op == "transpose":
            perms[a] = dict(attrs)["axes"]
        elif op == node.op and spec.swapped is not None:
            swapped_op, swapped, perm = spec.swapped(node)
            q = attrs_ids.setdefault(canonical_attrs([("axes", perm)]), len(attrs_ids))
            perms[q] = perm
            dots.append(f"{p}\t{swapped_op}\t{attrs_ids.setdefault(swapped, len(attrs_ids))}\t{q}")
        args = "\t".join(str(int(canonical[position[i.id]])) for i in ins)
        rows[len(ins)].append(f"{p}\t{op}\t{a}\t{t}\t{args}")
    commands = []
    for name, lines in [("Row0", rows[0]), ("Row1", rows[1]), ("Row2", rows[2]), ("Row3", rows[3]),
                        ("ZeroRow", map(str, zeros)), ("OneRow", map(str, ones)), ("DotSwap", dots)]:
        path = folder / f"{name}.tsv"
        path.write_text("".join(line + "\n" for line in lines))
        commands.append(f'(input {name} "{path}")')
    commands += [f"(Matrix {t})" for (shape, _), t in types.items() if len(shape) == 2]
    commands += _attr_facts(attrs_ids, perms)
    commands.append("(run load 1)")
    egraph.run_program(*egraph.parse_program(SCHEMA + "\n".join(commands)))
    return kept


def _attr_facts(attrs_ids: dict, perms: dict[int, tuple[int, ...]]) -> list[str]:
    """The facts about attrs that rules ask for: which are empty, which transposes undo which."""
    swap = canonical_attrs([("axes", (1, 0))])
    attrs_ids.setdefault(swap, len(attrs_ids))
    facts = ["(NoAttrs 0)", f"(SwapAxes {attrs_ids[swap]})"]
    facts += [f"(Square {a})" for attrs, a in attrs_ids.items() if attrs == (("y", 2),)]
    for a, p in perms.items():
        if list(p) == list(range(len(p))):
            facts.append(f"(IdentityPerm {a})")
        for b, q in perms.items():
            if len(p) == len(q) and all(p[q[i]] == i for i in range(len(q))):
                facts.append(f"(InversePerms {a} {b})")
    return facts


def _saturate(egraph, command: str, stats: Saturation, start: float) -> None:
    """Run ``command`` (one round) until nothing changes or a limit is reached; tally matches."""
    parsed = egraph.parse_program(command + "\n(print-size)")
    limits = stats.limits
    stats.stopped = "saturated"
    while True:
        if stats.iterations >= limits.iterations:
            stats.stopped = "iteration limit"
            return
        run, size = egraph.run_program(*parsed)
        stats.iterations += 1
        for rule, count in run.report.num_matches_per_rule.items():
            stats.matches[rule] = stats.matches.get(rule, 0) + count
        stats.enodes = sum(count for name, count in size.sizes if name in ("Leaf", "Op1", "Op2", "Op3"))
        if not run.report.updated:
            return
        if stats.enodes > limits.nodes:
            stats.stopped = "node limit"
            return
        if time.perf_counter() - start > limits.seconds:
            stats.stopped = "time limit"
            return


def _read(egraph, canonical: np.ndarray) -> np.ndarray:
    """Every node's class: the smallest position among the loaded nodes of its e-class."""
    egraph.run_program(*egraph.parse_program("(run read 1)"))
    to_int = egraph.value_to_i64
    rows = egraph.freeze().functions["Canon"].rows
    first = np.arange(len(canonical))
    first[[to_int(row.inputs[0]) for row in rows]] = [to_int(row.output) for row in rows]
    return first[canonical]


def _count_classes(classes: np.ndarray) -> int:
    return len(np.unique(classes))


def _check_types(source: list[Node], classes: np.ndarray) -> None:
    """A class holds one shape and dtype: a rule that merged two would be wrong, so say so loudly."""
    for p in np.flatnonzero(classes != np.arange(len(classes))).tolist():
        c = int(classes[p])
        if source[p].shape != source[c].shape or source[p].dtype != source[c].dtype:
            raise AssertionError(f"semantic merging put {source[p]!r} and {source[c]!r} in one class")
