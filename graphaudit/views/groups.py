"""Where each node of a report's view sits in the model's own hierarchy.

The interactive report and the Model Explorer export both show a big graph as nested,
collapsible groups. The groups come from what the user already knows:

1. the grad call that built a node (``grad(cost, [w3])``), or ``forward``;
2. inside it, the *scope* of the parameters it works on, read from their names, which
   the front-ends make from the framework's own hierarchy: a PyTorch module path
   (``layers.3.fc.weight`` -> ``layers / 3 / fc``), a JAX pytree path
   (``params['dense_1']['w']`` -> ``params / dense_1``), or graphaudit's ``w3`` -> ``layer 3``.

A forward node takes the scope of the latest parameter it reads (the layer it computes);
a backward node the scope of the forward node whose vjp rule built it, or, for imported
graphs that carry no rule, the earliest scope among its inputs (the layer its adjoint
flows into). Runs of three or more sibling groups of the same structure become one
``block x N`` group, as torchview draws "Transformer Block x 12".

:func:`source_tree` groups the same nodes by the user's line instead (``file:line`` under
each grad call), for the report that is read next to the code.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from graphaudit.core.graph import Node

MIN_REPEATS = 3  # sibling groups collapse into a "block x N" from this many on
_PATH_PART = re.compile(r"\[\s*['\"]?([^'\"\]]+)['\"]?\s*\]|([^.\[\]/]+)")


def scope_of(name: str) -> tuple[str, ...]:
    """The hierarchy a parameter's name places it in: its path without the last part.

    ``layers.3.fc.weight`` -> ``('layers', '3', 'fc')``; ``params['dense_1']['w']`` ->
    ``('params', 'dense_1')``; a flat name ending in a number, ``w3``, -> ``('layer 3',)``.
    """
    parts = [a or b for a, b in _PATH_PART.findall(name)]
    if len(parts) > 1:
        return tuple(parts[:-1])
    number = re.search(r"(\d+)$", name)
    return (f"layer {number.group(1)}",) if number else ()


@dataclass
class Group:
    """A node of the group tree: a label, its child groups and the graph nodes directly in it."""

    label: str
    kind: str  # "root", "call", "forward", "scope", "block", "source"
    children: list[Group] = field(default_factory=list)
    members: list[int] = field(default_factory=list)  # positions in the view's node list
    first: int = 0  # the smallest position below it: siblings are ordered by it
    code: str = ""  # a source group: the line's code

    def child(self, label: str, kind: str, index: dict) -> Group:
        key = (id(self), label)
        found = index.get(key)
        if found is None:
            found = index[key] = Group(label, kind)
            self.children.append(found)
        return found


def group_tree(order: Sequence[Node], top: Callable[[Node], tuple[str, str]]) -> Group:
    """The group tree of ``order`` (a topological order without constants).

    ``top(node)`` gives a node's first-level group as ``(label, kind)``: the grad call in
    the separate view, forward or backward in the merged one.
    """
    scopes = _scopes(order)
    root, index = Group("all", "root"), {}
    for position, node in enumerate(order):
        group = root.child(*top(node), index)
        for part in scopes[position]:
            group = group.child(part, "scope", index)
        group.members.append(position)
    _finish(root, order)
    return root


NO_SOURCE = "no source line"  # the group of nodes whose line graphaudit does not know


def source_tree(order: Sequence[Node], top: Callable[[Node], tuple[str, str]],
                lines: Sequence[tuple[str, str] | None]) -> Group:
    """The group tree of ``order`` by the user's line instead of by scope: under each first-level group
    (as :func:`group_tree`'s), one group per ``file:line`` (``lines[i]``: the label and the code of
    node ``i``'s line, or None), in order of their first node; leaves have no line of their own."""
    root, index = Group("all", "root"), {}
    for position, (node, line) in enumerate(zip(order, lines)):
        group = root.child(*top(node), index)
        if not node.is_leaf:
            label, code = line if line is not None else (NO_SOURCE, "")
            group = group.child(label, "source", index)
            group.code = code
        group.members.append(position)
    _finish(root, order)
    return root


def _scopes(order: Sequence[Node]) -> list[tuple[str, ...]]:
    """Each node's scope (see the module docstring), as a path of labels."""
    names: list[tuple[str, ...]] = []  # scope of each parameter, by rank of first appearance
    rank: dict[int, int] = {}  # node id -> rank of its scope in ``names``, -1 for none
    for node in order:
        if node.op == "parameter":
            names.append(scope_of(node.name or ""))
            rank[node.id] = len(names) - 1
        elif node.is_leaf:
            rank[node.id] = -1
        elif node.call is None:
            rank[node.id] = max((rank.get(i.id, -1) for i in node.inputs), default=-1)
        elif node.origin is not None and node.origin.id in rank:
            rank[node.id] = rank[node.origin.id]
        else:
            known = [r for r in (rank.get(i.id, -1) for i in node.inputs) if r >= 0]
            rank[node.id] = min(known, default=-1)
    # a path every parameter shares (``params`` of ``params['attn']['wq']``) is no level of its own
    shared = min([len(os.path.commonprefix(names)), *(len(n) - 1 for n in names)]) if names else 0
    return [names[rank[n.id]][shared:] if rank[n.id] >= 0 else () for n in order]


def _finish(group: Group, order: Sequence[Node]) -> str:
    """Order children by their first node, fold repeated runs into blocks; returns a structure digest."""
    digests = [_finish(child, order) for child in group.children]
    group.first = min([*group.members, *(c.first for c in group.children)], default=0)
    paired = sorted(zip(group.children, digests), key=lambda pair: pair[0].first)
    children: list[Group] = []
    start = 0
    while start < len(paired):
        stop = start + 1
        while stop < len(paired) and paired[stop][1] == paired[start][1] and paired[start][0].kind == "scope":
            stop += 1
        run = [child for child, _ in paired[start:stop]]
        if len(run) >= MIN_REPEATS:
            block = Group(f"{run[0].label} .. {run[-1].label}  (block x {len(run)})", "block", run)
            block.first = run[0].first
            children.append(block)
        else:
            children.extend(run)
        start = stop
    group.children = children
    shape = sorted((order[m].op, order[m].shape) for m in group.members)
    text = repr((shape, sorted(digests)))
    return hashlib.sha1(text.encode()).hexdigest()
