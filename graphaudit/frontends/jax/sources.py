"""The user's line of each imported JAX equation, and the forward node a backward equation belongs to.

JAX records where every equation was traced (``eqn.source_info.traceback``), and the
equations ``jax.grad`` transposes keep the traceback of the forward expression they
differentiate: a backward equation points at the user's forward line, exactly as a
backward node's line should (:mod:`graphaudit.core.source`). So every node gets its own
equation's line.

The *site* of an equation is the user's part of its traceback, as code objects and
bytecode offsets (``raw_frames``): the expression (``x @ w``, not only its line) and every
user call around it, so a helper called for two layers makes two sites. Consecutive
forward equations at one site are one *occurrence* of it (``jnp.tanh`` traces ``tanh``
and the ``1 - y**2`` it keeps for the backward pass); a Python loop makes one occurrence
per pass. A backward equation's ``origin`` is its site's occurrence: the only one, else
the one whose nodes or inputs it reads, else that of a backward input at the same site;
when none of those decides, it has no origin (its line is still known). Separate traces
re-trace the same forward: an occurrence is named by its site and index, and every trace
points at the node the first import made for it, so ``by_forward_node`` rows add up over
the traces.

An equation traced by graphaudit itself (a scan's slicing) is nobody's line: the first
frame outside JAX must be the user's, not graphaudit's.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

from graphaudit.core.graph import Node
from graphaudit.frontends import require
from graphaudit.frontends.jax.ops import INLINED
from graphaudit.core.source import Source, is_library_file

_GRAPHAUDIT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))) + os.sep

Site = tuple  # ((code, lasti), ...) from the innermost user frame outwards


class EquationSources:
    """What :func:`~.importer.from_jaxpr` fills as it imports: ``sources`` (node -> the user's line),
    and the occurrences that give backward nodes their ``origin``. Pass one to every trace of an audit."""

    def __init__(self) -> None:
        self.sources: dict[Node, Source] = {}
        self.first_import: dict[tuple[Site, int], list[Node]] = {}  # (site, occurrence) -> the first trace's nodes
        self.traces = 0
        self._lines: dict[tuple[str, int], Source] = {}
        self._current: tuple[Site, Source] | None = None  # the equation being imported: its site and line,
        self._current_inputs: Sequence[Node] = ()  # its inputs,
        self._current_backward = False  # whether it is backward,
        self._current_occurrence: int | None = None  # (backward) the occurrence it differentiates,
        self._current_live = True  # and whether the trace's outputs need it

    def new_trace(self, jaxpr: Any) -> None:
        """Start counting occurrences again: ``jaxpr`` is another trace of the same function."""
        self.traces += 1
        self._live = live_equations(jaxpr, [True] * len(jaxpr.outvars))  # ids of the equations its outputs need
        self._occurrences: dict[Site, list[set[Node]]] = {}  # site -> per occurrence, its nodes and inputs
        self._last_forward: Site | None = None
        self._backward_occurrence: dict[Node, tuple[Site, int]] = {}

    def site(self, eqn: Any) -> tuple[Site, Source] | None:
        """The equation's site and line; None when no user frame made it."""
        traceback = eqn.source_info.traceback
        if traceback is None:
            return None
        codes, offsets = traceback.raw_frames()
        for position, code in enumerate(codes):
            filename = code.co_filename
            if is_library_file(filename):
                if _is_graphaudits(filename):
                    return None  # graphaudit traced it, not the user
                continue
            line = type(traceback).code_addr2line(code, offsets[position])
            source = self._lines.get((filename, line))
            if source is None:
                source = self._lines[(filename, line)] = Source.at(filename, line)
            return tuple(zip(codes[position:], offsets[position:])), source
        return None

    def enter(self, eqn: Any, inputs: Sequence[Node], backward: bool) -> Node | None:
        """Read the equation about to be imported; for a backward one, return its ``origin`` (None: undecided)."""
        self._current = self.site(eqn)
        self._current_live = id(eqn) in self._live
        self._current_inputs, self._current_backward = inputs, backward
        self._current_occurrence = None
        if self._current is None or not backward:
            return None
        site = self._current[0]
        self._current_occurrence = self._occurrence(site, inputs)
        return self._named((site, self._current_occurrence))

    def _named(self, occurrence: tuple[Site, int | None]) -> Node | None:
        """The node that stands for an occurrence: the first trace's first that its outputs need (a
        ``jax.grad`` trace keeps the primal ``y ** 2`` it never uses beside the ``2 * y`` it does)."""
        nodes = self.first_import.get(occurrence)
        return nodes[0] if nodes else None

    def made(self, nodes: Sequence[Node]) -> None:
        """Note the nodes the equation just entered made: their line, and the occurrence they belong to."""
        if self._current is None:
            if not self._current_backward:
                self._last_forward = None
            return
        site, source = self._current
        for node in nodes:
            self.sources[node] = source
        if self._current_backward:
            if self._current_occurrence is not None:
                for node in nodes:
                    self._backward_occurrence[node] = (site, self._current_occurrence)
            return
        occurrences = self._occurrences.setdefault(site, [])
        if self._last_forward != site or not occurrences:
            occurrences.append(set())
        key = (site, len(occurrences) - 1)
        if self.traces == 1 and self._current_live:
            self.first_import.setdefault(key, []).extend(nodes)
        occurrences[-1].update(nodes)
        occurrences[-1].update(self._current_inputs)
        self._last_forward = site

    def _occurrence(self, site: Site, inputs: Sequence[Node]) -> int | None:
        """Which occurrence of ``site`` a backward equation reading ``inputs`` differentiates, if that is decided."""
        occurrences = self._occurrences.get(site, [])
        if len(occurrences) == 1:
            return 0
        read = {k for k, members in enumerate(occurrences) if any(i in members for i in inputs)}
        if len(read) == 1:
            return read.pop()
        inherited = {found[1] for i in inputs if (found := self._backward_occurrence.get(i)) and found[0] == site}
        return inherited.pop() if len(inherited) == 1 else None


@functools.lru_cache(maxsize=None)
def _is_graphaudits(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_GRAPHAUDIT)


def live_equations(jaxpr: Any, used: Sequence[bool]) -> set[int]:
    """The ids of ``jaxpr``'s equations (and those of the calls it inlines) that its ``used`` outputs
    need, or that have effects: the rest is dead code a trace keeps (the loss beside its gradient)."""
    literal = require("jax.extend.core", "jax").Literal
    needed = {var for var, wanted in zip(jaxpr.outvars, used) if wanted and not isinstance(var, literal)}
    live: set[int] = set()
    for eqn in reversed(jaxpr.eqns):
        wanted = [not isinstance(var, literal) and var in needed for var in eqn.outvars]
        if not (any(wanted) or eqn.effects):
            continue
        live.add(id(eqn))
        key = INLINED.get(eqn.primitive.name)
        if key in eqn.params:
            sub = eqn.params[key]
            live |= live_equations(getattr(sub, "jaxpr", sub), wanted)
        needed.update(var for var in eqn.invars if not isinstance(var, literal))
    return live
