"""An FX graph of aten calls, without writes, as graphaudit nodes, with the provenance of each.

:func:`from_fx` walks the second trace of a program (:func:`.capture.functional`) in order.
Each ``aten.<name>.<overload>`` call becomes a node of op ``aten.<name>`` (:mod:`.aten` says how
its arguments become inputs and attrs; :mod:`.ops` how it counts); a call with several
results becomes one node per result that FX reads through ``getitem``. ``detach`` is
dropped: its result is its input. A call whose schema returns nothing (``_linalg_check_errors``,
which raises on a singular matrix in eager PyTorch; ``_assert_async``; ``sym_constrain_range``)
is dropped too: it computes no value, so nothing can read it, and it costs nothing.
Placeholders become the leaves given; tensor constants (``get_attr``), graphaudit constants.

The graph holds no writes: PyTorch's functionalization has turned each into its out-of-place
op (``masked_fill`` for ``masked_fill_``) and, for a write through a view, a ``*_scatter``
into the view's base, and has made again each view read after a write. So every FX node is a
value, a view is a value like any other (it writes no bytes: :mod:`.ops`), and a node reads
exactly the values its inputs name, as eager PyTorch does. A graph that still writes (a first
trace) is refused, naming the op. Ops that read memory by strides (``as_strided``) also keep
their inputs' strides (:data:`.aten.READ_BY_STRIDES`), so that evaluating them reads what
PyTorch read.

Provenance: a node built inside grad call ``i`` (meta ``custom["grad_call"]``) gets
``calls[i]`` and, as its ``origin``, the forward node of the autograd sequence number it
carries (meta ``seq_nr``), the first forward op of that number; forward nodes get no call,
and a name: ``<module path>.<op>_<k>`` (``0.addmm_1``), or ``<op>_<k>`` outside any module.

Random ops (meta tag ``nondeterministic_seeded``: dropout, ``bernoulli``) are impure: never
merged, except for the calls that draw nothing (:func:`.aten.draws_nothing`: attention with
``dropout_p=0``, which PyTorch tags as random all the same).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

from graphaudit.frontends import require
from graphaudit.frontends.common import hashable_param, imported_node
import graphaudit.frontends.torch.aten as aten
from graphaudit.frontends.torch.capture import GRAD_CALL, MODULE
from graphaudit.frontends.torch.ops import TABLE
from graphaudit.core.source import Source, user_frame
from graphaudit.core.graph import GradCall, Node, building, constant

DROPPED = frozenset({"aten.detach"})  # ops whose result is their input, as far as values go


class _Pending:
    """A multi-result call whose results are made when FX reads them (``getitem``)."""

    __slots__ = ("op", "inputs", "attrs", "call", "origin", "name")

    def __init__(self, op, inputs, attrs, call, origin, name):
        self.op, self.inputs, self.attrs, self.call, self.origin, self.name = op, inputs, attrs, call, origin, name


class Importer:
    """Walks one FX graph in order and builds its nodes."""

    def __init__(self, graph_module: Any, leaves: Sequence[Node], calls: Sequence[GradCall]):
        self.module = graph_module
        self.fx_nodes = list(graph_module.graph.nodes)
        self.leaves = iter(leaves)
        self.calls = calls
        self.env: dict[Any, Any] = {}
        self.first_of_seq: dict[int, Node] = {}
        self.counts: dict[tuple[str, str], int] = {}
        self.names: dict[Node, str] = {}
        self.sources: dict[Node, Source] = {}  # forward nodes: the user's line, from the FX node's stack_trace
        self.outputs: list[Node] = []

    def run(self) -> list[Node]:
        outputs: list[Node] = []
        for fx_node in self.fx_nodes:
            if fx_node.op == "placeholder":
                self.env[fx_node] = next(self.leaves)
            elif fx_node.op == "get_attr":
                value = getattr(self.module, fx_node.target)
                self.env[fx_node] = constant(value.detach().cpu().numpy())
            elif fx_node.op == "call_function":
                self.call_function(fx_node)
            elif fx_node.op == "output":
                pytree = require("torch.utils._pytree", "torch")
                outputs = [self.env[n] for n in pytree.tree_leaves(fx_node.args)]
            else:
                raise ValueError(f"torch import: FX node {fx_node.name} is a {fx_node.op!r}, not an aten call")
        return outputs

    def call_function(self, fx_node: Any) -> None:
        target = fx_node.target
        if target is operator.getitem:
            source, index = fx_node.args
            pending = self.env[source]
            if not isinstance(pending, _Pending):
                raise ValueError(f"torch import: {fx_node.name} reads item {index} of {source.name}, "
                                 "not of an aten call")
            if fx_node.meta.get("val") is None:  # a result the output_mask did not ask for: nobody reads it
                return
            name = None if pending.name is None else f"{pending.name}[{index}]"
            self.env[fx_node] = self.make(pending.op, pending.inputs, pending.attrs, fx_node, pending.call,
                                          pending.origin, name, output=index)
            return
        if not isinstance(target, require("torch", "torch")._ops.OpOverload):
            raise ValueError(f"torch import: {fx_node.name} calls {target!r}, not an aten op")
        key, overload_name = aten.op_key(target)
        if key in DROPPED:
            self.env[fx_node] = self.env[fx_node.args[0]]
            return
        written = aten.mutated_arguments(target)
        if written:
            raise ValueError(f"torch import: {fx_node.name} ({target}) writes to its argument {written[0]}: "
                             "import the graph without writes (capture.functional)")
        if not target._schema.returns:  # a check (_linalg_check_errors, _assert_async): no value to import
            return
        custom = fx_node.meta.get("custom") or {}
        call = self.calls[custom[GRAD_CALL]] if GRAD_CALL in custom else None
        origin = self.first_of_seq.get(fx_node.meta.get("seq_nr", -1)) if call is not None else None
        op = TABLE.op_name(key, pure=not aten.is_random(target), pure_when=aten.draws_nothing,
                           doc=f"PyTorch's {target}")
        tensors, labels, attrs = [], [], [(aten.ATTR_OVERLOAD, overload_name)]
        for name, value in aten.schema_values(target, fx_node.args, fx_node.kwargs):
            if _is_fx_node(value):
                tensors.append(value)
                labels.append(name)
            elif isinstance(value, (list, tuple)) and any(_is_fx_node(v) for v in value):
                for i, item in enumerate(value):
                    if item is not None:
                        tensors.append(item)
                        labels.append(f"{name}[{i}]")
            else:
                attrs.append((name, hashable_param(value)))
        attrs.append((aten.ATTR_TENSORS, tuple(labels)))
        if key in aten.READ_BY_STRIDES:
            attrs.append((aten.ATTR_LAYOUTS, tuple(aten.layout(tensor.meta["val"]) for tensor in tensors)))
        inputs = [self.value(tensor) for tensor in tensors]
        name = self.forward_name(op, fx_node) if call is None else None
        if aten.is_multi_output(target):
            self.env[fx_node] = _Pending(op, inputs, attrs, call, origin, name)
        else:
            self.env[fx_node] = self.make(op, inputs, attrs, fx_node, call, origin, name)

    def value(self, fx_node: Any) -> Node:
        node = self.env[fx_node]
        if isinstance(node, _Pending):
            raise ValueError(f"torch import: {fx_node.name} has several results; FX should read one with getitem")
        return node

    def make(self, op: str, inputs: list, attrs: list, fx_node: Any, call: GradCall | None, origin: Node | None,
             name: str | None, output: int | None = None) -> Node:
        """The node of one result; a forward one is named, and is the origin for its ``seq_nr`` if first."""
        val = fx_node.meta.get("val")
        if val is None or not hasattr(val, "shape"):
            raise ValueError(f"torch import: {fx_node.name} ({op}) has no tensor value in its meta")
        node = imported_node(op, inputs, attrs, tuple(int(d) for d in val.shape), aten.numpy_dtype(val.dtype),
                             call=call, output=output, origin=origin)
        if name is not None:
            self.first_of_seq.setdefault(fx_node.meta.get("seq_nr", -1), node)
            self.names[node] = name
            if (source := user_frame(fx_node.meta.get("stack_trace") or "")) is not None:
                self.sources[node] = source
        return node

    def forward_name(self, op: str, fx_node: Any) -> str:
        """``<module path>.<op>_<k>``: k counts the op's calls within that module (from 1)."""
        module = (fx_node.meta.get("custom") or {}).get(MODULE, "")
        short = op.split(".", 1)[1] if op.startswith("aten.") else op
        k = self.counts[(module, short)] = self.counts.get((module, short), 0) + 1
        return f"{module}.{short}_{k}" if module else f"{short}_{k}"


def _is_fx_node(value: Any) -> bool:
    return type(value).__name__ == "Node" and hasattr(value, "users")


def from_fx(graph_module: Any, leaves: Sequence[Node],
            calls: Sequence[GradCall]) -> tuple[list[Node], dict[Node, str], dict[Node, Source]]:
    """The nodes of a traced program's outputs, the names of its forward nodes, and their user's lines
    (the innermost frame outside the libraries of the node's ``stack_trace``; a backward node's is its origin's).

    ``graph_module`` holds no writes (:func:`.capture.functional`); ``leaves`` gives one node
    per placeholder, in order; ``calls[i]`` is the provenance of what grad call ``i`` built.
    """
    importer = import_fx(graph_module, leaves, calls)
    return importer.outputs, importer.names, importer.sources


def import_fx(graph_module: Any, leaves: Sequence[Node], calls: Sequence[GradCall]) -> Importer:
    """:func:`from_fx`'s walk, kept: its ``env`` says which node each FX node became (what
    :mod:`.remedy` needs to write the merged graph back as FX)."""
    placeholders = [n for n in graph_module.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != len(leaves):
        raise ValueError(f"from_fx: {len(leaves)} leaves for a graph with {len(placeholders)} placeholders")
    for fx_node, leaf in zip(placeholders, leaves):
        val = fx_node.meta.get("val")
        if val is not None and (tuple(val.shape) != leaf.shape or aten.numpy_dtype(val.dtype) != leaf.dtype):
            raise ValueError(f"from_fx: leaf {leaf.label} is {leaf.dtype}{list(leaf.shape)}, but placeholder "
                             f"{fx_node.name} is {val.dtype}{list(val.shape)}")
    importer = Importer(graph_module, leaves, calls)
    with building():
        importer.outputs = importer.run()
    return importer


def aten_calls(fx_nodes: Any) -> dict[str, int]:
    """The aten calls among ``fx_nodes`` that PyTorch runs (``getitem`` and ``detach`` left out), and the
    matmul and convolution calls among them (what the op table calls ``matmul``)."""
    torch = require("torch", "torch")
    counts = {"nodes": 0, "matmuls": 0}
    for fx_node in fx_nodes:
        if fx_node.op == "call_function" and isinstance(fx_node.target, torch._ops.OpOverload):
            key = aten.op_key(fx_node.target)[0]
            if key != "aten.detach":
                counts["nodes"] += 1
                counts["matmuls"] += TABLE.row(key).kind == "matmul"
    return counts
