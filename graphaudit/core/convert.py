"""To and from networkx: graphs as plain data for other tools, validated on the way back in.

A node of the networkx graph is an integer, its position in a topological order; its
attributes are ``op``, ``attrs`` (a dict), ``shape``, ``dtype`` (a string), ``name``,
``value`` (constants and valued parameters), ``inputs`` (the ordered list of input
keys: edges alone lose the order and repeats of ``x * x``) and provenance: ``call``
(the grad call's label, or ``None``), ``call_index`` and ``origin`` (the key of the
forward node whose rule built it). ``G.graph["outputs"]`` lists the output keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import networkx as nx
import numpy as np

from graphaudit.errors import GraphauditError, ShapeError, culprit
from graphaudit.core.graph import (
    LEAF_OPS, GradCall, Node, build_context, building, check_nodes, constant, parameter, placeholder,
)
from graphaudit.core.graph import topological_order
from graphaudit.core.ops import apply, get_op


def to_networkx(outputs: Node | Sequence[Node]) -> nx.DiGraph:
    """The graph computing ``outputs`` as a ``networkx.DiGraph`` (edges run input -> consumer)."""
    outputs = [outputs] if isinstance(outputs, Node) else check_nodes(outputs, "to_networkx: outputs")
    order = topological_order(outputs)
    key = {node: position for position, node in enumerate(order)}
    graph = nx.DiGraph(outputs=[key[o] for o in outputs])
    for node in order:
        graph.add_node(
            key[node],
            op=node.op,
            attrs=dict(node.attrs),
            shape=node.shape,
            dtype=node.dtype.name,
            name=node.name,
            value=node.value,
            inputs=[key[i] for i in node.inputs],
            call=node.call.label if node.call is not None else None,
            call_index=node.call.index if node.call is not None else None,
            call_wrt=list(node.call.wrt_names) if node.call is not None else None,
            origin=key.get(node.origin) if node.origin is not None else None,
        )
        for position, source in enumerate(node.inputs):
            graph.add_edge(key[source], key[node], position=position)
    return graph


def from_networkx(graph: nx.DiGraph) -> list[Node]:
    """Nodes rebuilt from a networkx graph; returns the outputs.

    Validates as it goes: the graph must be a DAG, every node needs ``op`` (a known op),
    leaves need ``shape`` and ``dtype`` (constants a ``value``), and every operation's
    shape is re-inferred and must equal a stored ``shape``. Errors name the node.
    Outputs are ``graph.graph["outputs"]``, or else the nodes nothing consumes.
    """
    if not isinstance(graph, nx.DiGraph):
        raise TypeError(f"from_networkx: expected a networkx DiGraph, got {culprit(graph)}")
    if not nx.is_directed_acyclic_graph(graph):
        cycle = " -> ".join(str(u) for u, _ in nx.find_cycle(graph))
        raise GraphauditError(f"from_networkx: the graph has a cycle: {cycle}")
    built: dict[Any, Node] = {}
    calls: dict[Any, GradCall] = {}
    with building():
        for key in nx.lexicographical_topological_sort(graph, key=_sort_key):
            built[key] = _build(graph, key, built, calls)
    output_keys = graph.graph.get("outputs")
    if output_keys is None:
        output_keys = sorted((k for k in graph if graph.out_degree(k) == 0), key=_sort_key)
    missing = [k for k in output_keys if k not in built]
    if missing:
        raise GraphauditError(f"from_networkx: output {missing[0]!r} is not a node of the graph")
    return [built[k] for k in output_keys]


def _sort_key(key: Any) -> tuple:
    return (0, key, "") if isinstance(key, (int, np.integer)) else (1, 0, str(key))


def _attribute(graph: nx.DiGraph, key: Any, name: str) -> Any:
    data = graph.nodes[key]
    if data.get(name) is None:
        raise GraphauditError(f"from_networkx: node {key!r} has no {name!r} attribute")
    return data[name]


def _build(graph: nx.DiGraph, key: Any, built: dict[Any, Node], calls: dict[Any, GradCall]) -> Node:
    data = graph.nodes[key]
    op = _attribute(graph, key, "op")
    if op not in LEAF_OPS:
        get_op(op)  # unknown op: UnknownOpError naming it
    _set_provenance(data, built, calls)
    if op in ("placeholder", "parameter"):
        shape = tuple(_attribute(graph, key, "shape"))
        dtype = _attribute(graph, key, "dtype")
        name = data.get("name") or str(key)
        if op == "placeholder":
            return placeholder(name, shape, dtype)
        value = data.get("value")
        return parameter(name, value if value is not None else shape, dtype)
    if op == "constant":
        return constant(_attribute(graph, key, "value"), name=data.get("name"))

    input_keys = data.get("inputs")
    if input_keys is None:
        edges = graph.in_edges(key, data="position")
        input_keys = [u for _, u in sorted((p if p is not None else 0, u) for u, _, p in edges)]
    attrs = {k: _hashable(v) for k, v in (data.get("attrs") or {}).items()}
    try:
        node = apply(op, [built[k] for k in input_keys], **attrs)
    except (ShapeError, TypeError) as error:
        raise ShapeError(f"from_networkx: node {key!r} ({op}): {error}") from None
    stored = data.get("shape")
    if stored is not None and tuple(stored) != node.shape:
        raise ShapeError(f"from_networkx: node {key!r} ({op}) says shape {tuple(stored)}, its inputs give {node.shape}")
    return node


def _set_provenance(data: dict, built: dict[Any, Node], calls: dict[Any, GradCall]) -> None:
    index = data.get("call_index")
    if data.get("call") is None and index is None:
        build_context.call = None
    else:
        if index not in calls:
            calls[index] = GradCall(data.get("call_wrt") or [])
        build_context.call = calls[index]
    build_context.origin = built.get(data.get("origin"))


def _hashable(value: Any) -> Any:
    """Lists (from JSON or by hand) back to tuples, recursively, so attrs can be keys."""
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    return value
