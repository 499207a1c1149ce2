"""Replaying vjp rules: the separate calls' backward nodes, made again without re-deriving them.

The separate form runs the same vjp rules over and over: every ``grad(cost, w)`` call
whose path crosses a forward node runs that node's rule again. What a rule builds
depends only on the forward node, on which of its inputs are wanted, and on the shape
and dtype of the adjoint ``g`` it receives (rules look at ``g`` through ops, which read
shapes and dtypes). So the first run is recorded as a recipe: each node it built, as
op, attrs, shape, dtype (and a leaf's name and value), with its inputs named as "built
earlier in this recipe", "the adjoint ``g``", or a node from outside. Later calls follow
the recipe: the same fresh nodes, in the same creation order, with the provenance of the
call that makes them, but without running shape inference and the rule's logic again.
The graph is the same, node for node (``tests/test_replay.py`` compares them); only the
making is faster.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import NamedTuple

import numpy as np

from graphaudit.graph import Node, made_since, new_id_mark, new_node

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
    return lambda made: ()


def _follow(recipe: _Recipe, g: Node) -> list[Node | None]:
    made = [g, *recipe.outside]
    append = made.append
    for op, take, attrs, shape, dtype, name, value in recipe.steps:
        append(new_node(op, take(made), attrs, shape, dtype, name, value))
    return [None if i is None else made[i] for i in recipe.results]
