"""Replaying vjp rules and grad calls: the separate form's backward nodes, made again without re-deriving them.

The separate form runs the same vjp rules over and over: every ``grad(cost, w)`` call
whose path crosses a forward node runs that node's rule again. What a rule builds
depends only on the forward node, on which of its inputs are wanted, and on the shape
and dtype of the adjoint ``g`` it receives (rules look at ``g`` through ops, which read
shapes and dtypes). So the first run is recorded as a recipe: each node it built, as
op, attrs, shape, dtype (and a leaf's name and value), with its inputs named as "built
earlier in this recipe", "the adjoint ``g``", or a node from outside. Later calls follow
the recipe: the same fresh nodes, in the same creation order, with the provenance of the
call that makes them, but without running shape inference and the rule's logic again.

Consecutive separate calls also share most of their turns: ``grad(cost, w2)`` walks the
same forward nodes from the cost down, with the same adjoints, as ``grad(cost, w1)`` did,
until it nears the layers where their paths differ. :class:`CallReplays` keeps earlier
calls' turns as flat lists of steps and makes a call's shared turns in one tight loop,
without the per-turn work of :func:`graphaudit.grad` (summing, looking up the rule and its
recipe, routing the adjoints); the call goes on turn by turn from there.

The graph is the same, node for node (``tests/test_replay.py`` compares them); only the
making is faster.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import islice
from operator import itemgetter
from typing import NamedTuple

import numpy as np

from graphaudit.core.graph import GradCall, Node, made_since, new_id_mark, new_node

Rule = Callable[[Node, Node, tuple[bool, ...]], Sequence[Node | None]]


class _Step(NamedTuple):
    op: str
    take: Callable[[list[Node]], tuple[Node, ...]]  # its inputs, from the recipe's list of nodes
    attrs: tuple
    shape: tuple[int, ...]
    dtype: np.dtype
    name: str | None
    value: np.ndarray | None


class _Recipe(NamedTuple):
    """Following a recipe fills a list: ``[g, *outside, *one node per step]``; all refer to it by index."""

    outside: tuple[Node, ...]
    steps: tuple[_Step, ...]
    results: tuple[int | None, ...]  # per input of the forward node: its adjoint's index, or None


class RuleReplays:
    """Recipes of the vjp rules run so far over one cost's graph, keyed by what they depend on."""

    def __init__(self) -> None:
        self.recipes: dict[tuple, _Recipe] = {}

    def run(self, rule: Rule, node: Node, g: Node, wanted: tuple[bool, ...]) -> list[Node | None]:
        """``rule(node, g, wanted)``: the first time run and recorded, then replayed."""
        key = (node, wanted, g.shape, g.dtype)
        recipe = self.recipes.get(key)
        if recipe is not None:
            return _follow(recipe, g)
        start = new_id_mark()
        adjoints = list(rule(node, g, wanted))
        self.recipes[key] = _record(adjoints, g, start)
        return adjoints


def _record(adjoints: list[Node | None], g: Node, start: int) -> _Recipe:
    """The recipe of the nodes behind ``adjoints`` made after the id mark ``start``."""
    built = made_since(adjoints, start)
    index = {g: 0}  # positions in the list that following the recipe fills
    outside: list[Node] = []
    # Inputs the rule did not build (forward nodes), and adjoints it passed on unchanged.
    for source in [i for n in built for i in n.inputs] + [a for a in adjoints if a is not None]:
        if source.id <= start and source not in index:
            index[source] = len(index)
            outside.append(source)
    for node in built:
        index[node] = len(index)
    steps = tuple(
        _Step(n.op, _taker([index[i] for i in n.inputs]), n.attrs, n.shape, n.dtype, n.name, n.value) for n in built
    )
    return _Recipe(tuple(outside), steps, tuple(None if a is None else index[a] for a in adjoints))


def _taker(indices: list[int]) -> Callable[[list[Node]], tuple[Node, ...]]:
    if len(indices) >= 2:
        return itemgetter(*indices)  # gives a tuple
    if len(indices) == 1:
        (only,) = indices
        return lambda made: (made[only],)
    return _no_inputs


def _no_inputs(made: list[Node]) -> tuple[()]:
    return ()


def _follow(recipe: _Recipe, g: Node) -> list[Node | None]:
    made = [g, *recipe.outside]
    append = made.append
    for op, take, attrs, shape, dtype, name, value in recipe.steps:
        append(new_node(op, take(made), attrs, shape, dtype, name, value))
    return [None if i is None else made[i] for i in recipe.results]


class _CallLog(NamedTuple):
    """A grad call, replayable (see :class:`CallReplays`): its steps, its turns, and the routes its adjoints took."""

    on_path: np.ndarray  # per forward node (in topological order): whether it was on the call's path
    steps: list[tuple]  # per node made, oldest first: op, take, attrs, shape, dtype, name, value, origin
    ends: list[int]  # per turn: how many steps were made by its end
    nodes: list[Node]  # per turn: the forward node whose adjoint was summed and handed down
    negated_ids: np.ndarray  # per turn: minus that node's id (increasing: turns go from the newest node down)
    totals: np.ndarray  # per turn: the summed adjoint
    route_ends: list[int]  # per turn: how many routes were taken by its end
    sources: list[Node]  # per route: the input an adjoint was handed to
    source_ids: np.ndarray  # per route: that input's id
    adjoints: list[int]  # per route: the adjoint


class CallReplays:
    """Separate grad calls over one cost, each replaying the turns it shares with an earlier call.

    Nodes are named by their index in the list a replay fills: the cost's forward nodes
    (in topological order) first, then the call's nodes as it made them. A grad call runs
    :meth:`begin` (which replays the shared turns and says which turns are left),
    :meth:`turn` after each turn it runs itself, and :meth:`end`.

    Which turns are shared: a turn depends on its forward node, on which of that node's
    inputs are on the call's path (the "wanted" mask), and on what earlier turns handed
    down. Two calls whose paths differ in the nodes ``D`` take the same turns, in the same
    order, at every node newer than all of ``D`` and all consumers of ``D``: no earlier
    turn can tell them apart. Two earlier calls are kept to share with: the last one
    (parameters usually come in layer order) and the one that took the most turns (in a
    chain, the deepest so far: every call above it shares all its turns with it, in any
    order of the parameters).
    """

    def __init__(self, forward: list[Node], consumers: dict[Node, list[Node]], targets: Sequence[Node]):
        self.forward = forward
        self.forward_index = {node: p for p, node in enumerate(forward)}
        self.forward_ids = np.array([node.id for node in forward], np.int64)
        # Per forward node, the newest node whose turn reads whether it is on the path: itself or a consumer.
        self.newest_reader = np.array([(consumers[n] or [n])[-1].id for n in forward], np.int64)
        self.paths = _paths(forward, self.forward_index, targets)
        self.last: _CallLog | None = None
        self.longest: _CallLog | None = None

    def begin(self, call: GradCall, targets: set[Node], contributions: dict[Node, list[Node]],
              found: dict[Node, Node]) -> tuple[list[Node], set[Node], bool]:
        """Replay the turns this call shares with an earlier one, filling its state.

        Returns the on-path nodes left to take turns at (in topological order, and as a
        set), and whether anything was replayed.
        """
        on_path = np.zeros(len(self.forward), bool)
        for target in targets:
            if target in self.forward_index:
                if target not in self.paths:  # a target of a call over several
                    self.paths.update(_paths(self.forward, self.forward_index, [target]))
                on_path |= self.paths[target]
        source, shared = None, 0  # the earlier call to replay from, and how many of its turns
        for log in {id(log): log for log in (self.last, self.longest) if log is not None}.values():
            differ = np.flatnonzero(on_path != log.on_path)
            newest = int(self.newest_reader[differ].max()) if differ.size else -1
            turns = int(np.searchsorted(log.negated_ids, -newest))  # the turns at nodes newer than that
            if turns > shared:
                source, shared = log, turns
        routes = source.route_ends[shared - 1] if shared else 0
        # This call's log: lists like _CallLog's (the shared part of the source's, then this
        # call's own turns), with the arrays' new entries in lists until the call ends.
        self.on_path, self.replayed_from = on_path, (source, shared, routes)
        self.steps, self.ends, self.nodes, self.route_ends, self.sources, self.adjoints = [], [], [], [], [], []
        self.new_totals: list[int] = []
        self.new_source_ids: list[int] = []
        self.position: dict[int, int] = {}  # node id -> index, for the nodes of the turns run afterwards
        self.replayed = range(0)  # ids of the nodes made by replaying
        self.recording = True
        left = len(self.forward)
        if shared:
            self._replay(call, source, shared, routes, targets, contributions, found)
            left = int(np.searchsorted(self.forward_ids, source.nodes[shared - 1].id))
        self.mark = new_id_mark()
        path = [self.forward[p] for p in np.flatnonzero(on_path[:left]).tolist()]
        return path, set(path), shared > 0

    def _replay(self, call, source: _CallLog, shared: int, routes: int, targets, contributions, found) -> None:
        end, offset = source.ends[shared - 1], len(self.forward)
        made = list(self.forward)
        append = made.append
        for op, take, attrs, shape, dtype, name, value, origin in islice(source.steps, end):
            append(new_node(op, take(made), attrs, shape, dtype, name, value, (call, origin)))
        first = made[offset].id
        if made[-1].id - first != end - 1:
            raise RuntimeError("graphaudit: nodes were made by someone else during a grad call's replay")
        self.replayed = range(first, first + end)

        # The state after the shared turns: the ids of their summed adjoints (a node summed by two
        # turns is named after the first), the targets they reached, and the adjoints still pending,
        # handed to nodes older than the last turn's node.
        totals = source.totals[:shared]
        ids = np.where(totals >= offset, totals + (first - offset), self.forward_ids[np.minimum(totals, offset - 1)])
        call.adjoint_of.update(zip(ids[::-1].tolist(), source.nodes[shared - 1::-1]))
        for target in targets:
            turn = int(np.searchsorted(source.negated_ids[:shared], -target.id))
            if turn < shared and source.nodes[turn] is target:
                found[target] = made[int(totals[turn])]
        below = source.nodes[shared - 1].id
        for r in np.flatnonzero(source.source_ids[:routes] < below).tolist():
            contributions.setdefault(source.sources[r], []).append(made[source.adjoints[r]])
        self.steps, self.ends, self.nodes = source.steps[:end], source.ends[:shared], source.nodes[:shared]
        self.route_ends = source.route_ends[:shared]
        self.sources, self.adjoints = source.sources[:routes], source.adjoints[:routes]

    def turn(self, node: Node, total: Node, adjoints: Sequence[Node | None]) -> None:
        """Note what ``node``'s turn made, since the last turn, as steps; and where it handed its adjoints."""
        if not self.recording:
            return
        offset = len(self.forward)
        try:
            for made in made_since([total, *adjoints], self.mark):
                take = _taker([self._index(source) for source in made.inputs])
                self.position[made.id] = offset + len(self.steps)
                self.steps.append((made.op, take, made.attrs, made.shape, made.dtype, made.name, made.value,
                                   made.origin))
            routes = [(source, self._index(a)) for source, a in zip(node.inputs, adjoints) if a is not None]
            total_index = self._index(total)
        except KeyError:  # a node from outside the forward graph and this call: not replayable from here
            self.recording = False
            return
        self.ends.append(len(self.steps))
        self.nodes.append(node)
        self.new_totals.append(total_index)
        for source, adjoint in routes:
            self.sources.append(source)
            self.new_source_ids.append(source.id)
            self.adjoints.append(adjoint)
        self.route_ends.append(len(self.sources))
        self.mark = new_id_mark()

    def _index(self, node: Node) -> int:
        found = self.forward_index.get(node)
        if found is not None:
            return found
        if node.id in self.replayed:
            return len(self.forward) + node.id - self.replayed.start
        return self.position[node.id]

    def end(self) -> None:
        """The call is over: keep its log for the next one (unless it took no turn)."""
        if not self.nodes:
            return
        source, shared, routes = self.replayed_from
        self.last = log = _CallLog(
            self.on_path, self.steps[: self.ends[-1]], self.ends, self.nodes,
            _continued(source, "negated_ids", shared, [-node.id for node in self.nodes[shared:]]),
            _continued(source, "totals", shared, self.new_totals),
            self.route_ends, self.sources, _continued(source, "source_ids", routes, self.new_source_ids), self.adjoints,
        )
        if self.longest is None or len(log.nodes) >= len(self.longest.nodes):
            self.longest = log


def _continued(source: _CallLog | None, field: str, count: int, new: list[int]) -> np.ndarray:
    """The first ``count`` entries of ``source``'s array ``field``, followed by ``new``."""
    added = np.array(new, np.int64)
    return np.concatenate([getattr(source, field)[:count], added]) if count else added


def _paths(forward: list[Node], index: dict[Node, int], targets: Sequence[Node]) -> dict[Node, np.ndarray]:
    """For each target in the forward graph, whether each forward node is on a path from it.

    On a target's path: the target, and every floating-point node with an input on it
    (what :meth:`graphaudit.core.grad.ForwardGraph.on_path` walks). Found for all targets at once,
    as a bitset of targets per node, then unpacked to one boolean row per target. (A
    byte per forward node and target: less than the separate form those calls build.)
    """
    bits: dict[Node, int] = {}
    for target in targets:
        if target in index and target not in bits:
            bits[target] = 1 << len(bits)
    reach = [0] * len(forward)
    for p, node in enumerate(forward):
        r = bits.get(node, 0)
        if node.dtype.kind == "f":
            for source in node.inputs:
                r |= reach[index[source]]
        reach[p] = r
    width = max(1, (len(bits) + 7) // 8)
    packed = np.frombuffer(b"".join(r.to_bytes(width, "little") for r in reach), np.uint8).reshape(len(forward), width)
    rows = np.unpackbits(packed, axis=1, bitorder="little")[:, : len(bits)].T.astype(bool)
    return dict(zip(bits, rows))
