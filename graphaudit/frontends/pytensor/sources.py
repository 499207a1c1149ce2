"""The user's line of PyTensor's forward variables, and the forward op each gradient variable belongs to.

PyTensor records where each variable was made: ``var.tag.trace``, the innermost frames of
the stack at its creation (``config.traceback__limit`` of them, PyTensor's own files
skipped), outermost first. A forward variable's innermost user frame is its line
(:func:`variable_sources`).

A variable ``pytensor.grad`` makes has no such line: its trace ends inside
``pytensor/gradient.py``, and nothing on it says which forward op's ``L_op`` made it. While
graphaudit builds the grads it asks (:func:`grad_origins`): each variable made then is
tagged with the forward ``Apply`` whose gradient PyTensor was building (the ``node`` that
``pytensor.gradient``'s ``access_term_cache`` is working on), and the importer makes that
op's node the backward node's ``origin`` (:func:`origin_of`), whose line it then takes
(:func:`graphaudit.core.source.source_of`). Gradients the user built themselves carry no
tag, and their nodes no origin: they are reported without a line rather than with a wrong one.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from graphaudit.core.graph import Node
from graphaudit.core.source import Source, user_frame
from graphaudit.frontends.pytensor.ops import pytensor_module

ORIGIN_TAG = "graphaudit_origin"  # the attribute on a variable's ``tag``: the forward Apply it differentiates
_BUILDER = "access_term_cache"  # the function in pytensor/gradient.py that calls each forward op's L_op


def variable_sources(nodes: Mapping[Any, Node]) -> dict[Node, Source]:
    """The user's line of each forward node among ``nodes`` (PyTensor variable -> node) whose variable has one."""
    found: dict[Node, Source] = {}
    for variable, node in nodes.items():
        if node.call is not None or node.is_leaf:
            continue
        trace = getattr(variable.tag, "trace", None)
        if trace:
            source = user_frame(trace[0])
            if source is not None:
                found[node] = source
    return found


def origin_of(apply: Any, nodes: Mapping[Any, Node]) -> Node | None:
    """The node of the forward op whose gradient made ``apply`` (tagged by :func:`grad_origins`), if imported."""
    forward = getattr(apply.outputs[0].tag, ORIGIN_TAG, None)
    if forward is None:
        return None
    return next((nodes[out] for out in forward.outputs if out in nodes), None)


@contextlib.contextmanager
def grad_origins() -> Iterator[None]:
    """Tag every variable made inside the block with the forward ``Apply`` whose gradient was being built.

    PyTensor gives every new variable its trace through ``pytensor.graph.utils.add_tag_trace``;
    inside the block that function also looks up the stack for ``access_term_cache`` and
    notes its ``node``. Not thread-safe: another thread building PyTensor graphs meanwhile
    would be tagged too (harmlessly: only graphaudit reads the tag).
    """
    utils = pytensor_module().graph.utils
    gradient_file = sys.modules["pytensor.gradient"].__file__
    add_tag_trace = utils.add_tag_trace

    def add_tag_trace_and_origin(thing: Any, user_line: int | None = None) -> Any:
        add_tag_trace(thing, user_line)
        frame = sys._getframe(1)
        while frame is not None:
            code = frame.f_code
            if code.co_name == _BUILDER and code.co_filename == gradient_file:
                setattr(thing.tag, ORIGIN_TAG, frame.f_locals.get("node"))
                break
            frame = frame.f_back
        return thing

    utils.add_tag_trace = add_tag_trace_and_origin
    try:
        yield
    finally:
        utils.add_tag_trace = add_tag_trace
