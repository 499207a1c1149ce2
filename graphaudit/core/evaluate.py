"""A numpy interpreter for graphs: checks gradients, checks merged == original, times runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from graphaudit.errors import EvaluationError, GraphauditError
from graphaudit.core.graph import Node, check_nodes, topological_order
from graphaudit.core.ops import get_op


def evaluate(outputs: Node | Sequence[Node], feed: Mapping | None = None) -> np.ndarray | list[np.ndarray]:
    """Compute ``outputs`` with numpy.

    ``feed`` maps placeholders and parameters (as nodes, or by name) to arrays; a
    parameter made with a value needs no feed. Arrays are cast to the node's dtype when
    numpy calls the cast "same kind" (float64 into float32, say); a shape that differs
    or an unsafe cast is an error naming the node. A single node in gives an array out.
    Intermediate arrays are freed as soon as their last consumer has run.
    """
    single = isinstance(outputs, Node)
    targets = [outputs] if single else check_nodes(outputs, "evaluate: outputs")
    order = topological_order(targets)
    by_node, by_name = _split_feed(feed or {})

    consumers_left: dict[int, int] = {}
    for node in order:
        for source in node.inputs:
            consumers_left[id(source)] = consumers_left.get(id(source), 0) + 1
    keep = {id(t) for t in targets}

    values: dict[int, np.ndarray] = {}
    for node in order:
        if node.op in ("placeholder", "parameter"):
            values[id(node)] = _leaf_value(node, by_node, by_name)
        elif node.op == "constant":
            values[id(node)] = node.value
        else:
            arrays = [values[id(source)] for source in node.inputs]
            values[id(node)] = _run(node, arrays)
            for source in node.inputs:
                consumers_left[id(source)] -= 1
                if consumers_left[id(source)] == 0 and id(source) not in keep:
                    del values[id(source)]
    results = [values[id(t)] for t in targets]
    return results[0] if single else results


def _split_feed(feed: Mapping) -> tuple[dict[int, object], dict[str, object]]:
    by_node: dict[int, object] = {}
    by_name: dict[str, object] = {}
    for key, value in feed.items():
        if isinstance(key, Node):
            by_node[id(key)] = value
        elif isinstance(key, str):
            by_name[key] = value
        else:
            raise TypeError(f"evaluate: feed keys must be nodes or names, got {type(key).__name__} {key!r}")
    return by_node, by_name


def _leaf_value(node: Node, by_node: dict, by_name: dict) -> np.ndarray:
    if id(node) in by_node:
        raw = by_node[id(node)]
    elif node.name in by_name:
        raw = by_name[node.name]
    elif node.value is not None:
        return node.value
    else:
        raise EvaluationError(f"evaluate: no value fed for {node.op} {node.name!r} of shape {node.shape}")
    array = np.asarray(raw)
    if array.shape != node.shape:
        raise EvaluationError(
            f"evaluate: {node.op} {node.name!r} has shape {node.shape}, but the fed array has shape {array.shape}"
        )
    if array.dtype != node.dtype:
        if not np.can_cast(array.dtype, node.dtype, casting="same_kind"):
            raise EvaluationError(
                f"evaluate: {node.op} {node.name!r} is {node.dtype}; cannot cast the fed {array.dtype} array"
            )
        array = array.astype(node.dtype)
    return array


def _run(node: Node, arrays: list[np.ndarray]) -> np.ndarray:
    impl = get_op(node.op).impl
    if impl is None:
        raise EvaluationError(f"evaluate: op {node.op!r} (node {node.label}) has no numpy implementation")
    try:
        with np.errstate(all="ignore"):  # inf and nan propagate as in numpy; not our error
            result = impl(node, *arrays)
    except GraphauditError:
        raise
    except Exception as error:  # numpy's message, with the node that raised it
        raise EvaluationError(f"evaluate: {node.op} node {node.label} {node.shape} failed: {error}") from error
    result = np.asarray(result, dtype=node.dtype)
    if result.shape != node.shape:  # a rule and its numpy code disagree: never pass it on silently
        raise EvaluationError(f"evaluate: {node.op} node {node.label} gave shape {result.shape}, expected {node.shape}")
    return result
