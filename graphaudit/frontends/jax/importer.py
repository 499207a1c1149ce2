"""jaxprs as graphaudit nodes, and the user's function as a function of its flat leaves.

:func:`from_jaxpr` turns a (closed) jaxpr into nodes. Each equation's outputs become
nodes of op ``jax.<primitive>`` (:mod:`.ops`); a primitive with several results
(``split``, ``sort``) gives one node per used result, told apart by the attr ``output=i``.
Params become hashable attrs (:func:`~graphaudit.frontends.common.hashable_param`); a
sub-jaxpr is compared by its printed text, variables named by position. The calls in
:data:`~.ops.INLINED` (``jit``, ``custom_jvp_call``, ``remat``, ...) are inlined, so that
what they compute can merge with the same work elsewhere.

Provenance: an equation whose name stack starts with ``transpose(...)`` was made by the
outermost transformation, the audited ``jax.grad``, in its backward pass, and is tagged
with the grad call; everything else is forward (``call=None``), so the forward pass that
every separate ``jax.grad`` trace repeats shows up as duplicated forward work. A
``jax.grad`` inside the user's function (a Hessian-vector product, meta-learning through
an optimiser step) makes equations whose stack reads ``jvp(transpose(...))``: they are
part of the function the audit differentiates, hence forward. The equations of an
inlined sub-jaxpr belong where the equation that calls it does. Equations that ``jax.checkpoint`` recomputes in the backward pass (name
stack ``rematted_computation``) carry the attr ``remat=True``: they never merge with the
forward they recompute, as XLA's CSE does not merge them either (``prevent_cse``).

:func:`evaluate` runs imported nodes inside one ``jit``; the core :func:`graphaudit.evaluate`
runs them one eager JAX call at a time.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from graphaudit.analysis.cost import combined_bound, node_bound, node_flops, node_matmul_flops
from graphaudit.frontends import require
from graphaudit.frontends.common import ADDRESS, TEXT_RULES, Opaque, canonical_text, hashable_param, imported_node
from graphaudit.frontends.jax.loops import BodyCost, LoopRecord, import_loop
from graphaudit.frontends.jax.sources import EquationSources
from graphaudit.frontends.jax.ops import (
    ATTR_REMAT, GRAPHAUDIT_ATTRS, INLINED, LOOP_OUTPUT, LOOPS, PRIMITIVES, TABLE, bind, op_name)
from graphaudit.core.graph import GradCall, Node, building, constant, placeholder, topological_order

REMAT_STACK = "rematted_computation"  # the name stack jax.checkpoint gives the equations it recomputes


def _jaxpr_text(value: Any, depth: int) -> str | None:
    """A jaxpr's canonical text (variables named by position, callbacks without addresses); None for the rest."""
    if "jax" not in sys.modules:  # no jaxpr exists before JAX is imported
        return None
    jax_core = require("jax.extend.core", "jax")
    if isinstance(value, jax_core.ClosedJaxpr):
        return f"closed_jaxpr({ADDRESS.sub('', str(value.jaxpr))}; consts={canonical_text(list(value.consts), depth)})"
    if isinstance(value, jax_core.Jaxpr):
        return f"jaxpr({ADDRESS.sub('', str(value))})"
    return None


TEXT_RULES.append(_jaxpr_text)


# --- dtypes and shapes ---------------------------------------------------------------------


def np_dtype(dtype: Any) -> np.dtype:
    """numpy's dtype; JAX's extended dtypes (PRNG keys) as raw bytes of their size."""
    try:
        return np.dtype(dtype)
    except TypeError:
        return np.dtype(f"V{getattr(dtype, 'itemsize', 0) or 1}")


def aval_dtype(aval: Any) -> np.dtype:
    """An abstract value's dtype; one that has none (an effect token) as one raw byte."""
    dtype = getattr(aval, "dtype", None)
    return np.dtype("V1") if dtype is None else np_dtype(dtype)


def aval_shape(aval: Any, where: str) -> tuple[int, ...]:
    shape = tuple(getattr(aval, "shape", ()))
    if not all(isinstance(d, (int, np.integer)) for d in shape):
        raise TypeError(f"{where}: shape {shape} has symbolic dimensions; graphaudit needs concrete shapes")
    return tuple(int(d) for d in shape)


# --- importing a jaxpr ----------------------------------------------------------------------


_BODY_COSTS: dict[str, BodyCost] = {}  # a loop body's digest -> what one run of it costs, imported whole


class Importer:
    """Walks a jaxpr (and the sub-jaxprs it inlines) and builds the nodes of one trace.

    ``unroll`` says whether scans are unrolled (:mod:`.loops`); ``loops`` collects a
    :class:`~.loops.LoopRecord` per loop equation met.
    """

    def __init__(self, call: GradCall | None, unroll: bool, loops: list[LoopRecord],
                 sources: EquationSources | None = None, call_of: Callable[[str], GradCall | None] | None = None,
                 traced_in: Callable[[str], Any] | None = None):
        self.call = call
        self.call_of = call_of
        self.traced_in = traced_in
        self.scope: Any = None  # the call whose scope the current top-level equation is in: its forward nodes
        self.unroll = unroll
        self.loops = loops
        self.sources = sources
        self.jax_core = require("jax.extend.core", "jax")

    def typed(self, aval: Any) -> tuple[tuple[int, ...], np.dtype]:
        return aval_shape(aval, "a loop's result"), aval_dtype(aval)

    def body_cost(self, closed: Any) -> BodyCost:
        """What one run of a loop's body (or branch) costs, its own loops imported whole."""
        digest = Opaque(closed).digest
        if digest not in _BODY_COSTS:
            inputs = [placeholder(f"in{i}", *self.typed(var.aval)) for i, var in enumerate(closed.jaxpr.invars)]
            with building():
                outputs = Importer(None, unroll=False, loops=[]).run(closed.jaxpr, closed.consts, inputs, False, False)
            body = [n for n in topological_order([o for o in outputs if o is not None]) if not n.is_leaf]
            _BODY_COSTS[digest] = BodyCost(sum(map(node_flops, body)), sum(map(node_matmul_flops, body)),
                                           combined_bound(map(node_bound, body)))
        return _BODY_COSTS[digest]

    def atom(self, env: dict, atom: Any) -> Node:
        if isinstance(atom, self.jax_core.Literal):
            return constant(np.asarray(atom.val, dtype=aval_dtype(atom.aval)))
        return env[atom]

    def run(self, jaxpr: Any, consts: Sequence[Any], inputs: Sequence[Node], backward: bool | None,
            remat: bool) -> list[Node]:
        """The nodes of ``jaxpr``'s outputs; ``backward=None`` reads each equation's name stack (the
        top level), True or False is the calling equation's (a sub-jaxpr)."""
        env: dict[Any, Node] = {}
        for var, value in zip(jaxpr.constvars, consts):
            env[var] = constant(np.asarray(value))
        for var, node in zip(jaxpr.invars, inputs):
            env[var] = node
        for eqn in jaxpr.eqns:
            stack = str(eqn.source_info.name_stack)
            if backward is None and self.call_of is not None:  # each top-level equation names its call
                self.call = self.call_of(stack)
                self.scope = self.traced_in(stack) if self.traced_in is not None else None
                eqn_backward = self.call is not None
            else:
                eqn_backward = stack.startswith("transpose(") if backward is None else backward
            eqn_remat = remat or REMAT_STACK in stack
            inputs_of = [self.atom(env, v) for v in eqn.invars]
            name = eqn.primitive.name
            if name in INLINED and INLINED[name] in eqn.params:
                sub = eqn.params[INLINED[name]]
                sub_jaxpr, sub_consts = (sub.jaxpr, sub.consts) if hasattr(sub, "consts") else (sub, ())
                if len(sub_jaxpr.invars) != len(inputs_of):
                    raise ValueError(f"{name}: {len(inputs_of)} inputs for a sub-jaxpr of {len(sub_jaxpr.invars)}")
                results = self.run(sub_jaxpr, sub_consts, inputs_of, eqn_backward, eqn_remat)
                for var, node in zip(eqn.outvars, results):
                    if not isinstance(var, self.jax_core.DropVar):
                        env[var] = node
                continue
            self.equation(eqn, env, inputs_of, eqn_backward, eqn_remat)
        return [self.atom(env, v) for v in jaxpr.outvars]

    def equation(self, eqn: Any, env: dict, inputs: list[Node], backward: bool, remat: bool) -> None:
        primitive = eqn.primitive
        if GRAPHAUDIT_ATTRS & set(eqn.params):
            raise ValueError(f"JAX primitive {primitive.name!r} has a param named like a graphaudit attr")
        if primitive.name in LOOPS:
            for var, node in zip(eqn.outvars, import_loop(self, eqn, inputs, backward, remat)):
                if not isinstance(var, self.jax_core.DropVar):
                    env[var] = node
            return
        op = op_name(primitive, bool(eqn.effects))
        attrs = [(k, hashable_param(v)) for k, v in eqn.params.items()]
        if remat:
            attrs.append((ATTR_REMAT, True))
        call = self.call if backward else None
        origin = self.sources.enter(eqn, inputs, backward) if self.sources is not None else None
        made = []
        for position, var in enumerate(eqn.outvars):
            if isinstance(var, self.jax_core.DropVar):
                continue
            env[var] = imported_node(op, inputs, attrs, aval_shape(var.aval, f"output of {primitive.name}"),
                                     aval_dtype(var.aval), call=call, origin=origin,
                                     output=position if primitive.multiple_results else None)
            made.append(env[var])
        if self.sources is not None:
            self.sources.made(made)
        if not backward and self.scope is not None:
            self.scope.traced.extend(made)


def from_jaxpr(
    closed_jaxpr: Any,
    inputs: Sequence[Node] | None = None,
    *,
    call: GradCall | None = None,
    unroll: bool = True,
    loops: list[LoopRecord] | None = None,
    sources: EquationSources | None = None,
    call_of: Callable[[str], GradCall | None] | None = None,
    traced_in: Callable[[str], Any] | None = None,
) -> list[Node]:
    """The nodes of a (closed) jaxpr's outputs.

    ``inputs`` gives one node per invar (pass the same nodes to several imports so that
    their graphs share leaves and can merge); by default each invar becomes a placeholder
    named after the jaxpr's argument names. Backward equations (under ``transpose``) are
    tagged with ``call`` (a new ``GradCall`` if none is given), forward ones are not.
    ``unroll=False`` imports scans whole instead of step by step (:mod:`.loops`, whose
    :func:`~.loops.unrolled_size` says how big unrolling would make the graph); a
    :class:`~.loops.LoopRecord` per loop met is appended to ``loops`` when given. ``sources``
    (one :class:`~.sources.EquationSources` for all the traces of an audit) collects each
    node's line and gives backward nodes their forward node as ``origin``. ``call_of`` maps a
    top-level equation's name stack to the grad call that made it (None: forward), instead of
    ``transpose(...)`` meaning ``call`` (:func:`~.function.audit_function`'s user calls);
    ``traced_in`` maps it to the call whose scope it was traced in, whose ``traced`` list then gets
    the forward nodes it makes (JAX traces a grad call's forward pass inside the call).
    """
    jax_core = require("jax.extend.core", "jax")
    if isinstance(closed_jaxpr, jax_core.ClosedJaxpr):
        jaxpr, consts = closed_jaxpr.jaxpr, closed_jaxpr.consts
    elif isinstance(closed_jaxpr, jax_core.Jaxpr):
        jaxpr, consts = closed_jaxpr, ()
    else:
        raise TypeError(f"from_jaxpr: expected a jaxpr (jax.make_jaxpr(f)(*args)), got {type(closed_jaxpr).__name__}")
    if inputs is None:
        arg_names = getattr(getattr(jaxpr, "debug_info", None), "arg_names", None) or ()
        if len(arg_names) != len(jaxpr.invars) or None in arg_names:
            arg_names = [f"arg{i}" for i in range(len(jaxpr.invars))]
        inputs = [
            placeholder(name, aval_shape(v.aval, f"input {name}"), aval_dtype(v.aval))
            for name, v in zip(arg_names, jaxpr.invars)
        ]
    inputs = list(inputs)
    _check_inputs(jaxpr, inputs)
    if call is None:
        call = GradCall(["<jaxpr>"])
    with building():  # constants and literals are leaves, never backward nodes; equations say their call
        if sources is not None:
            sources.new_trace(jaxpr)
        importer = Importer(call, unroll, loops if loops is not None else [], sources, call_of, traced_in)
        return importer.run(jaxpr, consts, inputs, backward=None, remat=False)


def _check_inputs(jaxpr: Any, inputs: list[Node]) -> None:
    if len(inputs) != len(jaxpr.invars):
        raise ValueError(f"from_jaxpr: {len(inputs)} input nodes for a jaxpr with {len(jaxpr.invars)} inputs")
    for position, (var, node) in enumerate(zip(jaxpr.invars, inputs)):
        if not isinstance(node, Node):
            raise TypeError(f"from_jaxpr: inputs[{position}] is a {type(node).__name__}, not a graphaudit Node")
        shape, dtype = aval_shape(var.aval, f"input {position}"), aval_dtype(var.aval)
        if node.shape != shape or node.dtype != dtype:
            raise ValueError(
                f"from_jaxpr: inputs[{position}] ({node.label}) is {node.dtype}{list(node.shape)}, "
                f"but the jaxpr's input {position} is {dtype}{list(shape)}"
            )


def count_equations(closed_jaxpr: Any) -> int:
    """Primitive equations of a jaxpr, with those of the calls it inlines (``jit``, ``remat``, ...)."""
    count = 0
    for eqn in getattr(closed_jaxpr, "jaxpr", closed_jaxpr).eqns:
        key = INLINED.get(eqn.primitive.name)
        count += count_equations(eqn.params[key]) if key in eqn.params else 1
    return count


def evaluate(outputs: Sequence[Node], feed: Mapping[str | Node, Any]) -> list[np.ndarray]:
    """Compute imported ``outputs`` with JAX: every node binds its primitive, all in one ``jit``.

    The core :func:`graphaudit.evaluate` runs the same nodes one eager JAX call at a time;
    this compiles the graph once (much faster for more than a handful of nodes) and
    carries values numpy cannot hold (PRNG keys). ``feed`` maps leaf nodes or names to arrays.
    """
    jax = require("jax", "jax")
    outputs = list(outputs)
    order = topological_order(outputs)
    leaves = [n for n in order if n.op in ("placeholder", "parameter")]
    values = []
    for leaf in leaves:
        if leaf in feed or leaf.name in feed:
            values.append(feed[leaf] if leaf in feed else feed[leaf.name])
        elif leaf.value is not None:
            values.append(leaf.value)
        else:
            raise ValueError(f"evaluate: no value fed for {leaf.op} {leaf.name!r} of shape {leaf.shape}")
    for node in order:
        if not node.is_leaf and node.op not in PRIMITIVES and node.op != TABLE.prefix + LOOP_OUTPUT:
            raise ValueError(f"evaluate: node {node.label} is a graphaudit op, not an imported JAX primitive")

    def run(*leaf_values):
        env = {leaf: value for leaf, value in zip(leaves, leaf_values)}
        for node in order:
            if node.op == "constant":
                env[node] = node.value
            elif node not in env:
                env[node] = bind(node, *(env[i] for i in node.inputs))
        return [env[o] for o in outputs]

    return [np.asarray(v) for v in jax.jit(run)(*values)]
