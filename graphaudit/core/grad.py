"""Reverse-mode differentiation with Theano's semantics.

``grad(cost, wrt)`` walks the nodes that lie on a path from some ``wrt`` to ``cost``
in reverse topological order, asks each op's vjp rule for the adjoints of its inputs,
and sums the adjoints of a node with several consumers in a fixed order (the order in
which the consumers are visited). Every call builds fresh nodes and shares nothing with
other calls: that is exactly the redundancy graphaudit measures.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import NamedTuple

from graphaudit import progress
from graphaudit.errors import DisconnectedInputError, culprit
from graphaudit.core.graph import (
    GradCall,
    Node,
    build_context,
    building,
    check_nodes,
    constant,
    new_id_mark,
    paused_gc,
    topological_order,
)
from graphaudit.core.ops import OPS, add, get_op, zeros
from graphaudit.core.replay import CallReplays, RuleReplays

_by_id = attrgetter("id")


def grad(cost: Node, wrt: Node | Sequence[Node], *, disconnected: str = "raise") -> Node | list[Node]:
    """The gradient of the scalar ``cost`` with respect to ``wrt``.

    ``wrt`` is a node or a list of nodes; a list in gives a list out. A ``wrt`` that
    appears twice gets the same gradient node twice. A ``wrt`` the cost does not depend
    on, or an integer ``wrt`` (labels used as indices: integers have no gradient, as in
    Theano), raises :class:`DisconnectedInputError`, unless ``disconnected="zero"``, which
    returns zeros of its shape (of the cost's floating-point dtype for an integer ``wrt``).
    """
    return _grad(cost, wrt, disconnected, None)


def _grad(cost, wrt, disconnected: str, record: list | None, forward: ForwardGraph | None = None):
    """:func:`grad`; ``forward`` may pass the cost's walked graph when many calls share a cost."""
    if disconnected not in ("raise", "zero"):
        raise ValueError(f"disconnected must be 'raise' or 'zero', got {disconnected!r}")
    if not isinstance(cost, Node):
        raise TypeError(f"grad: cost is {culprit(cost)}, not a graphaudit Node")
    if cost.shape != ():
        raise ValueError(f"grad: cost must be a scalar, got shape {cost.shape} ({cost!r})")
    if cost.dtype.kind != "f":
        raise TypeError(f"grad: cost must be floating point, got {cost.dtype} ({cost!r})")
    single = isinstance(wrt, Node)
    if not single and not isinstance(wrt, (list, tuple)):
        raise TypeError(f"grad: wrt must be a Node or a list of Nodes, got {culprit(wrt)}")
    targets = [wrt] if single else check_nodes(wrt, "grad: wrt")
    if not targets:
        raise ValueError("grad: wrt is empty; pass at least one node")

    if forward is None:
        forward = ForwardGraph(cost)
    wanted_targets = set(targets)
    missing = [t for t in targets if t not in forward.consumers]
    if missing and disconnected == "raise":
        raise DisconnectedInputError(
            f"grad: cost does not depend on {missing[0]!r}; pass disconnected='zero' to get zeros for it"
        )
    integers = [t for t in targets if t.dtype.kind not in "fc"]
    if integers and disconnected == "raise":
        raise DisconnectedInputError(
            f"grad: {integers[0]!r} is an integer input ({integers[0].dtype}) and integer inputs have no gradient; "
            "pass disconnected='zero' to get float zeros for it"
        )
    on_path = None if forward.calls is not None else forward.on_path(wanted_targets)  # calls find their own

    with building(GradCall([t.label for t in targets])) as context:
        adjoints = _backward(cost, on_path, wanted_targets, record, forward.replays, forward.calls)
        grads = []
        for target in targets:
            if target in adjoints:
                grads.append(adjoints[target])
            else:
                context.origin = target  # no gradient: zeros, floating point even for an integer input
                grads.append(zeros(target.shape, target.dtype if target.dtype.kind in "fc" else cost.dtype))
    return grads[0] if single else grads


def _backward(
    cost: Node,
    on_path: set[Node] | None,
    targets: set[Node],
    record: list | None = None,
    replays: RuleReplays | None = None,
    calls: CallReplays | None = None,
) -> dict[Node, Node]:
    """Run the vjp rules from ``cost`` down the on-path nodes, in reverse topological order.

    Returns the summed adjoint of every target reached. With ``record``, appends one
    :class:`RuleRecord` per forward node processed, for the counting mode
    (:mod:`graphaudit.analysis.counting`). With ``replays``, rules run before are replayed, and
    with ``calls``, the turns shared with an earlier call (:mod:`graphaudit.core.replay`).
    """
    contributions: dict[Node, list[Node]] = {}
    found: dict[Node, Node] = {}
    if calls is None:
        path, replayed = sorted(on_path, key=_by_id), False
    else:  # on_path is None: the calls know the paths, and replay the turns shared with an earlier call
        path, on_path, replayed = calls.begin(build_context.call, targets, contributions, found)
    if cost in on_path and not replayed:
        build_context.origin = cost
        contributions[cost] = [constant(1, dtype=cost.dtype)]
    adjoint_of = build_context.call.adjoint_of
    for node in reversed(path):
        parts = contributions.pop(node, None)
        if parts is None:
            continue
        build_context.origin = node
        sum_start = new_id_mark() if record is not None else 0
        total = parts[0]
        if len(parts) > 1:
            for part in parts[1:]:
                total = add(total, part)
        adjoint_of.setdefault(total.id, node)
        if node in targets:
            found[node] = total
        wanted = tuple(map(on_path.__contains__, node.inputs))
        rule = (OPS.get(node.op) or get_op(node.op)).vjp if True in wanted else None
        rule_start = new_id_mark() if record is not None else 0
        if rule is None:
            adjoints = [None] * len(wanted)
        elif replays is None:
            adjoints = rule(node, total, wanted)
        else:
            adjoints = replays.run(rule, node, total, wanted)
        for source, adjoint in zip(node.inputs, adjoints):
            if adjoint is not None:
                if source in contributions:
                    contributions[source].append(adjoint)
                else:
                    contributions[source] = [adjoint]
        if record is not None:
            record.append(RuleRecord(node, total, sum_start, rule_start, tuple(adjoints)))
        if calls is not None:
            calls.turn(node, total, adjoints)
    if calls is not None:
        calls.end()
    return found


def grad_with_record(cost: Node, wrt: Sequence[Node]) -> tuple[list[Node], list[RuleRecord]]:
    """``grad(cost, wrt)`` and, in processing order, what each forward node's turn built."""
    record: list[RuleRecord] = []
    return _grad(cost, list(wrt), "raise", record), record


def separate_grads(cost: Node, wrt: Sequence[Node]) -> list[Node]:
    """``[grad(cost, w) for w in wrt]``: the same separate calls and the same graph, made faster.

    The forward graph is walked once for all calls, each vjp rule runs once per forward
    node and adjoint shape, and each call replays the turns it shares with an earlier call
    (:mod:`graphaudit.core.replay`).
    """
    wrt = list(wrt)
    forward = ForwardGraph(cost, replay_for=[w for w in wrt if isinstance(w, Node)]) if isinstance(cost, Node) else None
    grads = []
    with paused_gc():  # millions of new nodes: collections would walk them again and again
        for done, w in enumerate(wrt, start=1):
            grads.append(_grad(cost, w, "raise", None, forward))
            progress.step("separate grad calls", done, len(wrt))
    return grads


class ForwardGraph:
    """The graph of a cost, walked once: its nodes and, for each, the nodes that consume it.

    With ``replay_for``, the separate calls' targets, it also keeps the vjp rules'
    recipes and earlier calls' turns, for the calls that share it.
    """

    def __init__(self, cost: Node, replay_for: Sequence[Node] | None = None):
        order = topological_order([cost])
        self.consumers: dict[Node, list[Node]] = {}
        for node in order:
            self.consumers[node] = []
            for source in node.inputs:
                self.consumers[source].append(node)
        self.replays = RuleReplays() if replay_for is not None else None
        self.calls = CallReplays(order, self.consumers, replay_for) if replay_for is not None else None

    def on_path(self, targets: set[Node]) -> set[Node]:
        """The nodes on a path from some target: the targets, and the floating-point consumers of on-path nodes."""
        on_path = {t for t in targets if t in self.consumers}
        stack = list(on_path)
        while stack:
            for consumer in self.consumers[stack.pop()]:
                if consumer not in on_path and consumer.dtype.kind == "f":
                    on_path.add(consumer)
                    stack.append(consumer)
        return on_path


class RuleRecord(NamedTuple):
    """What one forward node's turn in a grad call built.

    Node ids grow with creation, so the nodes the summation of ``node``'s adjoint built
    are those behind ``total`` with ids from ``sum_start``, and the nodes its vjp rule
    built for input ``i`` are those behind ``adjoints[i]`` with ids from ``rule_start``.
    """

    node: Node
    total: Node
    sum_start: int
    rule_start: int
    adjoints: tuple[Node | None, ...]
