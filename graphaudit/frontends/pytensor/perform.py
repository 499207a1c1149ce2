"""PyTensor's own ``perform``, for every op graphaudit has no numpy code for.

Importing an Apply keeps a bare template of it (same op and types, none of the graph: nothing
kept alive), keyed by the imported op's name and attrs; evaluating a node of that op runs the
template's ``perform`` on the node's input arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphaudit.core.graph import Node
from graphaudit.core.ops import OPS
from graphaudit.errors import EvaluationError
from graphaudit.frontends.common import ATTR_OUTPUT

# op name and attrs -> a bare Apply of that op (same op and types, none of the graph: nothing kept alive)
_TEMPLATES: dict[tuple[str, tuple], Any] = {}


def _perform(node: Node, arrays: tuple) -> list:
    """Every result of ``node``'s PyTensor op on ``arrays``, as its ``perform`` computes them."""
    template = _TEMPLATES.get((node.op, tuple(item for item in node.attrs if item[0] != ATTR_OUTPUT)))
    if template is None:
        raise EvaluationError(f"evaluate: PyTensor op {node.op!r} (node {node.label}) was not imported in this process")
    op = template.op
    inputs = list(arrays)
    for position in {i for destroyed in getattr(op, "destroy_map", {}).values() for i in destroyed}:
        inputs[position] = np.array(inputs[position], copy=True)  # perform would overwrite it in place
    storage = [[None] for _ in template.outputs]
    op.perform(template, inputs, storage)
    return [cell[0] for cell in storage]


def perform_impl(node: Node, *arrays):
    """One result of ``node``'s PyTensor op, as its ``perform`` computes it: the fallback of the op table."""
    return _perform(node, arrays)[node.attr(ATTR_OUTPUT, 0)]


def scan_impl(node: Node, *arrays):
    """A Scan kept as a unit: all its results as one value (a 0-d object array), which its
    ``scan_output`` nodes pick from (:mod:`.scan`)."""
    whole = np.empty((), dtype=object)
    whole[()] = tuple(_perform(node, arrays))
    return whole


def evaluated_by_pytensor(name: str) -> bool:
    """Whether graphaudit runs the registered op ``name`` through PyTensor's own ``perform``."""
    return OPS[name].impl in (perform_impl, scan_impl)


def keep_template(name: str, attrs: tuple, apply) -> None:
    """Keep what :func:`perform_impl` needs to run ``apply``'s op again, once per name and attrs."""
    if (name, attrs) not in _TEMPLATES:
        _TEMPLATES[(name, attrs)] = type(apply)(apply.op, [i.type() for i in apply.inputs],
                                                [o.type() for o in apply.outputs])
