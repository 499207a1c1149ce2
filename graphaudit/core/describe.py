"""Readable names for nodes and numbers: what reports, pictures and front-ends' sections print.

Forward operations are named like jaxpr variables, by op and position: ``sigmoid_2`` is
the second sigmoid of the forward pass. A backward node that is the summed adjoint of a
forward node reads ``d(sigmoid_2)``; other backward nodes read as a short expression,
``matmul(d(add_3), transpose(w3))``, cut at a fixed depth.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable

import numpy as np

from graphaudit.core.graph import Node
from graphaudit.core.ops import get_op


def forward_names(order: Iterable[Node]) -> dict[Node, str]:
    """``op_k`` for every forward operation in ``order`` (k counts per op, from 1)."""
    counts: Counter = Counter()
    names: dict[Node, str] = {}
    for node in order:
        if node.call is None and not node.is_leaf:
            counts[node.op] += 1
            names[node] = f"{node.op}_{counts[node.op]}"
    return names


def shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) if shape else "scalar"


def operand_text(node: Node) -> str:
    """Shapes worth printing beside an expression: ``128x3000 @ 3000x5000`` for a matmul.

    An op's own ``operand_text`` comes first (an imported contraction over other dimensions);
    otherwise any two-input op of kind ``matmul`` reads as a product, others by their shape.
    """
    op = get_op(node.op)
    if op.operand_text is not None:
        return op.operand_text(node)
    if len(node.inputs) == 2 and op.is_matmul:
        return " @ ".join(shape_text(i.shape) for i in node.inputs)
    return shape_text(node.shape)


def leaf_text(node: Node) -> str:
    if node.name is not None:
        return node.name
    if node.op == "constant" and node.value.size == 1:
        return np.format_float_positional(node.value.item(), trim="-") if node.dtype.kind == "f" else str(
            node.value.item()
        )
    return f"{node.op}({shape_text(node.shape)})"


def adjoint_target(node: Node) -> Node | None:
    """The forward node whose summed adjoint ``node`` is, if it is one."""
    return node.call.adjoint_of.get(node.id) if node.call is not None else None


def name_of(node: Node, names: dict[Node, str]) -> str:
    """A leaf's or a named forward node's name; otherwise ``op#id``."""
    return leaf_text(node) if node.is_leaf else names.get(node, node.label)


def describe(node: Node, names: dict[Node, str], depth: int = 2) -> str:
    """``node`` as a short expression: its op applied to its inputs' short forms."""
    if node.is_leaf or node in names:
        return name_of(node, names)
    args = ", ".join(_term(i, names, depth - 1) for i in node.inputs)
    return f"{node.op}({args})"


def _term(node: Node, names: dict[Node, str], depth: int) -> str:
    if node.is_leaf or node in names:
        return name_of(node, names)
    target = adjoint_target(node)
    if target is not None:
        return f"d({name_of(target, names)})"
    if depth <= 0:
        return "…"
    return describe(node, names, depth)


def si(value: float, unit: str) -> str:
    """``5.05 GFLOP``, ``12.3 MB``: three significant digits and an SI prefix."""
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:g} {unit}"


def seconds_text(seconds: float | None) -> str:
    """``26 us``, ``314 ms``, ``1.2 s``; ``-`` for a time not measured."""
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def abbreviate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters in the middle, where paths repeat, keeping both ends."""
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    return text[:head] + "…" + text[len(text) - (limit - 1 - head):]


def distinct_labels(labels: list[str], limit: int) -> list[str]:
    """``labels`` cut to ``limit`` characters, keeping the part that tells them apart.

    What all labels share at the start and at the end (``grad(cost, [params['blocks']`` ...
    ``['w']])``) is what gets cut, so 34 grad calls keep 34 different labels.
    """
    if all(len(label) <= limit for label in labels):
        return list(labels)
    shortest = min(map(len, labels))
    common = os.path.commonprefix(labels) if len(labels) > 1 else ""
    prefix = max(common.rfind(sep) for sep in "[./( ,") + 1  # the differing part starts at a path step
    suffix = len(os.path.commonprefix([label[::-1] for label in labels])) if len(labels) > 1 else 0
    suffix = min(suffix, shortest - prefix)
    result = []
    for label in labels:
        if len(label) <= limit:
            result.append(label)
            continue
        core = label[prefix:len(label) - suffix]
        room = limit - len(core) - 2  # two ellipses
        if room < 4:
            result.append(abbreviate(core, limit))
            continue
        start, end = label[:prefix], label[len(label) - suffix:]
        keep_start = min(len(start), room - min(len(end), room // 3))
        keep_end = min(len(end), room - keep_start)
        result.append((start[:keep_start] + ("…" if keep_start < len(start) else "")) + core
                      + (("…" if keep_end < len(end) else "") + end[len(end) - keep_end:]))
    return result
