"""The JAX front-end: import jaxprs as graphaudit nodes, audit ``jax.grad`` per parameter vs joint.

:func:`from_jaxpr` turns a (closed) jaxpr into nodes. Each equation's outputs become
nodes of op ``jax.<primitive>``; a primitive with several results (``split``, ``sort``)
gives one node per used result, told apart by the attr ``output=i``. Params become
hashable attrs: numbers and tuples as they are (numpy scalars as Python ones, lists as
tuples); anything else (sub-jaxprs, arrays, callables, dicts) as an :class:`Opaque` value
compared by a stable blake2b digest of a canonical text, never by ``id()``. The calls
``jit``/``pjit``/``closed_call``/``custom_jvp_call``/``custom_vjp_call``/``remat`` are
inlined, so that what they compute can merge with the same work elsewhere.

Imported nodes evaluate with JAX itself: the core :func:`graphaudit.evaluate` binds each
node's primitive eagerly, one call per node; :func:`evaluate` binds them all inside one
``jit`` (one compile; PRNG keys pass through).

Provenance: an equation whose name stack says ``transpose(...)`` belongs to the backward
pass and is tagged with the grad call; everything else is forward (``call=None``), so the
forward pass that every separate ``jax.grad`` trace repeats shows up as duplicated
forward work. Equations that ``jax.checkpoint`` (``remat``) recomputes in the backward
pass (name stack ``rematted_computation``) carry the attr ``remat=True``: they never merge
with the forward they recompute, as XLA's CSE does not merge them either
(``prevent_cse``), and reports count them apart as intentional recomputation.

:func:`audit` answers "is JAX smart enough?" for a user's function: one
``jax.grad`` trace per differentiated leaf against one joint trace, merged and costed
like the core :func:`graphaudit.audit`; optionally what XLA's optimised HLO keeps
(``xla=True``) and the jitted run times (``measure=True``).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import inspect
import math
import re
import statistics
import time
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from graphaudit.audit import compare_forms
from graphaudit.cost import Cost, total_cost
from graphaudit.frontends import require
from graphaudit.graph import GradCall, Node, build_context, constant, parameter, placeholder, topological_order
from graphaudit.ops import OPS, define_imported, elementwise_cost, no_flops, reduction_cost
from graphaudit.report import Report, seconds_text, si

PREFIX = "jax."

# Calls whose sub-jaxpr is inlined (the key of the sub-jaxpr in the equation's params).
INLINED = {
    "jit": "jaxpr",
    "pjit": "jaxpr",
    "closed_call": "call_jaxpr",
    "core_call": "call_jaxpr",
    "custom_jvp_call": "call_jaxpr",
    "custom_vjp_call": "call_jaxpr",
    "custom_vjp_call_jaxpr": "fun_jaxpr",
    "remat": "jaxpr",
    "remat2": "jaxpr",
    "checkpoint": "jaxpr",
}
REMAT_STACK = "rematted_computation"  # the name stack jax.checkpoint gives the equations it recomputes
ATTR_OUTPUT = "output"
ATTR_REMAT = "remat"


# --- cost rules --------------------------------------------------------------------------


def dot_general_flops(node: Node) -> int:
    """``2 * out.size * K``: one multiply-add per output element and contracted index."""
    (lhs_contracting, _), _ = node.attr("dimension_numbers")
    lhs = node.inputs[0]
    return 2 * node.size * math.prod(lhs.shape[d] for d in lhs_contracting)


def conv_flops(node: Node) -> int:
    """``2 * out.size * (kernel elements per output feature)``: what each output element sums."""
    rhs = node.inputs[1]
    out_features = rhs.shape[node.attr("dimension_numbers").rhs_spec[0]]
    return 2 * node.size * (rhs.size // out_features)


def scatter_flops(node: Node) -> int:
    """One FLOP per update element (each is combined into the operand)."""
    return node.inputs[2].size


ELEMENTWISE = """abs acos acosh add add_any and asin asinh atan atan2 atanh cbrt ceil clamp complex conj cos cosh
digamma div eq erf erf_inv erfc exp exp2 expm1 floor ge gt igamma igammac imag integer_pow is_finite le lgamma log
log1p logistic lt max min mul ne neg nextafter not or polygamma population_count pow real rem round rsqrt
select_n shift_left shift_right_arithmetic shift_right_logical sign sin sinh sqrt square sub tan tanh xor""".split()
REDUCTIONS = """argmax argmin cumlogsumexp cummax cummin cumprod cumsum reduce_and reduce_max reduce_min reduce_or
reduce_prod reduce_sum reduce_xor""".split()
DATA = """bitcast_convert_type broadcast_in_dim concatenate convert_element_type copy copy_p dynamic_slice
dynamic_update_slice expand_dims gather optimization_barrier pad random_unwrap random_wrap reduce_precision reshape
rev scatter select_and_gather_add sharding_constraint slice split squeeze stop_gradient transpose""".split()
SOURCES = "iota".split()
RANDOM = "random_bits random_fold_in random_seed random_split rng_bit_generator rng_uniform threefry2x32".split()

RULES: dict[str, tuple[str, Callable[[Node], int] | None]] = {
    **{p: ("elementwise", elementwise_cost) for p in ELEMENTWISE},
    **{p: ("reduction", reduction_cost) for p in REDUCTIONS},
    **{p: ("data", no_flops) for p in DATA},
    **{p: ("source", no_flops) for p in SOURCES},
    **{p: ("random", elementwise_cost) for p in RANDOM},
    "dot_general": ("matmul", dot_general_flops),
    "conv_general_dilated": ("matmul", conv_flops),
    **{p: ("data", scatter_flops) for p in ("scatter-add", "scatter_add", "scatter-mul", "scatter_mul",
                                           "scatter-min", "scatter_min", "scatter-max", "scatter_max")},
}

_PRIMITIVES: dict[str, Any] = {}  # op name -> the jax primitive, for evaluating imported nodes with JAX


def _params(node: Node) -> dict[str, Any]:
    """The JAX params of an imported node: its attrs, opaque ones unwrapped, graphaudit's own left out."""
    return {k: v.value if isinstance(v, Opaque) else v for k, v in node.attrs if k not in (ATTR_OUTPUT, ATTR_REMAT)}


def _bind_impl(node: Node, *arrays: np.ndarray) -> np.ndarray:
    """Evaluate one imported node with JAX itself (eagerly): bind its primitive to the input arrays."""
    primitive = _PRIMITIVES[node.op]
    result = primitive.bind(*arrays, **_params(node))
    if primitive.multiple_results:
        result = result[node.attr(ATTR_OUTPUT)]
    return np.asarray(result)


def _op_name(primitive: Any, effectful: bool) -> str:
    """``jax.<primitive>``, registered with its cost rule the first time it is seen."""
    name = PREFIX + primitive.name
    if name not in OPS:
        kind, cost = RULES.get(primitive.name, ("imported", None))
        pure = primitive.name not in RANDOM and not effectful
        doc = f"JAX primitive {primitive.name!r}" + ("" if cost is not None else " (no cost rule)")
        define_imported(name, kind=kind, cost=cost, impl=_bind_impl, pure=pure, doc=doc)
        _PRIMITIVES[name] = primitive
    elif effectful and OPS[name].pure:
        raise ValueError(f"JAX primitive {primitive.name!r} has side effects here but was imported as pure before")
    return name


# --- params as hashable attrs --------------------------------------------------------------


class Opaque:
    """A param that is not a plain value (a jaxpr, an array, a callable): equal when digests are.

    ``value`` is the original object (given back to JAX when evaluating); ``digest`` a
    blake2b of its canonical text, the same in every process.
    """

    __slots__ = ("value", "digest")

    def __init__(self, value: Any):
        self.value = value
        self.digest = hashlib.blake2b(canonical_text(value).encode(), digest_size=16).hexdigest()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    def __repr__(self) -> str:
        return f"<{type(self.value).__name__} {self.digest}>"


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def canonical_text(value: Any, depth: int = 4) -> str:
    """A text that is equal for equal values and stable across processes (no addresses, no hash order)."""
    jax_core = require("jax.extend.core", "jax")
    if isinstance(value, jax_core.ClosedJaxpr):
        return f"closed_jaxpr({_ADDRESS.sub('', str(value.jaxpr))}; consts={canonical_text(list(value.consts), depth)})"
    if isinstance(value, jax_core.Jaxpr):  # printed with variables named by position; callbacks lose addresses
        return f"jaxpr({_ADDRESS.sub('', str(value))})"
    if hasattr(value, "__array__") and hasattr(value, "shape") and hasattr(value, "dtype"):
        try:
            array = np.asarray(value)
        except TypeError:  # PRNG key arrays refuse numpy; their repr shows the key data
            return f"{type(value).__qualname__}:{value!r}"
        digest = hashlib.blake2b(array.tobytes(), digest_size=16).hexdigest()
        return f"array({array.dtype.str}, {array.shape}, {digest})"
    if depth <= 0:
        return type(value).__qualname__
    inner = functools.partial(canonical_text, depth=depth - 1)
    if isinstance(value, Mapping):
        return "{" + ", ".join(sorted(f"{inner(k)}: {inner(v)}" for k, v in value.items())) + "}"
    if isinstance(value, (set, frozenset)):
        return "set(" + ", ".join(sorted(map(inner, value))) + ")"
    if isinstance(value, (list, tuple)):
        return f"{type(value).__qualname__}(" + ", ".join(map(inner, value)) + ")"
    if isinstance(value, functools.partial):
        return f"partial({inner(value.func)}, {inner(value.args)}, {inner(value.keywords)})"
    if isinstance(value, types.FunctionType):
        cells = [c.cell_contents for c in value.__closure__ or ()]
        code = value.__code__
        return (f"function({value.__module__}.{value.__qualname__}, {code.co_code.hex()}, "
                f"{inner(code.co_consts)}, {inner(cells)})")
    text = repr(value)
    if not _ADDRESS.search(text):
        return f"{type(value).__qualname__}:{text}"
    state = getattr(value, "__dict__", None)
    return f"{type(value).__qualname__}({inner(state) if state is not None else ''})"


def hashable_param(value: Any) -> Any:
    """``value`` as a hashable attr that JAX still accepts back (see the module docstring)."""
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, np.dtype, enum.Enum)):
        return value
    if isinstance(value, np.generic) and value.shape == ():
        return value.item()
    if isinstance(value, (list, tuple)):
        items = [hashable_param(v) for v in value]
        if any(isinstance(item, Opaque) for item in items):  # JAX must get the original back, whole
            return Opaque(value)
        return type(value)._make(items) if hasattr(type(value), "_fields") else tuple(items)
    value_hash = type(value).__hash__ not in (None, object.__hash__)
    if value_hash and not isinstance(value, (Mapping, set, frozenset)) and not _ADDRESS.search(repr(value)):
        try:
            hash(value)
            return value
        except TypeError:
            pass
    return Opaque(value)


# --- importing a jaxpr ----------------------------------------------------------------------


def _np_dtype(dtype: Any) -> np.dtype:
    """numpy's dtype; JAX's extended dtypes (PRNG keys) as raw bytes of their size."""
    try:
        return np.dtype(dtype)
    except TypeError:
        return np.dtype(f"V{getattr(dtype, 'itemsize', 0) or 1}")


def _aval_dtype(aval: Any) -> np.dtype:
    """An abstract value's dtype; one that has none (an effect token) as one raw byte."""
    dtype = getattr(aval, "dtype", None)
    return np.dtype("V1") if dtype is None else _np_dtype(dtype)


def _shape(aval: Any, where: str) -> tuple[int, ...]:
    shape = tuple(getattr(aval, "shape", ()))
    if not all(isinstance(d, (int, np.integer)) for d in shape):
        raise TypeError(f"{where}: shape {shape} has symbolic dimensions; graphaudit needs concrete shapes")
    return tuple(int(d) for d in shape)


class _Importer:
    """Walks a jaxpr (and the sub-jaxprs it inlines) and builds the nodes of one trace."""

    def __init__(self, call: GradCall | None):
        self.call = call
        self.jax_core = require("jax.extend.core", "jax")

    def atom(self, env: dict, atom: Any) -> Node:
        if isinstance(atom, self.jax_core.Literal):
            return constant(np.asarray(atom.val, dtype=_aval_dtype(atom.aval)))
        return env[atom]

    def run(self, jaxpr: Any, consts: Sequence[Any], inputs: Sequence[Node], backward: bool, remat: bool) -> list[Node]:
        env: dict[Any, Node] = {}
        for var, value in zip(jaxpr.constvars, consts):
            env[var] = constant(np.asarray(value))
        for var, node in zip(jaxpr.invars, inputs):
            env[var] = node
        for eqn in jaxpr.eqns:
            build_context.call = None  # literals are leaves, never backward nodes
            stack = str(eqn.source_info.name_stack)
            eqn_backward = backward or "transpose(" in stack
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
        if ATTR_OUTPUT in eqn.params or ATTR_REMAT in eqn.params:
            raise ValueError(f"JAX primitive {primitive.name!r} has a param named like a graphaudit attr")
        op = _op_name(primitive, bool(eqn.effects))
        attrs = [(k, hashable_param(v)) for k, v in eqn.params.items()]
        if remat:
            attrs.append((ATTR_REMAT, True))
        build_context.call = self.call if backward else None
        build_context.origin = None
        for position, var in enumerate(eqn.outvars):
            if isinstance(var, self.jax_core.DropVar):
                continue
            these = attrs + [(ATTR_OUTPUT, position)] if primitive.multiple_results else attrs
            shape = _shape(var.aval, f"output of {primitive.name}")
            env[var] = Node(op, tuple(inputs), tuple(sorted(these, key=lambda kv: kv[0])), shape,
                            _aval_dtype(var.aval))


def from_jaxpr(closed_jaxpr: Any, inputs: Sequence[Node] | None = None, *, call: GradCall | None = None) -> list[Node]:
    """The nodes of a (closed) jaxpr's outputs.

    ``inputs`` gives one node per invar (pass the same nodes to several imports so that
    their graphs share leaves and can merge); by default each invar becomes a placeholder
    named after the jaxpr's argument names. Backward equations (under ``transpose``) are
    tagged with ``call`` (a new ``GradCall`` if none is given), forward ones are not.
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
            placeholder(name, _shape(v.aval, f"input {name}"), _aval_dtype(v.aval))
            for name, v in zip(arg_names, jaxpr.invars)
        ]
    inputs = list(inputs)
    _check_inputs(jaxpr, inputs)
    if call is None:
        call = GradCall(["<jaxpr>"])
    saved = build_context.call, build_context.origin
    try:
        return _Importer(call).run(jaxpr, consts, inputs, backward=False, remat=False)
    finally:
        build_context.call, build_context.origin = saved


def _check_inputs(jaxpr: Any, inputs: list[Node]) -> None:
    if len(inputs) != len(jaxpr.invars):
        raise ValueError(f"from_jaxpr: {len(inputs)} input nodes for a jaxpr with {len(jaxpr.invars)} inputs")
    for position, (var, node) in enumerate(zip(jaxpr.invars, inputs)):
        if not isinstance(node, Node):
            raise TypeError(f"from_jaxpr: inputs[{position}] is a {type(node).__name__}, not a graphaudit Node")
        shape, dtype = _shape(var.aval, f"input {position}"), _aval_dtype(var.aval)
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


# --- the audit ---------------------------------------------------------------------------------


class JaxReport(Report):
    """A :class:`~graphaudit.report.Report` whose text ends with a JAX section.

    ``framework`` (``to_dict()["framework"]``) holds: ``name`` and ``version``; ``traces``
    and ``jaxpr_equations`` (primitive equations, per form); ``import_seconds``;
    ``retraced_forward`` (the forward work that the separate traces repeat: ``nodes``,
    ``flops``, ``matmul_flops``); ``intentional_recomputation`` (what ``jax.checkpoint``
    recomputes, per form, and the copies of it that separate calls duplicate);
    ``compile_check`` (only with ``xla=True``: ``backend``, ``title`` and ``rows``, each
    ``graph`` and per form the optimised HLO's instructions as ``nodes``, its dot and
    convolution ops as ``dots``, XLA's ``flops`` and the compile ``seconds``: first as
    compiled, then with XLA's CSE pass disabled); ``measured`` (only with ``measure=True``:
    median jitted run times).
    """

    def to_text(self) -> str:
        return super().to_text() + "\n\n" + "\n".join(jax_lines(self.framework))

    __str__ = to_text


def jax_lines(data: dict[str, Any]) -> list[str]:
    """The JAX section of a report's text."""
    eqs, traces = data["jaxpr_equations"], data["traces"]
    lines = [
        f"JAX {data['version']}: {traces['separate']} jax.grad traces, one per parameter "
        f"({eqs['separate']} primitive equations in all), vs one joint trace ({eqs['joint']} equations)",
    ]
    forward = data["retraced_forward"]
    lines.append(
        f"re-traced forward pass (every separate trace repeats it): {forward['nodes']} duplicated nodes, "
        f"{si(forward['flops'], 'FLOP')} ({si(forward['matmul_flops'], 'FLOP')} in matmuls)"
    )
    remat = data["intentional_recomputation"]
    if remat["joint"]["nodes"] or remat["separate"]["nodes"]:
        lines.append(
            "intentional recomputation (jax.checkpoint), kept apart from the duplicated work: "
            f"joint {remat['joint']['nodes']} nodes {si(remat['joint']['flops'], 'FLOP')}, separate merged "
            f"{remat['separate_merged']['nodes']} nodes; copies that separate calls rebuilt: "
            f"{remat['duplicated']['nodes']} nodes {si(remat['duplicated']['flops'], 'FLOP')}"
        )
    check = data.get("compile_check")
    if check is not None:
        compiled, without_cse = check["rows"]
        sep, joint = compiled["separate"]["dots"], compiled["joint"]["dots"]
        verdict = ("XLA recovers the duplicated products" if sep <= joint
                   else f"XLA keeps {sep - joint} duplicated products")
        lines.append(
            f"after XLA ({check['backend']}): separate {sep} dots vs joint {joint} dots: {verdict} "
            f"(without its CSE pass: separate {without_cse['separate']['dots']} dots)"
        )
    measured = data.get("measured")
    if measured is not None:
        joint_seconds = measured["joint_seconds"]

        def versus(seconds: float | None) -> str:
            ratio = f" ({seconds / joint_seconds:.2f}x)" if seconds is not None and joint_seconds else ""
            return seconds_text(seconds) + ratio

        lines.append(
            f"jitted run time (median of {measured['repeats']}): joint {seconds_text(joint_seconds)}, separate grads "
            f"in one jit {versus(measured['separate_one_jit_seconds'])}, separately jitted grads in turn "
            f"{versus(measured['separately_jitted_seconds'])}; max |separate - joint| = "
            f"{measured['max_abs_difference']:.3g}"
        )
    return lines


def _argument_names(fn: Callable, count: int) -> list[str]:
    """Names for ``fn``'s positional arguments, from its signature where it has one."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    names: list[str] = []
    for p in parameters:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
        elif p.kind == p.VAR_POSITIONAL:
            names += [f"{p.name}[{i}]" for i in range(count - len(names))]
            break
    names += [f"arg{i}" for i in range(len(names), count)]
    return names[:count]


def _normalise_argnums(argnums: int | Sequence[int], count: int) -> tuple[int, ...]:
    raw = (argnums,) if isinstance(argnums, (int, np.integer)) else tuple(argnums)
    if not raw:
        raise ValueError("audit: argnums is empty; name at least one argument to differentiate")
    result = []
    for a in raw:
        if not isinstance(a, (int, np.integer)) or not -count <= a < count:
            raise ValueError(f"audit: argnums {a!r} is out of range for {count} positional arguments")
        result.append(int(a) % count)
    if len(set(result)) != len(result):
        raise ValueError(f"audit: repeated argument in argnums {argnums!r}")
    return tuple(result)


class _Flat:
    """The user's function as a function of the flat list of its arguments' leaves."""

    def __init__(self, fn: Callable, args: tuple, argnums: tuple[int, ...]):
        jax = require("jax", "jax")
        paths_leaves, self.treedef = jax.tree_util.tree_flatten_with_path(args)
        if not paths_leaves:
            raise ValueError("audit: the arguments hold no arrays")
        self.fn = fn
        arg_names = _argument_names(fn, len(args))
        self.names: list[str] = []
        self.leaves: list[Any] = []
        self.wrt: list[int] = []
        for index, (path, leaf) in enumerate(paths_leaves):
            argument = path[0].idx
            self.names.append(arg_names[argument] + jax.tree_util.keystr(path[1:]))
            self.leaves.append(leaf)
            if argument in argnums:
                dtype = leaf.dtype if hasattr(leaf, "dtype") else np.asarray(leaf).dtype
                if not np.issubdtype(_np_dtype(dtype), np.inexact):
                    raise TypeError(
                        f"audit: cannot differentiate {self.names[-1]}: its dtype is {dtype}, not floating point"
                    )
                self.wrt.append(index)

    def __call__(self, *leaves):
        jax = require("jax", "jax")
        return self.fn(*jax.tree_util.tree_unflatten(self.treedef, list(leaves)))

    def separate(self, position: int) -> Callable:
        """``jax.grad`` for the ``position``-th differentiated leaf alone."""
        return require("jax", "jax").grad(self, argnums=self.wrt[position])

    def joint(self) -> Callable:
        return require("jax", "jax").grad(self, argnums=tuple(self.wrt))

    def separate_in_one(self, *leaves):
        """All the separate grads, in one function (for one ``jit``)."""
        return tuple(self.separate(p)(*leaves) for p in range(len(self.wrt)))

    def nodes(self, traced: Any) -> list[Node]:
        """One leaf node per argument leaf, typed as JAX traced it: parameters if differentiated."""
        wrt = set(self.wrt)
        return [
            (parameter if i in wrt else placeholder)(name, _shape(var.aval, name), _aval_dtype(var.aval))
            for i, (name, var) in enumerate(zip(self.names, traced.jaxpr.invars))
        ]


def named_leaves(fn: Callable, *args: Any) -> dict[str, Any]:
    """``{name: leaf}`` of the arguments, named as :func:`audit` names them: the feed for
    :func:`evaluate` (or :func:`graphaudit.evaluate`) of the imported forms."""
    flat = _Flat(fn, args, ())
    return dict(zip(flat.names, flat.leaves))


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
        if not node.is_leaf and node.op not in _PRIMITIVES:
            raise ValueError(f"evaluate: node {node.label} is a graphaudit op, not an imported JAX primitive")

    def run(*leaf_values):
        env = {leaf: value for leaf, value in zip(leaves, leaf_values)}
        for node in order:
            if node.op == "constant":
                env[node] = node.value
            elif node not in env:
                primitive = _PRIMITIVES[node.op]
                result = primitive.bind(*(env[i] for i in node.inputs), **_params(node))
                env[node] = result[node.attr(ATTR_OUTPUT)] if primitive.multiple_results else result
        return [env[o] for o in outputs]

    return [np.asarray(v) for v in jax.jit(run)(*values)]


def audit(
    fn: Callable,
    *args: Any,
    argnums: int | Sequence[int] = 0,
    xla: bool = False,
    measure: bool = False,
    commutative: bool = False,
    repeats: int = 5,
) -> JaxReport:
    """Audit one ``jax.grad`` trace per differentiated leaf against one joint ``jax.grad`` trace.

    ``fn(*args)`` must return a scalar. The arguments named by ``argnums`` may be pytrees
    (dicts of arrays, as Flax or Equinox params); every leaf of them is differentiated and
    named by its path (``params['dense_1']['w']``). ``args`` may be arrays or
    ``jax.ShapeDtypeStruct`` (nothing is allocated then; ``measure`` needs arrays).
    ``xla=True`` compiles the separate grads in one ``jit`` and the joint grad and counts
    what the optimised HLO keeps; ``measure=True`` times the jitted forms (median of ``repeats``).
    """
    jax = require("jax", "jax")
    if not callable(fn):
        raise TypeError(f"audit: fn must be a function, got {type(fn).__name__}")
    if repeats < 1:
        raise ValueError(f"audit: repeats must be >= 1, got {repeats}")
    flat = _Flat(fn, args, _normalise_argnums(argnums, len(args)))
    if not flat.wrt:
        raise ValueError(f"audit: the arguments {argnums} hold no arrays to differentiate")
    if measure and any(isinstance(leaf, jax.ShapeDtypeStruct) for leaf in flat.leaves):
        raise ValueError("audit: measure=True needs arrays, not jax.ShapeDtypeStruct, to run the gradients on")
    wrt_names = [flat.names[i] for i in flat.wrt]

    start = time.perf_counter()
    joint_traced = jax.make_jaxpr(flat.joint())(*flat.leaves)
    joint_seconds = time.perf_counter() - start
    inputs = flat.nodes(joint_traced)

    separate: list[Node] = []
    trace_seconds = import_seconds = 0.0
    equations = 0
    for position, name in enumerate(wrt_names):
        start = time.perf_counter()
        traced = jax.make_jaxpr(flat.separate(position))(*flat.leaves)
        middle = time.perf_counter()
        separate += from_jaxpr(traced, inputs, call=GradCall([name]))
        trace_seconds += middle - start
        import_seconds += time.perf_counter() - middle
        equations += count_equations(traced)
    start = time.perf_counter()
    joint = from_jaxpr(joint_traced, inputs, call=GradCall(wrt_names))
    joint_import = time.perf_counter() - start

    report = compare_forms(separate, joint, wrt=wrt_names, build_seconds=(trace_seconds, joint_seconds),
                           commutative=commutative)
    framework: dict[str, Any] = {
        "name": "JAX",
        "version": jax.__version__,
        "traces": {"separate": len(wrt_names), "joint": 1},
        "jaxpr_equations": {"separate": equations, "joint": count_equations(joint_traced)},
        "import_seconds": {"separate": import_seconds, "joint": joint_import},
        "retraced_forward": _retraced_forward(report),
        "intentional_recomputation": _recomputation(report),
    }
    if xla:
        framework["compile_check"] = _xla_check(flat, [var.aval for var in joint_traced.jaxpr.invars])
    if measure:
        framework["measured"] = _measure(flat, repeats)
    result = JaxReport(**{f.name: getattr(report, f.name) for f in dataclasses.fields(Report)})
    result.framework = framework
    return result


def _cost_figures(cost: Cost) -> dict[str, int]:
    return {"nodes": cost.nodes, "flops": cost.flops, "matmul_flops": cost.matmul_flops}


def _retraced_forward(report: Report) -> dict[str, int]:
    """The forward nodes that merging removes from the separate form: the re-traced forward passes."""
    order = topological_order(report.forms["separate"].outputs)
    duplicates = report.merges["separate"].duplicates
    return _cost_figures(total_cost(n for n in order if n.call is None and n in duplicates))


def _is_recomputed(node: Node) -> bool:
    return node.attr(ATTR_REMAT, False) is True


def _recomputation(report: Report) -> dict[str, dict[str, int]]:
    """Nodes ``jax.checkpoint`` recomputes, per form, and their copies that separate calls duplicate."""
    result = {
        form: _cost_figures(total_cost(n for n in topological_order(report.forms[form].outputs) if _is_recomputed(n)))
        for form in ("separate", "joint", "separate_merged")
    }
    duplicates = report.merges["separate"].duplicates
    order = topological_order(report.forms["separate"].outputs)
    result["duplicated"] = _cost_figures(total_cost(n for n in order if n in duplicates and _is_recomputed(n)))
    return result


# --- XLA and timing ------------------------------------------------------------------------------

_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?[\w.\-]+\s*=\s*(.*)$")
_CONTRACTION_TARGET = re.compile(r'custom_call_target="[^"]*(?:matmul|conv|gemm)[^"]*"', re.IGNORECASE)


def _opcode(rest: str) -> str:
    """The opcode of an HLO instruction, given the text after ``name = `` (shape, then opcode)."""
    depth, position = 0, 0
    for position, char in enumerate(rest):  # skip the result shape, which may be a (nested) tuple
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == " " and depth == 0:
            break
    match = re.match(r"\s*([\w\-]+)\(", rest[position:])
    return match.group(1) if match else ""


def hlo_counts(text: str) -> dict[str, int]:
    """Instructions (in every computation, fused ones included) and dot/convolution ops of an HLO module."""
    instructions = dots = 0
    inside = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.endswith("{") and not inside and ("(" in stripped or stripped.startswith("ENTRY")):
            inside = True
            continue
        if stripped == "}":
            inside = False
            continue
        if not inside:
            continue
        match = _INSTRUCTION.match(line)
        if match is None:
            continue
        instructions += 1
        opcode = _opcode(match.group(1))
        if opcode in ("dot", "convolution") or (opcode == "custom-call" and _CONTRACTION_TARGET.search(line)):
            dots += 1
    return {"instructions": instructions, "dots": dots}


def _compiled_counts(function: Callable, leaves: list, options: dict[str, str] | None = None) -> dict[str, Any]:
    jax = require("jax", "jax")
    start = time.perf_counter()
    lowered = jax.jit(function).lower(*leaves)
    compiled = lowered.compile(compiler_options=options) if options else lowered.compile()
    seconds = time.perf_counter() - start
    analysis = compiled.cost_analysis()
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0] if analysis else {}
    flops = (analysis or {}).get("flops")
    counts = hlo_counts(compiled.as_text())
    return {"nodes": counts["instructions"], "dots": counts["dots"], "flops": None if flops is None else int(flops),
            "seconds": seconds}


def _xla_check(flat: _Flat, avals: list[Any]) -> dict[str, Any]:
    """What XLA keeps of the separate grads compiled in one jit and of the joint grad, with and without CSE."""
    jax = require("jax", "jax")
    leaves = [jax.ShapeDtypeStruct(aval.shape, aval.dtype) for aval in avals]
    rows = []
    for graph, options in (("optimised HLO", None),
                           ("optimised HLO, XLA's CSE pass disabled", {"xla_disable_hlo_passes": "cse"})):
        rows.append({
            "graph": graph,
            "separate": _compiled_counts(flat.separate_in_one, leaves, options),
            "joint": _compiled_counts(flat.joint(), leaves, options),
        })
    backend = jax.default_backend()
    return {"backend": backend, "title": f"XLA ({backend}): separate grads in one jit vs the joint grad", "rows": rows}


def _measure(flat: _Flat, repeats: int) -> dict[str, Any]:
    """Median wall time of the jitted separate-in-one-jit, joint, and separately jitted grads.

    The three run in turn within each repeat, so that a change in the machine's load
    shifts them alike; a first, untimed run of each compiles it.
    """
    jax = require("jax", "jax")
    leaves = flat.leaves
    in_one, joint = jax.jit(flat.separate_in_one), jax.jit(flat.joint())
    each = [jax.jit(flat.separate(p)) for p in range(len(flat.wrt))]
    runs = {
        "separate_one_jit_seconds": lambda: in_one(*leaves),
        "joint_seconds": lambda: joint(*leaves),
        "separately_jitted_seconds": lambda: [g(*leaves) for g in each],
    }
    results = {key: jax.block_until_ready(run()) for key, run in runs.items()}
    times: dict[str, list[float]] = {key: [] for key in runs}
    for _ in range(repeats):
        for key, run in runs.items():
            start = time.perf_counter()
            jax.block_until_ready(run())
            times[key].append(time.perf_counter() - start)
    difference = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)), initial=0.0))
                     for a, b in zip(results["separate_one_jit_seconds"], results["joint_seconds"]))
    return {"repeats": repeats, **{key: statistics.median(t) for key, t in times.items()},
            "max_abs_difference": difference}

