"""An FX graph of aten calls as graphaudit nodes, with the provenance of each.

:func:`from_fx` walks a traced program's nodes in order (:mod:`.capture`). Each
``aten.<name>.<overload>`` call becomes a node of op ``aten.<name>`` (:mod:`.aten` says how
its arguments become inputs and attrs; :mod:`.ops` how it counts); a call with several
results becomes one node per result that FX reads through ``getitem``. ``detach`` is
dropped: its result is its input. Placeholders become the leaves given; tensor constants
(``get_attr``), graphaudit constants.

Provenance: a node built inside grad call ``i`` (meta ``custom["grad_call"]``) gets
``calls[i]`` and, as its ``origin``, the forward node of the autograd sequence number it
carries (meta ``seq_nr``), the first forward op of that number; forward nodes get no call,
and a name: ``<module path>.<op>_<k>`` (``0.addmm_1``), or ``<op>_<k>`` outside any module.

In-place ops (any op whose schema writes to an argument: ``add_``, ``masked_fill_``,
``native_batch_norm`` updating its running statistics):

- imported as a value when no later node reads the written memory as it was (the tensor,
  or a view of it made before the write): then nobody can tell the difference, and the
  value merges like any other. An op that returns what it wrote becomes its out-of-place
  op (``masked_fill`` for ``masked_fill_``); one whose results are other tensors keeps its
  name (a BatchNorm's output does not depend on the statistics it updates);
- otherwise kept as the op itself, impure (never merged), and the views of the written
  tensor made before the write are made again from its node, so that their later readers
  read the new value, as in eager PyTorch. (When the written tensor is itself a view, its
  base is not rebuilt: :func:`graphaudit.evaluate` would read the base's old value; the
  counts are not affected.)

After either, the later readers of a tensor that an op wrote and returned read the op's node.

Random ops (meta tag ``nondeterministic_seeded``: dropout, ``bernoulli_``) are impure too,
except for the calls that draw nothing (:func:`.aten.draws_nothing`: attention with
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
from graphaudit.graph import GradCall, Node, building, constant

DROPPED = frozenset({"aten.detach"})  # ops whose result is their input, as far as values go


class _Pending:
    """A multi-result call whose results are made when FX reads them (``getitem``)."""

    __slots__ = ("op", "inputs", "attrs", "call", "origin", "name")

    def __init__(self, op, inputs, attrs, call, origin, name):
        self.op, self.inputs, self.attrs, self.call, self.origin, self.name = op, inputs, attrs, call, origin, name


class _Importer:
    """Walks one FX graph in order and builds its nodes."""

    def __init__(self, graph_module: Any, leaves: Sequence[Node], calls: Sequence[GradCall]):
        self.module = graph_module
        self.fx_nodes = list(graph_module.graph.nodes)
        self.position = {n: i for i, n in enumerate(self.fx_nodes)}
        self.bases = _view_bases(self.fx_nodes)
        self.aliases: dict[Any, list] = {}  # the nodes that share memory, by the one whose memory it is
        for fx_node in self.fx_nodes:
            self.aliases.setdefault(_root(fx_node, self.bases), []).append(fx_node)
        self.leaves = iter(leaves)
        self.calls = calls
        self.env: dict[Any, Any] = {}
        self.first_of_seq: dict[int, Node] = {}
        self.counts: dict[tuple[str, str], int] = {}
        self.names: dict[Node, str] = {}

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
        custom = fx_node.meta.get("custom") or {}
        call = self.calls[custom[GRAD_CALL]] if GRAD_CALL in custom else None
        origin = self.first_of_seq.get(fx_node.meta.get("seq_nr", -1)) if call is not None else None
        op, returned = self.op_of(target, fx_node)
        inputs, labels, attrs = [], [], [(aten.ATTR_OVERLOAD, overload_name)]
        for name, value in aten.schema_values(target, fx_node.args, fx_node.kwargs):
            if _is_fx_node(value):
                inputs.append(self.value(value))
                labels.append(name)
            elif isinstance(value, (list, tuple)) and any(_is_fx_node(v) for v in value):
                for i, item in enumerate(value):
                    if item is not None:
                        inputs.append(self.value(item))
                        labels.append(f"{name}[{i}]")
            else:
                attrs.append((name, hashable_param(value)))
        attrs.append((aten.ATTR_TENSORS, tuple(labels)))
        name = self.forward_name(op, fx_node) if call is None else None
        if aten.is_multi_output(target):
            self.env[fx_node] = _Pending(op, inputs, attrs, call, origin, name)
        else:
            self.env[fx_node] = self.make(op, inputs, attrs, fx_node, call, origin, name)
        for argument in returned:  # later readers of the overwritten tensor, and of its views, read the new value
            self.env[argument] = self.env[fx_node]
            self.rederive_views(argument, fx_node)

    def op_of(self, target: Any, fx_node: Any) -> tuple[str, list]:
        """The registered op of a call, and the FX nodes it overwrites and returns (see the module docstring)."""
        key, _ = aten.op_key(target)
        written = [value for name, value in aten.schema_values(target, fx_node.args, fx_node.kwargs)
                   if name in aten.mutated_arguments(target) and _is_fx_node(value)]
        returned = written if _returns_alias(target) else []  # add_ returns what it wrote; native_batch_norm not
        pure = not aten.is_random(target)
        if not written:
            return TABLE.op_name(key, pure=pure, pure_when=aten.draws_nothing, doc=f"PyTorch's {target}"), []
        if pure and not any(self.read_later(tensor, fx_node) for tensor in written):
            variant = aten.functional_variant(target) if returned else target
            if variant is not None:
                return TABLE.op_name(aten.op_key(variant)[0], doc=f"PyTorch's {variant}"), returned
        return TABLE.op_name(key, pure=False, doc=f"PyTorch's {target}"), returned

    def read_later(self, tensor: Any, writer: Any) -> bool:
        """Whether a node after ``writer`` reads memory it writes through ``tensor`` as it was before."""
        here = self.position[writer]
        return any(self.position[member] < here and any(self.position[user] > here for user in member.users)
                   for member in self.aliases[_root(tensor, self.bases)])

    def rederive_views(self, tensor: Any, writer: Any) -> None:
        """Views of ``tensor`` made before ``writer``, made again from its new value (in graph order).

        The views of a written view's base are not: no value of the base is rebuilt from one of its views.
        """
        here = self.position[writer]
        for member in self.aliases[_root(tensor, self.bases)]:
            if self.position[member] < here and _is_view(member) and self._derives_from(member, tensor):
                self.call_function(member)

    def _derives_from(self, node: Any, tensor: Any) -> bool:
        while node in self.bases:
            node = self.bases[node]
            if node is tensor:
                return True
        return False

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
        return node

    def forward_name(self, op: str, fx_node: Any) -> str:
        """``<module path>.<op>_<k>``: k counts the op's calls within that module (from 1)."""
        module = (fx_node.meta.get("custom") or {}).get(MODULE, "")
        short = op.split(".", 1)[1] if op.startswith("aten.") else op
        k = self.counts[(module, short)] = self.counts.get((module, short), 0) + 1
        return f"{module}.{short}_{k}" if module else f"{short}_{k}"


def _is_fx_node(value: Any) -> bool:
    return type(value).__name__ == "Node" and hasattr(value, "users")


def _view_bases(fx_nodes: list) -> dict[Any, Any]:
    """For every FX node that shares its input's memory (a view, an in-place op's result), that input."""
    bases: dict[Any, Any] = {}
    for node in fx_nodes:
        if node.op != "call_function":
            continue
        call = node.args[0] if node.target is operator.getitem else node  # split's results are views too
        if _returns_alias(call.target):
            base = next((a for a in call.args if _is_fx_node(a)), None)
            if base is not None:
                bases[node] = base
    return bases


def _is_view(node: Any) -> bool:
    """Whether an FX node is a view of its input (not an in-place op's result)."""
    call = node.args[0] if node.target is operator.getitem else node
    return _returns_alias(call.target) and not call.target._schema.is_mutable


def _root(node: Any, bases: dict[Any, Any]) -> Any:
    while node in bases:
        node = bases[node]
    return node


def _returns_alias(target: Any) -> bool:
    schema = getattr(target, "_schema", None)
    return schema is not None and any(r.alias_info is not None for r in schema.returns)


def from_fx(graph_module: Any, leaves: Sequence[Node], calls: Sequence[GradCall]) -> tuple[list[Node], dict[Node, str]]:
    """The nodes of a traced program's outputs, and the names of its forward nodes.

    ``leaves`` gives one node per placeholder, in order; ``calls[i]`` is the provenance of
    what grad call ``i`` built.
    """
    placeholders = [n for n in graph_module.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != len(leaves):
        raise ValueError(f"from_fx: {len(leaves)} leaves for a graph with {len(placeholders)} placeholders")
    for fx_node, leaf in zip(placeholders, leaves):
        val = fx_node.meta.get("val")
        if val is not None and (tuple(val.shape) != leaf.shape or aten.numpy_dtype(val.dtype) != leaf.dtype):
            raise ValueError(f"from_fx: leaf {leaf.label} is {leaf.dtype}{list(leaf.shape)}, but placeholder "
                             f"{fx_node.name} is {val.dtype}{list(val.shape)}")
    importer = _Importer(graph_module, leaves, calls)
    with building():
        outputs = importer.run()
    return outputs, importer.names

