"""PyTensor variables as graphaudit nodes: walk the graph of ``Apply`` nodes, make one node per output.

- Every ``Apply`` node becomes one graphaudit node per output (``output=i`` tells the
  outputs of a multi-output op apart), named and counted by :mod:`.ops`.
- Constants become graphaudit constants (``Constant.signature()`` semantics: same dtype,
  shape and data); shared variables and the ``parameters`` become parameters, every other
  input a placeholder, each by identity. A shared variable's node holds its current value
  (not a copy), so :func:`graphaudit.evaluate` needs a feed only for the placeholders.
- Shapes: PyTensor's static shape where it knows it; where it does not (``None``), the
  caller gives ``shapes=`` for the inputs (a batch size, say) and the rules of
  :mod:`.shapes` infer the rest, with small integer values (``x.shape[0]``, ``arange``
  bounds, reshape targets) computed along the way. A missing input shape is an error
  naming the input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graphaudit.errors import ShapeError
from graphaudit.frontends.common import imported_node
from graphaudit.frontends.pytensor.indexing import first_index, index_form
from graphaudit.frontends.common.loops import LoopRecord, unrolls
from graphaudit.frontends.pytensor.scan import DEFAULT_BUDGET, import_scan, is_scan, unrolled_size
from graphaudit.frontends.pytensor.ops import imported_op, pytensor_module
from graphaudit.frontends.pytensor.perform import evaluated_by_pytensor, keep_template
from graphaudit.frontends.pytensor.sources import origin_of
from graphaudit.frontends.pytensor.shapes import Shapes, UnknownValue, shape_rule, shape_text, static_shape
from graphaudit.core.graph import GradCall, Node, building, constant, topological_order
from graphaudit.core.ops import get_op

VALUE_LIMIT = 64  # integer results up to this many elements are computed while importing (shape arithmetic)


def variable_dtype(var) -> np.dtype:
    dtype = getattr(var.type, "dtype", None)
    try:
        return np.dtype(dtype) if dtype is not None else np.dtype(object)
    except TypeError:
        return np.dtype(object)


@dataclass
class Imported:
    """PyTensor variables as graphaudit nodes: what :func:`from_pytensor` returns.

    ``outputs`` are the nodes of the variables asked for, in order; ``nodes`` maps every
    imported PyTensor variable to its node; ``leaves`` are the placeholders and parameters
    (inputs and shared variables) in the order first met. ``no_cost_rule`` counts, by op, the
    nodes whose FLOPs graphaudit cannot count; ``evaluated_by_pytensor`` names the ops that
    :func:`graphaudit.evaluate` runs through PyTensor's own ``perform``; ``loops`` says how
    each Scan was imported (:class:`~graphaudit.frontends.common.loops.LoopRecord`), ``unrolled_nodes``
    about how many nodes the import makes with every Scan unrolled.
    """

    outputs: list[Node]
    nodes: dict[Any, Node]
    leaves: list[Node]
    no_cost_rule: dict[str, int] = field(default_factory=dict)
    evaluated_by_pytensor: list[str] = field(default_factory=list)
    loops: list[LoopRecord] = field(default_factory=list)
    unrolled_nodes: int = 0

    def node(self, variable) -> Node:
        """The node of a PyTensor variable (an error if it was not part of the import)."""
        try:
            return self.nodes[variable]
        except (KeyError, TypeError):
            raise KeyError(f"{variable!r} is not a variable of the imported graph") from None

    def feed(self, values: Mapping) -> dict[Node, np.ndarray]:
        """A feed for :func:`graphaudit.evaluate` from arrays keyed by PyTensor variable or input name."""
        by_name: dict[str, list[Node]] = {}
        for leaf in self.leaves:
            by_name.setdefault(leaf.name, []).append(leaf)
        feed = {}
        for key, value in values.items():
            if isinstance(key, str):
                found = by_name.get(key, [])
                if len(found) != 1:
                    problem = "no input" if not found else f"{len(found)} inputs"
                    names = ", ".join(leaf.name for leaf in self.leaves)
                    raise KeyError(f"feed: {problem} named {key!r} in the imported graph (inputs: {names})")
                feed[found[0]] = value
            else:
                feed[self.node(key)] = value
        return feed


class Importer:
    """Turns PyTensor variables into nodes, memoised, so several imports share their common part."""

    def __init__(self, shapes: Mapping | None, parameters: Sequence = (), unroll: bool = False):
        self.pt = pytensor_module()
        self.unroll = unroll  # whether Scans are unrolled (:mod:`.scan`), else imported whole
        self.loops: list[LoopRecord] = []
        self.nodes: dict[Any, Node] = {}
        self.values: dict[Any, np.ndarray] = {}  # known small integer values (shape arithmetic)
        self.leaves: list[Node] = []
        self.names_taken: set[str] = set()
        self.parameters = set(parameters)
        self.shapes_by_var: dict[Any, tuple[int, ...]] = {}
        self.shapes_by_name: dict[str, tuple[int, ...]] = {}
        self.used_shape_keys: set = set()
        self.index_forms: dict[Any, tuple[list, tuple]] = {}  # indexing Apply -> (inputs, idx_list), made once
        for key, shape in (shapes or {}).items():
            try:
                dims = tuple(int(d) for d in ((shape,) if isinstance(shape, (int, np.integer)) else shape))
            except (TypeError, ValueError):
                raise TypeError(f"shapes[{key!r}] must be a tuple of ints, got {shape!r}") from None
            if any(d < 0 for d in dims):
                raise ValueError(f"shapes[{key!r}] = {dims} has a negative dimension")
            if isinstance(key, str):
                self.shapes_by_name[key] = dims
            else:
                self.shapes_by_var[key] = dims

    # -- public --

    def import_outputs(self, outputs: Sequence, call: GradCall | None = None) -> list[Node]:
        """The nodes of ``outputs``; what is new is made by ``call`` (None: the forward graph).

        Op nodes are given ``call``; leaves met first here (a grad call's constants) take it
        from the build context, as the nodes of graphaudit's own grad calls do.
        """
        with building(call):
            for variable in outputs:
                self._import(variable, call)
        return [self.nodes[v] for v in outputs]

    def child(self, seed: Mapping, values: Mapping) -> Importer:
        """An importer for a Scan's body: its inputs ``seed``\ed with nodes (and known ``values``), its loops
        recorded here."""
        inner = Importer(None, (), self.unroll)
        inner.nodes.update(seed)
        inner.values.update(values)
        inner.loops = self.loops
        return inner

    def check_shape_keys(self) -> None:
        """Every key of ``shapes=`` must name an input the graph reads."""
        unused = [k for k in list(self.shapes_by_var) + list(self.shapes_by_name) if k not in self.used_shape_keys]
        if unused:
            inputs = ", ".join(leaf.name for leaf in self.leaves)
            raise ValueError(f"shapes: {unused[0]!r} is not an input of the graph (its inputs: {inputs})")

    def unrolled_size(self, outputs: list[Node]) -> int:
        """About how many op nodes the import of ``outputs`` makes with every Scan unrolled (:mod:`.scan`)."""
        return unrolled_size(sum(not n.is_leaf for n in topological_order(outputs)), self.loops)

    def result(self, outputs: list[Node]) -> Imported:
        order = topological_order(outputs)
        unknown: dict[str, int] = {}
        for node in order:
            if not node.is_leaf and get_op(node.op).cost is None:
                unknown[node.op] = unknown.get(node.op, 0) + 1
        by_pytensor = sorted({n.op for n in order if not n.is_leaf and evaluated_by_pytensor(n.op)})
        return Imported(outputs, dict(self.nodes), list(self.leaves), dict(sorted(unknown.items())), by_pytensor,
                        list(self.loops), self.unrolled_size(outputs))

    # -- walking --

    def _import(self, root, call: GradCall | None) -> None:
        if root in self.nodes:
            return
        stack = [(root, False)]
        while stack:
            variable, expanded = stack.pop()
            if variable in self.nodes:
                continue
            apply = variable.owner
            if apply is None:
                self._leaf(variable)
                continue
            if expanded:
                self._apply(apply, call)
                continue
            stack.append((variable, True))
            for source in reversed(self._inputs(apply)):
                if source not in self.nodes:
                    stack.append((source, False))

    def _unique(self, name: str) -> str:
        candidate, suffix = name, 2
        while candidate in self.names_taken:
            candidate, suffix = f"{name}#{suffix}", suffix + 1
        self.names_taken.add(candidate)
        return candidate

    def _leaf(self, variable) -> None:
        pt = self.pt
        dtype = variable_dtype(variable)
        if isinstance(variable, pt.graph.basic.Constant):
            static = static_shape(variable)
            if static is None or dtype == np.dtype(object):
                raise TypeError(f"from_pytensor: constants of type {variable.type} are not supported ({variable!r})")
            data = np.asarray(variable.data, dtype=dtype)
            node = constant(data, dtype=dtype)
            self.nodes[variable] = node
            if data.size <= VALUE_LIMIT:
                self.values[variable] = node.value
            return
        shared = isinstance(variable, pt.compile.sharedvalue.SharedVariable)
        is_parameter = shared or variable in self.parameters
        kind = "parameter" if is_parameter else "placeholder"
        default = f"{'param' if is_parameter else 'input'}{sum(leaf.op == kind for leaf in self.leaves) + 1}"
        name = self._unique(variable.name or default)
        value = variable.get_value(borrow=True) if shared else None
        static = static_shape(variable)
        if static is None:  # an opaque input (a random generator, say): a leaf without shape
            shape = ()
        else:
            shape = self._input_shape(variable, name, static, value)
        node = Node(kind, (), (), shape, dtype, name=name, value=value)
        self.nodes[variable] = node
        self.leaves.append(node)

    def _input_shape(self, variable, name: str, static, value) -> tuple[int, ...]:
        given = None
        if variable in self.shapes_by_var:
            given = self.shapes_by_var[variable]
            self.used_shape_keys.add(variable)
        elif variable.name is not None and variable.name in self.shapes_by_name:
            given = self.shapes_by_name[variable.name]
            self.used_shape_keys.add(variable.name)
        if value is not None and hasattr(value, "shape"):
            held = tuple(int(d) for d in value.shape)
            if given is not None and given != held:
                raise ShapeError(f"shapes: shared variable {name!r} holds a value of shape {held}, not {given}")
            given = held
        if given is not None:
            if len(given) != len(static) or any(s is not None and s != g for s, g in zip(static, given)):
                raise ShapeError(
                    f"input {name!r}: the shape given, {given}, does not fit its PyTensor type {variable.type} "
                    f"(static shape {shape_text(static)})"
                )
            return given
        if any(d is None for d in static):
            raise ShapeError(
                f"the shape of input {name!r} ({variable.type}, static shape {shape_text(static)}) is not known: "
                f"give it, e.g. shapes={{{name!r}: (...)}}, or a static shape in PyTensor"
            )
        return static

    def _inputs(self, apply) -> list:
        """The variables the node of ``apply`` reads: its inputs, but an indexing op's in :mod:`.indexing`'s form."""
        if first_index(apply.op) is None:
            return apply.inputs
        if apply not in self.index_forms:
            self.index_forms[apply] = index_form(apply)
        return self.index_forms[apply][0]

    def _apply(self, apply, call: GradCall | None) -> None:
        name, attrs = imported_op(apply.op)
        if is_scan(apply.op):
            import_scan(self, apply, call, name, attrs)
            return
        if evaluated_by_pytensor(name):
            keep_template(name, attrs, apply)
        variables = self._inputs(apply)
        idx_list = self.index_forms[apply][1] if apply in self.index_forms else None
        if idx_list is not None:
            attrs = tuple(sorted([(k, v) for k, v in attrs if k != "idx_list"] + [("idx_list", idx_list)]))
        inputs = tuple(self.nodes[i] for i in variables)
        shapes = self._output_shapes(apply, name, variables, inputs, idx_list)
        several = len(apply.outputs) > 1
        origin = origin_of(apply, self.nodes) if call is not None else None
        for position, (output, shape) in enumerate(zip(apply.outputs, shapes)):
            self.nodes[output] = imported_node(name, inputs, attrs, shape, variable_dtype(output), call=call,
                                               output=position if several else None, origin=origin)
        self._known_values(apply, variables, inputs)

    def _output_shapes(self, apply, name: str, variables, inputs: tuple[Node, ...], idx_list):
        statics = [static_shape(o) for o in apply.outputs]
        rule = shape_rule(apply.op)
        inferred = None
        if rule is not None:
            view = Shapes(apply, variables, [n.shape for n in inputs], [self.values.get(i) for i in variables],
                           idx_list)
            try:
                inferred = rule(view)
            except UnknownValue as error:
                if not all(s is not None and None not in s for s in statics):
                    raise ShapeError(f"{name} ({self._where(apply)}): {error}") from None
                inferred = None  # PyTensor knows the shapes (from a value it knows and we do not): use them
            except ShapeError as error:
                raise ShapeError(f"{name} ({self._where(apply)}): {error}") from None
        shapes = []
        for position, static in enumerate(statics):
            if static is None:  # an opaque output (random generator, slice, ...)
                shapes.append(())
                continue
            shape = inferred[position] if inferred is not None else None
            if shape is not None:
                if len(shape) != len(static) or any(s is not None and s != d for s, d in zip(static, shape)):
                    raise ShapeError(
                        f"{name} ({self._where(apply)}): shapes {[n.shape for n in inputs]} give an output of shape "
                        f"{shape}, but PyTensor's type says {shape_text(static)}: are the shapes= given right?"
                    )
                shapes.append(tuple(shape))
            elif None not in static:
                shapes.append(static)
            else:
                shapes.append(self._shape_from_pytensor(apply, position, name, inputs))
        return shapes

    def _shape_from_pytensor(self, apply, position, name, inputs) -> tuple[int, ...]:
        """No rule here: rebuild the node on inputs of known static shape and ask PyTensor."""
        pt = self.pt
        rebuilt = []
        for variable, node in zip(apply.inputs, inputs):
            if variable in self.values:
                rebuilt.append(pt.tensor.as_tensor_variable(self.values[variable]) if hasattr(variable.type, "shape")
                               else variable)
            elif hasattr(variable.type, "shape") and hasattr(variable.type, "clone"):
                rebuilt.append(variable.type.clone(shape=node.shape)())
            else:
                rebuilt.append(variable.type())
        try:
            shape = apply.op.make_node(*rebuilt).outputs[position].type.shape
        except Exception:  # noqa: BLE001 - any failure means PyTensor cannot tell us either
            shape = None
        if shape is None or None in shape:
            raise ShapeError(
                f"{name} ({self._where(apply)}): graphaudit has no shape rule for this op and PyTensor does not know "
                f"its output shape {shape_text(static_shape(apply.outputs[position]))} from inputs of shapes "
                f"{[n.shape for n in inputs]}"
            )
        return tuple(int(d) for d in shape)

    def _where(self, apply) -> str:
        names = [i.name or type(i.type).__name__ for i in apply.inputs]
        return f"applied to {', '.join(names)}"

    def _known_values(self, apply, variables, inputs) -> None:
        """Compute small integer results (shapes, indices) now: later shape rules may need them."""
        kind = type(apply.op).__name__
        for output in apply.outputs:
            node = self.nodes[output]
            if node.dtype.kind not in "iub" or node.size > VALUE_LIMIT:
                return
        if kind == "Shape":
            self.values[apply.outputs[0]] = np.array(inputs[0].shape, dtype=self.nodes[apply.outputs[0]].dtype)
            return
        if kind == "Shape_i":
            self.values[apply.outputs[0]] = np.array(inputs[0].shape[apply.op.i], dtype=np.int64)
            return
        if not all(i in self.values for i in variables) or evaluated_by_pytensor(self.nodes[apply.outputs[0]].op):
            return
        arrays = [self.values[i] for i in variables]
        for output in apply.outputs:
            node = self.nodes[output]
            try:
                with np.errstate(all="ignore"):
                    value = np.asarray(get_op(node.op).impl(node, *arrays), dtype=node.dtype)
            except Exception:  # noqa: BLE001 - a value we cannot compute now is simply not known
                return
            if value.shape == node.shape:
                self.values[output] = value


def as_variables(variables, what: str) -> tuple[list, bool]:
    pt = pytensor_module()
    single = isinstance(variables, pt.graph.basic.Variable)
    items = [variables] if single else list(variables)
    for position, item in enumerate(items):
        if not isinstance(item, pt.graph.basic.Variable):
            raise TypeError(f"{what}[{position}] is a {type(item).__name__}, not a PyTensor variable")
    return items, single


def from_pytensor(outputs, *, shapes: Mapping | None = None, parameters: Sequence = (),
                  loop_budget: int = DEFAULT_BUDGET) -> Imported:
    """Import PyTensor variables (and everything they are computed from) as graphaudit nodes.

    ``shapes`` gives the shapes of inputs whose static shape PyTensor does not know, keyed by
    variable or by name (``{"x": (128, 16384)}``); ``parameters`` lists inputs that are not
    shared variables but should be parameters (what you differentiate). Scans are unrolled
    when the whole import, unrolled, holds at most ``loop_budget`` nodes, else imported whole
    (:mod:`.scan`). Returns an :class:`Imported`: ``.outputs`` are the nodes, ``.feed({...})``
    makes an evaluation feed, ``.loops`` says how each Scan was imported.
    """
    variables, _ = as_variables(outputs, "from_pytensor: outputs")
    if not variables:
        raise ValueError("from_pytensor: outputs is empty")
    for unroll in (False, True):  # Scans whole first; unrolled when that fits the budget
        importer = Importer(shapes, parameters, unroll)
        nodes = importer.import_outputs(variables)
        importer.check_shape_keys()
        if unroll or not importer.loops or not unrolls(importer.unrolled_size(nodes), loop_budget):
            break
    return importer.result(nodes)
