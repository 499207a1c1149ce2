"""PyTensor front-end: import PyTensor graphs as graphaudit nodes, audit them, cross-check PyTensor.

PyTensor is Theano's maintained successor, the framework of the seed. Two entry points:

- :func:`from_pytensor` turns PyTensor variables (their graph of ``Apply`` nodes) into
  graphaudit nodes, to evaluate, merge, cost or draw them like any other graph.
- :func:`audit` answers the seed's question inside PyTensor: the separate form is one
  ``pytensor.grad(cost, [p])`` per parameter, the joint form one
  ``pytensor.grad(cost, wrt)``. Both are built ``repeats`` times (the seed's own
  measurement: median and spread of the build times), imported and compared with
  :func:`graphaudit.compare_forms`. With ``compile_check=True`` the report also gives
  what PyTensor's own rewrites get back: its ``MergeOptimizer`` alone, and the default
  compile rewrites, on both forms (node and dot counts beside graphaudit's).

How a PyTensor graph becomes nodes
----------------------------------
- Every ``Apply`` node becomes one graphaudit node per output (a node with several outputs
  becomes several nodes, each with the attribute ``output=i``).
- Op names are ``"pytensor." + the Op's class name`` (``pytensor.Dot``,
  ``pytensor.DimShuffle``, ``pytensor.Sum``, ``pytensor.AdvancedIncSubtensor``); elementwise
  ops are named by their scalar op, ``pytensor.Elemwise{sigmoid}``, ``pytensor.Elemwise{truediv}``,
  ``pytensor.Elemwise{cast}`` (the scalar op's class name in lower case); a ``Blockwise`` by its
  core op, ``pytensor.Blockwise{Dot}`` (what ``x @ W`` builds). The Op's ``__props__`` become
  the node's attrs (made hashable: slices become ``("slice", start, stop, step)``, dicts sorted
  tuples, dtypes and types strings), so two nodes merge exactly when PyTensor would call
  their Ops equal and their inputs are the same.
- Constants become graphaudit constants (``Constant.signature()`` semantics: same dtype,
  shape and data); shared variables and the ``parameters`` become parameters, every other
  input a placeholder, each by identity. A shared variable's node holds its current value
  (not a copy), so :func:`graphaudit.evaluate` needs a feed only for the placeholders.
- Shapes: PyTensor's static shape where it knows it; where it does not (``None``), the
  caller gives ``shapes=`` for the inputs (a batch size, say) and the shape rules below infer
  the rest, with small integer values (``x.shape[0]``, ``arange`` bounds, reshape targets)
  computed along the way. A missing input shape is an error naming the input.
- Costs follow graphaudit's conventions (:mod:`graphaudit.cost`): ``Dot``, ``Dot22``, the
  ``Gemm``/``Gemv``/``Ger`` family, ``BatchedDot`` and ``Blockwise{Dot}`` are matmuls
  (``2*m*k*n``, plus one FLOP per element for Gemm's scale-and-add); elementwise ops one FLOP
  per output element (a fused ``Composite`` one per scalar op inside; ``cast``, ``second`` and
  ``identity`` none: they move data); reductions one per input element; the softmax family
  like graphaudit's softmax; indexing, shuffling and shape ops none. Ops without a rule are
  kept, counted, and listed in reports as "no cost rule", never dropped.
- Evaluation: the ops of ordinary gradient graphs (all of the seed MLP's) have numpy
  implementations written here; any other op is run through its own PyTensor ``perform``
  (on copies of the inputs it would overwrite). :attr:`Imported.evaluated_by_pytensor` lists them.

PyTensor is imported lazily: importing this module does not need it.
"""

from __future__ import annotations

import builtins
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graphaudit.audit import compare_forms
from graphaudit.describe import forward_names
from graphaudit.errors import EvaluationError, ShapeError
from graphaudit.frontends import require
from graphaudit.graph import GradCall, Node, build_context, constant, topological_order
from graphaudit.ops import define_imported, get_op, no_flops, per_element, reduction_cost
from graphaudit.report import Report

__all__ = ["Imported", "audit", "from_pytensor", "matmul_count", "merge_optimizer", "default_compile"]

PREFIX = "pytensor."
VALUE_LIMIT = 64  # integer results up to this many elements are computed while importing (shape arithmetic)


def _pytensor():
    return require("pytensor", "pytensor")


# --- making PyTensor's op parameters hashable and deterministic ---------------------------------


def _hashable(value: Any) -> Any:
    """A hashable, process-independent stand-in for an op parameter (its repr is stable too)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, slice):
        return ("slice", _hashable(value.start), _hashable(value.stop), _hashable(value.step))
    if isinstance(value, (tuple, list)):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _hashable(v)) for k, v in value.items()))
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.name, value.shape, value.tobytes().hex())
    if hasattr(value, "__props__") or _is_op(value):
        name, attrs = _op_spec(value)
        return (name[len(PREFIX):] if name.startswith(PREFIX) else name, attrs)
    text = str(value)
    return type(value).__name__ if " at 0x" in text else text


def _is_op(value: Any) -> bool:
    ops = _pytensor().graph.op
    scalar = _pytensor().scalar
    return isinstance(value, (ops.Op, scalar.ScalarOp))


_INSTANCES: dict[Any, int] = {}  # ops without __props__ compare by identity: give each a stable number


def _props(op) -> tuple[tuple[str, Any], ...]:
    props = getattr(type(op), "__props__", None)
    if props is None:
        if op not in _INSTANCES:
            _INSTANCES[op] = len(_INSTANCES) + 1
        return (("instance", _INSTANCES[op]),)
    return tuple((p, _hashable(getattr(op, p))) for p in props)


def _scalar_name(scalar_op) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """``("sigmoid", ())``, ``("cast", (("dtype", "float32"),))``, ``("composite", ...)``."""
    name = type(scalar_op).__name__.lower()
    if name == "cast":
        return name, (("dtype", str(scalar_op.o_type.dtype)),)
    if name == "composite":
        inner = sum(1 for _ in scalar_op.fgraph.apply_nodes)
        return name, (("expression", str(scalar_op)), ("scalar_ops", inner))
    props = getattr(type(scalar_op), "__props__", None) or ()
    return name, tuple((p, _hashable(getattr(scalar_op, p))) for p in props)


def _op_spec(op) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """The graphaudit op name and attrs of a PyTensor Op (see the module docstring)."""
    pt = _pytensor()
    from pytensor.tensor.blockwise import Blockwise
    from pytensor.tensor.elemwise import CAReduce, Elemwise

    if isinstance(op, Elemwise):
        scalar, attrs = _scalar_name(op.scalar_op)
        if op.inplace_pattern:
            attrs += (("inplace_pattern", _hashable(op.inplace_pattern)),)
        return f"{PREFIX}Elemwise{{{scalar}}}", tuple(sorted(attrs))
    if isinstance(op, pt.scalar.ScalarOp):
        scalar, attrs = _scalar_name(op)
        return f"{PREFIX}scalar{{{scalar}}}", tuple(sorted(attrs))
    if isinstance(op, Blockwise):
        core, core_attrs = _op_spec(op.core_op)
        attrs = [("core", core_attrs), ("signature", op.signature)]
        attrs += [(k, v) for k, v in _props(op) if k not in ("core_op", "signature")]
        return f"{PREFIX}Blockwise{{{core[len(PREFIX):]}}}", tuple(sorted(attrs))
    attrs = list(_props(op))
    name = type(op).__name__
    if isinstance(op, CAReduce):
        scalar, _ = _scalar_name(op.scalar_op)
        attrs = [(k, scalar if k == "scalar_op" else v) for k, v in attrs]
        if name == "CAReduce":
            name = f"CAReduce{{{scalar}}}"
    return PREFIX + name, tuple(sorted(attrs))


# --- numpy implementations -----------------------------------------------------------------------


def _sigmoid(x):
    return np.exp(-np.logaddexp(0, -x))


def _nary(ufunc):
    def run(*arrays):
        result = arrays[0]
        for array in arrays[1:]:
            result = ufunc(result, array)
        return result

    return run


# scalar op name -> (numpy function, FLOPs per output element)
SCALAR_OPS: dict[str, tuple[Callable, int]] = {
    "add": (_nary(np.add), 1), "mul": (_nary(np.multiply), 1), "sub": (np.subtract, 1),
    "truediv": (np.true_divide, 1), "intdiv": (np.floor_divide, 1), "mod": (np.mod, 1),
    "neg": (np.negative, 1), "reciprocal": (np.reciprocal, 1), "pow": (np.power, 1), "sqr": (np.square, 1),
    "sqrt": (np.sqrt, 1), "exp": (np.exp, 1), "exp2": (np.exp2, 1), "expm1": (np.expm1, 1), "log": (np.log, 1),
    "log1p": (np.log1p, 1), "log2": (np.log2, 1), "log10": (np.log10, 1), "abs": (np.abs, 1), "sign": (np.sign, 1),
    "tanh": (np.tanh, 1), "sinh": (np.sinh, 1), "cosh": (np.cosh, 1), "sin": (np.sin, 1), "cos": (np.cos, 1),
    "tan": (np.tan, 1), "arctan": (np.arctan, 1), "sigmoid": (_sigmoid, 1),
    "softplus": (lambda x: np.logaddexp(0, x), 1),
    "maximum": (_nary(np.maximum), 1), "minimum": (_nary(np.minimum), 1), "clip": (np.clip, 1),
    "switch": (lambda c, a, b: np.where(c, a, b), 1),
    "eq": (np.equal, 1), "neq": (np.not_equal, 1), "lt": (np.less, 1), "gt": (np.greater, 1),
    "le": (np.less_equal, 1), "ge": (np.greater_equal, 1), "and": (_nary(np.bitwise_and), 1),
    "or": (_nary(np.bitwise_or), 1), "xor": (_nary(np.bitwise_xor), 1), "invert": (np.invert, 1),
    "isnan": (np.isnan, 1), "isinf": (np.isinf, 1), "floor": (np.floor, 1), "ceil": (np.ceil, 1),
    "trunc": (np.trunc, 1), "roundhalftoeven": (np.round, 1),
    # data movement: no arithmetic
    "identity": (lambda x: x, 0), "cast": (lambda x: x, 0), "second": (lambda a, b: b, 0),
}


def _scalar_of(node: Node) -> str:
    return node.op[node.op.index("{") + 1:-1]


def _elemwise_impl(node: Node, *arrays):
    scalar = _scalar_of(node)
    if scalar == "second":
        return np.broadcast_to(arrays[1], node.shape)
    return SCALAR_OPS[scalar][0](*arrays)


def _elemwise_cost(node: Node) -> int:
    scalar = _scalar_of(node)
    per = node.attr("scalar_ops") if scalar == "composite" else SCALAR_OPS.get(scalar, (None, 1))[1]
    return per * node.size


def _matmul_flops(node: Node) -> int:
    """``2*m*k*n`` for ``(..., m, k) @ (..., k, n)``; vectors as in numpy's dot."""
    return 2 * node.size * node.inputs[0].shape[-1]


def _gemm_cost(node: Node) -> int:  # beta*z + alpha*(x @ y)
    x = node.inputs[2]
    return 2 * node.size * x.shape[1] + 3 * node.size


def _gemv_cost(node: Node) -> int:  # beta*y + alpha*(A @ x)
    a = node.inputs[2]
    return 2 * node.size * a.shape[1] + 3 * node.size


def _ger_cost(node: Node) -> int:  # A + alpha * outer(x, y)
    return 3 * node.size


def _dot22scalar_cost(node: Node) -> int:
    return _matmul_flops(node) + node.size


def _inc_cost(node: Node) -> int:
    """One FLOP per element of the increment (none when setting)."""
    return 0 if node.attr("set_instead_of_inc") else node.inputs[1].size


def _axis(node: Node):
    axis = node.attr("axis")
    return None if axis is None else tuple(axis)


def _softmax_impl(node: Node, x):
    axis = _axis(node)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax_impl(node: Node, x):
    axis = _axis(node)
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _softmax_grad_impl(node: Node, dy, sm):
    product = dy * sm
    return product - np.sum(product, axis=_axis(node), keepdims=True) * sm


REDUCE_UFUNCS = {"add": np.add, "mul": np.multiply, "maximum": np.maximum, "minimum": np.minimum,
                 "and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor}


def _reduce_impl(node: Node, x):
    ufunc = REDUCE_UFUNCS[node.attr("scalar_op")]
    axis = node.attr("axis")
    axis = tuple(range(x.ndim)) if axis is None else tuple(axis)
    accumulate = node.attr("acc_dtype")
    if accumulate is not None and ufunc in (np.add, np.multiply):
        return ufunc.reduce(x, axis=axis, dtype=np.dtype(accumulate))
    return ufunc.reduce(x, axis=axis)


def _dimshuffle_impl(node: Node, x):
    order = node.attr("new_order")
    kept = [i for i in order if i != "x"]
    dropped = [i for i in range(node.attr("input_ndim")) if i not in kept]
    return np.transpose(x, kept + dropped).reshape(node.shape)


def _python_index(idx_list, arrays) -> tuple:
    """The index tuple a ``*Subtensor`` op applies, rebuilt from its ``idx_list`` and index inputs."""
    index = []
    for entry in idx_list:
        if isinstance(entry, tuple):  # ("slice", start, stop, step): positions in the index inputs
            index.append(slice(*(None if p is None else int(arrays[p]) for p in entry[1:])))
        else:
            value = arrays[entry]
            index.append(int(value) if np.ndim(value) == 0 and np.asarray(value).dtype.kind in "iu" else value)
    return tuple(index)


def _subtensor_impl(node: Node, x, *indices):
    idx_list = node.attr("idx_list", (0,))
    return np.array(x[_python_index(idx_list, indices)])


def _inc_subtensor_impl(node: Node, x, y, *indices):
    index = _python_index(node.attr("idx_list", (0,)), indices)
    out = np.array(x, copy=True)
    if node.attr("set_instead_of_inc"):
        out[index] = y
    elif node.attr("ignore_duplicates"):
        out[index] += y
    else:
        np.add.at(out, index, y)
    return out


def _alloc_impl(node: Node, value, *shape):
    return np.broadcast_to(value, node.shape)


def _assert_impl(node: Node, x, *conditions):
    for position, condition in enumerate(conditions, start=1):
        if not np.all(condition):
            raise EvaluationError(f"evaluate: PyTensor assertion {position} of node {node.label} failed")
    return x


def _arange_impl(node: Node, start, stop, step):
    return np.arange(start, stop, step, dtype=node.dtype)


def _join_impl(node: Node, axis, *parts):
    return np.concatenate(parts, axis=int(axis))


# op class name -> (kind, cost rule, numpy implementation or None for PyTensor's perform)
FAMILIES: dict[str, tuple[str, Callable | None, Callable | None]] = {
    "Dot": ("matmul", _matmul_flops, lambda n, a, b: np.dot(a, b)),
    "Dot22": ("matmul", _matmul_flops, lambda n, a, b: np.dot(a, b)),
    "Dot22Scalar": ("matmul", _dot22scalar_cost, lambda n, a, b, s: s * np.dot(a, b)),
    "BatchedDot": ("matmul", _matmul_flops, lambda n, a, b: np.matmul(a, b)),
    "Gemm": ("matmul", _gemm_cost, lambda n, z, alpha, x, y, beta: beta * z + alpha * np.dot(x, y)),
    "Gemv": ("matmul", _gemv_cost, lambda n, y, alpha, a, x, beta: beta * y + alpha * np.dot(a, x)),
    "CGemv": ("matmul", _gemv_cost, lambda n, y, alpha, a, x, beta: beta * y + alpha * np.dot(a, x)),
    "Ger": ("matmul", _ger_cost, lambda n, a, alpha, x, y: a + alpha * np.outer(x, y)),
    "CGer": ("matmul", _ger_cost, lambda n, a, alpha, x, y: a + alpha * np.outer(x, y)),
    "Softmax": ("elementwise", per_element(5), _softmax_impl),
    "LogSoftmax": ("elementwise", per_element(5), _log_softmax_impl),
    "SoftmaxGrad": ("elementwise", per_element(4), _softmax_grad_impl),
    "DimShuffle": ("data", no_flops, _dimshuffle_impl),
    "Reshape": ("data", no_flops, lambda n, x, shape: np.reshape(x, n.shape)),
    "SpecifyShape": ("data", no_flops, lambda n, x, *dims: x),
    "Shape": ("data", no_flops, lambda n, x: np.array(np.shape(x), dtype=n.dtype)),
    "Shape_i": ("data", no_flops, lambda n, x: np.shape(x)[n.attr("i")]),
    "MakeVector": ("data", no_flops, lambda n, *xs: np.array(xs, dtype=n.dtype)),
    "ScalarFromTensor": ("data", no_flops, lambda n, x: x),
    "TensorFromScalar": ("data", no_flops, lambda n, x: x),
    "Assert": ("data", no_flops, _assert_impl),
    "DeepCopyOp": ("data", no_flops, lambda n, x: np.array(x, copy=True)),
    "OutputGuard": ("data", no_flops, lambda n, x: x),
    "ViewOp": ("data", no_flops, lambda n, x: x),
    "Subtensor": ("data", no_flops, _subtensor_impl),
    "AdvancedSubtensor": ("data", no_flops, _subtensor_impl),
    "AdvancedSubtensor1": ("data", no_flops, _subtensor_impl),
    "IncSubtensor": ("data", _inc_cost, _inc_subtensor_impl),
    "AdvancedIncSubtensor": ("data", _inc_cost, _inc_subtensor_impl),
    "AdvancedIncSubtensor1": ("data", _inc_cost, _inc_subtensor_impl),
    "Join": ("data", no_flops, _join_impl),
    "Split": ("data", no_flops, None),  # several outputs; evaluated by PyTensor's perform
    "Alloc": ("source", no_flops, _alloc_impl),
    "AllocEmpty": ("source", no_flops, lambda n, *shape: np.zeros(n.shape, n.dtype)),
    "ARange": ("source", no_flops, _arange_impl),
}

MATMUL_CLASSES = frozenset(name for name, (kind, _, _) in FAMILIES.items() if kind == "matmul")


def _is_matmul_op(op) -> bool:
    from pytensor.tensor.blockwise import Blockwise

    if isinstance(op, Blockwise):
        return _is_matmul_op(op.core_op)
    return type(op).__name__ in MATMUL_CLASSES


def _blockwise_matmul_impl(node: Node, a, b):
    return np.matmul(a, b)


# PyTensor ops run through their own ``perform``: op name and attrs -> a bare Apply of that op.
_TEMPLATES: dict[tuple[str, tuple], Any] = {}


def _perform_impl(node: Node, *arrays):
    template = _TEMPLATES.get((node.op, _attrs_without_output(node.attrs)))
    if template is None:
        raise EvaluationError(f"evaluate: PyTensor op {node.op!r} (node {node.label}) was not imported in this process")
    op = template.op
    inputs = list(arrays)
    for position in {i for destroyed in getattr(op, "destroy_map", {}).values() for i in destroyed}:
        inputs[position] = np.array(inputs[position], copy=True)  # perform would overwrite it in place
    storage = [[None] for _ in template.outputs]
    op.perform(template, inputs, storage)
    return storage[node.attr("output", 0)][0]


def _attrs_without_output(attrs):
    return tuple(item for item in attrs if item[0] != "output")


_REGISTERED: dict[str, bool] = {}  # op name -> whether graphaudit has its own numpy implementation


def _register(name: str, op) -> bool:
    """Register ``name`` in graphaudit's op registry (once); True if it has its own numpy code."""
    known = _REGISTERED.get(name)
    if known is not None:
        return known
    from pytensor.tensor.blockwise import Blockwise
    from pytensor.tensor.elemwise import CAReduce, Elemwise

    pure = "RandomVariable" not in {c.__name__ for c in type(op).__mro__}
    kind, cost, impl = "imported", None, None
    if isinstance(op, Elemwise):
        scalar = name[name.index("{") + 1:-1]
        kind, cost = ("data" if SCALAR_OPS.get(scalar, (None, 1))[1] == 0 else "elementwise"), _elemwise_cost
        impl = _elemwise_impl if scalar in SCALAR_OPS else None
    elif isinstance(op, CAReduce):
        scalar, _ = _scalar_name(op.scalar_op)
        kind, cost = "reduction", reduction_cost
        impl = _reduce_impl if scalar in REDUCE_UFUNCS else None
    elif isinstance(op, _pytensor().scalar.ScalarOp):
        scalar = name[name.index("{") + 1:-1]
        kind, cost = ("data" if SCALAR_OPS.get(scalar, (None, 1))[1] == 0 else "elementwise"), _elemwise_cost
        impl = _elemwise_impl if scalar in SCALAR_OPS else None
    elif isinstance(op, Blockwise):
        if type(op.core_op).__name__ in ("Dot", "Dot22"):
            kind, cost, impl = "matmul", _matmul_flops, _blockwise_matmul_impl
    elif type(op).__name__ in FAMILIES:
        kind, cost, impl = FAMILIES[type(op).__name__]
    own = impl is not None
    if impl is None and hasattr(op, "perform"):
        impl = _perform_impl
    define_imported(name, kind=kind, cost=cost, impl=impl, pure=pure,
                    doc=f"PyTensor's {type(op).__name__}" + ("" if own else " (evaluated by its own perform)"))
    _REGISTERED[name] = own
    return own


# --- shape rules -----------------------------------------------------------------------------------


class _UnknownValue(ShapeError):
    """A shape rule needs a value (a slice bound, a reshape target) that is only known at run time."""


class _Shapes:
    """What a shape rule sees: the input shapes, the known small input values, the PyTensor Apply."""

    def __init__(self, apply, shapes, values):
        self.apply = apply
        self.op = apply.op
        self.shapes = shapes
        self.values = values

    def value(self, position: int, what: str) -> np.ndarray:
        value = self.values[position]
        if value is None:
            raise _UnknownValue(
                f"{type(self.op).__name__}: its output shape depends on the value of input {position} ({what}), "
                f"which is only known at run time; give PyTensor a static shape for it "
                f"(or shapes= for the inputs it is computed from)"
            )
        return value


def _broadcast_rule(s: _Shapes):
    try:
        return [tuple(np.broadcast_shapes(*s.shapes))] * len(s.apply.outputs)
    except ValueError:
        raise ShapeError(f"{s.op}: input shapes {' and '.join(map(str, s.shapes))} do not broadcast") from None


def _dot_rule(s: _Shapes):
    """numpy's dot for operands of one or two dimensions: ``a[:-1] + b[1:]``."""
    a, b = s.shapes[0], s.shapes[1]
    name = type(s.op).__name__
    if not 1 <= len(a) <= 2 or not 1 <= len(b) <= 2:
        raise ShapeError(f"{name}: needs operands of one or two dimensions, got shapes {a} and {b}")
    if a[-1] != b[0]:
        raise ShapeError(f"{name}: inner dimensions differ: {a} . {b} ({a[-1]} != {b[0]})")
    return [a[:-1] + b[1:]]


def _batched_dot_rule(s: _Shapes):
    a, b = s.shapes
    if len(a) != 3 or len(b) != 3 or a[0] != b[0] or a[2] != b[1]:
        raise ShapeError(f"BatchedDot: shapes {a} and {b} do not fit (B,m,k) @ (B,k,n)")
    return [(a[0], a[1], b[2])]


def _first_input_rule(s: _Shapes):
    return [s.shapes[0]]


def _parse_signature(signature: str):
    ins, outs = signature.replace(" ", "").split("->")

    def groups(text):
        return [tuple(d for d in g.split(",") if d) for g in text[1:-1].split("),(")] if text else []

    return groups(ins), groups(outs)


def _blockwise_rule(s: _Shapes):
    """Core dims bound from the inputs' trailing dimensions; batch dims broadcast."""
    core_in, core_out = _parse_signature(s.op.signature)
    bound: dict[str, int] = {}
    batches = []
    for shape, core in zip(s.shapes, core_in):
        if len(shape) < len(core):
            raise ShapeError(f"{s.op}: input of shape {shape} has fewer dimensions than its core {core}")
        batches.append(shape[: len(shape) - len(core)])
        for letter, size in zip(core, shape[len(shape) - len(core):]):
            if bound.setdefault(letter, size) != size:
                raise ShapeError(f"{s.op} ({s.op.signature}): dimension {letter!r} is both {bound[letter]} and {size}")
    try:
        batch = tuple(np.broadcast_shapes(*batches))
    except ValueError:
        raise ShapeError(f"{s.op}: batch shapes {batches} do not broadcast") from None
    shapes = []
    for core in core_out:
        if any(letter not in bound for letter in core):
            return None  # an output dimension no input fixes: leave it to PyTensor's static shape
        shapes.append(batch + tuple(bound[letter] for letter in core))
    return shapes


def _dimshuffle_rule(s: _Shapes):
    (shape,) = s.shapes
    order = s.op.new_order
    kept = [i for i in order if i != "x"]
    dropped = [i for i in range(len(shape)) if i not in kept]
    if any(shape[i] != 1 for i in dropped):
        raise ShapeError(f"{s.op}: cannot drop axes {dropped} of shape {shape}: they are not of length 1")
    return [tuple(1 if i == "x" else shape[i] for i in order)]


def _reduce_rule(s: _Shapes):
    (shape,) = s.shapes
    axis = s.op.axis
    axes = set(range(len(shape))) if axis is None else {a % len(shape) for a in axis}
    return [tuple(d for i, d in enumerate(shape) if i not in axes)]


def _reshape_rule(s: _Shapes):
    target = [int(v) for v in np.ravel(s.value(1, "the target shape"))]
    size = math.prod(s.shapes[0])
    if target.count(-1) == 1:
        known = math.prod(d for d in target if d != -1)
        if known == 0 or size % known:
            raise ShapeError(f"Reshape: cannot reshape {s.shapes[0]} to {tuple(target)}")
        target = [size // known if d == -1 else d for d in target]
    if math.prod(target) != size or any(d < 0 for d in target):
        raise ShapeError(f"Reshape: cannot reshape {s.shapes[0]} ({size} elements) to {tuple(target)}")
    return [tuple(target)]


def _index_entries(s: _Shapes, idx_list, first_index: int):
    """The index of a ``*Subtensor`` op as entries ``("slice", (start, stop, step))``, ``("scalar", value)``,
    ``("array", shape)``."""
    entries = []
    for entry in idx_list:
        if isinstance(entry, slice):
            bounds = tuple(None if p is None else int(s.value(first_index + p, "a slice bound")) for p in
                           (entry.start, entry.stop, entry.step))
            entries.append(("slice", bounds))
            continue
        position = first_index + entry
        shape = s.shapes[position]
        dtype = s.apply.inputs[position].type.dtype
        if dtype == "bool":
            mask = s.value(position, "a boolean mask")
            entries += [("array", (int(np.count_nonzero(mask)),))] * max(mask.ndim, 1)
        elif len(shape) == 0:
            entries.append(("scalar", s.values[position]))
        else:
            entries.append(("array", shape))
    return entries


def _indexed_shape(name: str, shape, entries):
    """numpy's rule for the shape of ``x[index]`` (basic and advanced indexing)."""
    if len(entries) > len(shape):
        raise ShapeError(f"{name}: {len(entries)} indices for an array of shape {shape}")
    entries = list(entries) + [("slice", (None, None, None))] * (len(shape) - len(entries))
    advanced = [i for i, (kind, _) in enumerate(entries) if kind == "array"]
    if advanced:
        advanced = [i for i, (kind, _) in enumerate(entries) if kind in ("array", "scalar")]
    out, placed = [], False
    for axis, ((kind, data), size) in enumerate(zip(entries, shape)):
        if kind == "slice":
            out.append(len(range(*slice(*data).indices(size))))
        elif kind == "scalar" and not advanced:
            if data is not None and not -size <= int(data) < size:
                raise ShapeError(f"{name}: index {int(data)} is out of range for axis {axis} of size {size}")
        elif not placed:
            shapes = [entries[i][1] if entries[i][0] == "array" else () for i in advanced]
            try:
                batch = list(np.broadcast_shapes(*shapes))
            except ValueError:
                raise ShapeError(f"{name}: index arrays of shapes {shapes} do not broadcast") from None
            contiguous = advanced == list(range(advanced[0], advanced[-1] + 1))
            out = (out + batch) if contiguous else (batch + out)
            placed = True
    return tuple(out)


def _subtensor_rule(s: _Shapes):
    idx_list = getattr(s.op, "idx_list", (0,))
    entries = _index_entries(s, idx_list, 1)
    return [_indexed_shape(type(s.op).__name__, s.shapes[0], entries)]


def _arange_rule(s: _Shapes):
    start, stop, step = (s.value(i, what).item() for i, what in enumerate(("start", "stop", "step")))
    if step == 0:
        raise ShapeError("ARange: step is 0")
    return [(builtins.max(0, math.ceil((stop - start) / step)),)]


def _alloc_rule(s: _Shapes):
    dims = tuple(int(s.value(i, "a dimension of the allocated shape")) for i in range(1, len(s.shapes)))
    try:
        np.broadcast_shapes(s.shapes[0], dims)
    except ValueError:
        raise ShapeError(f"Alloc: a value of shape {s.shapes[0]} does not broadcast to {dims}") from None
    return [dims]


def _alloc_empty_rule(s: _Shapes):
    return [tuple(int(s.value(i, "a dimension of the allocated shape")) for i in range(len(s.shapes)))]


def _join_rule(s: _Shapes):
    axis = int(s.value(0, "the axis"))
    parts = s.shapes[1:]
    first = parts[0]
    axis %= len(first)
    for part in parts[1:]:
        if len(part) != len(first) or any(a != b for i, (a, b) in enumerate(zip(part, first)) if i != axis):
            raise ShapeError(f"Join: shapes {first} and {part} differ off axis {axis}")
    return [first[:axis] + (sum(p[axis] for p in parts),) + first[axis + 1:]]


def _makevector_rule(s: _Shapes):
    return [(len(s.shapes),)]


def _scalar_rule(s: _Shapes):
    return [()] * len(s.apply.outputs)


SHAPE_RULES: dict[str, Callable[[_Shapes], list | None]] = {
    "Dot": _dot_rule, "Dot22": _dot_rule, "Dot22Scalar": _dot_rule, "BatchedDot": _batched_dot_rule,
    "Gemm": _first_input_rule, "Gemv": _first_input_rule, "CGemv": _first_input_rule, "Ger": _first_input_rule,
    "CGer": _first_input_rule, "Softmax": _first_input_rule, "LogSoftmax": _first_input_rule,
    "SoftmaxGrad": _first_input_rule, "DimShuffle": _dimshuffle_rule, "Reshape": _reshape_rule,
    "SpecifyShape": _first_input_rule, "Assert": _first_input_rule, "DeepCopyOp": _first_input_rule,
    "OutputGuard": _first_input_rule, "ViewOp": _first_input_rule, "Shape": lambda s: [(len(s.shapes[0]),)],
    "Shape_i": _scalar_rule, "MakeVector": _makevector_rule, "ScalarFromTensor": _scalar_rule,
    "TensorFromScalar": _scalar_rule, "Subtensor": _subtensor_rule, "AdvancedSubtensor": _subtensor_rule,
    "AdvancedSubtensor1": _subtensor_rule, "IncSubtensor": _first_input_rule,
    "AdvancedIncSubtensor": _first_input_rule, "AdvancedIncSubtensor1": _first_input_rule, "Join": _join_rule,
    "Alloc": _alloc_rule, "AllocEmpty": _alloc_empty_rule, "ARange": _arange_rule,
}


def _shape_rule(op) -> Callable | None:
    from pytensor.tensor.blockwise import Blockwise
    from pytensor.tensor.elemwise import CAReduce, Elemwise

    if isinstance(op, Elemwise):
        return _broadcast_rule
    if isinstance(op, CAReduce):
        return _reduce_rule
    if isinstance(op, Blockwise):
        return _blockwise_rule
    if isinstance(op, _pytensor().scalar.ScalarOp):
        return _scalar_rule
    return SHAPE_RULES.get(type(op).__name__)


# --- the importer ------------------------------------------------------------------------------------


def _static_shape(var) -> tuple[int | None, ...] | None:
    """PyTensor's static shape (``None`` per unknown dimension), or None for non-tensor types."""
    shape = getattr(var.type, "shape", None)
    if shape is not None:
        return tuple(None if d is None else int(d) for d in shape)
    if hasattr(var.type, "dtype") and type(var.type).__name__ == "ScalarType":
        return ()
    return None


def _dtype(var) -> np.dtype:
    dtype = getattr(var.type, "dtype", None)
    try:
        return np.dtype(dtype) if dtype is not None else np.dtype(object)
    except TypeError:
        return np.dtype(object)


def _shape_text(shape) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


@dataclass
class Imported:
    """PyTensor variables as graphaudit nodes: what :func:`from_pytensor` returns.

    ``outputs`` are the nodes of the variables asked for, in order; ``nodes`` maps every
    imported PyTensor variable to its node; ``leaves`` are the placeholders and parameters
    (inputs and shared variables) in the order first met. ``no_cost_rule`` counts, by op, the
    nodes whose FLOPs graphaudit cannot count; ``evaluated_by_pytensor`` names the ops that
    :func:`graphaudit.evaluate` runs through PyTensor's own ``perform``.
    """

    outputs: list[Node]
    nodes: dict[Any, Node]
    leaves: list[Node]
    no_cost_rule: dict[str, int] = field(default_factory=dict)
    evaluated_by_pytensor: list[str] = field(default_factory=list)

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


class _Importer:
    """Turns PyTensor variables into nodes, memoised, so several imports share their common part."""

    def __init__(self, shapes: Mapping | None, parameters: Sequence = ()):
        self.pt = _pytensor()
        self.nodes: dict[Any, Node] = {}
        self.values: dict[Any, np.ndarray] = {}  # known small integer values (shape arithmetic)
        self.leaves: list[Node] = []
        self.names_taken: set[str] = set()
        self.parameters = set(parameters)
        self.shapes_by_var: dict[Any, tuple[int, ...]] = {}
        self.shapes_by_name: dict[str, tuple[int, ...]] = {}
        self.used_shape_keys: set = set()
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
        self.own_impl: dict[str, bool] = {}

    # -- public --

    def import_outputs(self, outputs: Sequence, call: GradCall | None = None) -> list[Node]:
        saved = build_context.call, build_context.origin
        build_context.call, build_context.origin = call, None
        try:
            for variable in outputs:
                self._import(variable)
        finally:
            build_context.call, build_context.origin = saved
        return [self.nodes[v] for v in outputs]

    def check_shape_keys(self) -> None:
        """Every key of ``shapes=`` must name an input the graph reads."""
        unused = [k for k in list(self.shapes_by_var) + list(self.shapes_by_name) if k not in self.used_shape_keys]
        if unused:
            inputs = ", ".join(leaf.name for leaf in self.leaves)
            raise ValueError(f"shapes: {unused[0]!r} is not an input of the graph (its inputs: {inputs})")

    def result(self, outputs: list[Node]) -> Imported:
        order = topological_order(outputs)
        unknown: dict[str, int] = {}
        for node in order:
            if not node.is_leaf and get_op(node.op).cost is None:
                unknown[node.op] = unknown.get(node.op, 0) + 1
        by_pytensor = sorted({n.op for n in order if not n.is_leaf and not self.own_impl.get(n.op, True)})
        return Imported(outputs, dict(self.nodes), list(self.leaves), dict(sorted(unknown.items())), by_pytensor)

    # -- walking --

    def _import(self, root) -> None:
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
                self._apply(apply)
                continue
            stack.append((variable, True))
            for source in reversed(apply.inputs):
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
        dtype = _dtype(variable)
        if isinstance(variable, pt.graph.basic.Constant):
            static = _static_shape(variable)
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
        static = _static_shape(variable)
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
                    f"(static shape {_shape_text(static)})"
                )
            return given
        if any(d is None for d in static):
            raise ShapeError(
                f"the shape of input {name!r} ({variable.type}, static shape {_shape_text(static)}) is not known: "
                f"give it, e.g. shapes={{{name!r}: (...)}}, or a static shape in PyTensor"
            )
        return static

    def _apply(self, apply) -> None:
        op = apply.op
        name, attrs = _op_spec(op)
        self.own_impl[name] = _register(name, op)
        if (name, attrs) not in _TEMPLATES and not self.own_impl[name]:
            bare = type(apply)(op, [i.type() for i in apply.inputs], [o.type() for o in apply.outputs])
            _TEMPLATES[(name, attrs)] = bare  # same op and types, none of the graph: nothing kept alive
        inputs = tuple(self.nodes[i] for i in apply.inputs)
        shapes = self._output_shapes(apply, name, inputs)
        several = len(apply.outputs) > 1
        for position, (output, shape) in enumerate(zip(apply.outputs, shapes)):
            node_attrs = tuple(sorted(attrs + (("output", position),))) if several else attrs
            node = Node(name, inputs, node_attrs, shape, _dtype(output))
            self.nodes[output] = node
        self._known_values(apply, inputs)

    def _output_shapes(self, apply, name: str, inputs: tuple[Node, ...]) -> list[tuple[int, ...]]:
        statics = [_static_shape(o) for o in apply.outputs]
        rule = _shape_rule(apply.op)
        inferred = None
        if rule is not None:
            view = _Shapes(apply, [n.shape for n in inputs], [self.values.get(i) for i in apply.inputs])
            try:
                inferred = rule(view)
            except _UnknownValue as error:
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
                        f"{shape}, but PyTensor's type says {_shape_text(static)}: are the shapes= given right?"
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
                f"its output shape {_shape_text(_static_shape(apply.outputs[position]))} from inputs of shapes "
                f"{[n.shape for n in inputs]}"
            )
        return tuple(int(d) for d in shape)

    def _where(self, apply) -> str:
        names = [i.name or type(i.type).__name__ for i in apply.inputs]
        return f"applied to {', '.join(names)}"

    def _known_values(self, apply, inputs) -> None:
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
        if not all(i in self.values for i in apply.inputs) or not self.own_impl.get(self.nodes[apply.outputs[0]].op):
            return
        arrays = [self.values[i] for i in apply.inputs]
        for output in apply.outputs:
            node = self.nodes[output]
            try:
                with np.errstate(all="ignore"):
                    value = np.asarray(get_op(node.op).impl(node, *arrays), dtype=node.dtype)
            except Exception:  # noqa: BLE001 - a value we cannot compute now is simply not known
                return
            if value.shape == node.shape:
                self.values[output] = value


def _as_list(variables, what: str) -> tuple[list, bool]:
    pt = _pytensor()
    single = isinstance(variables, pt.graph.basic.Variable)
    items = [variables] if single else list(variables)
    for position, item in enumerate(items):
        if not isinstance(item, pt.graph.basic.Variable):
            raise TypeError(f"{what}[{position}] is a {type(item).__name__}, not a PyTensor variable")
    return items, single


def from_pytensor(outputs, *, shapes: Mapping | None = None, parameters: Sequence = ()) -> Imported:
    """Import PyTensor variables (and everything they are computed from) as graphaudit nodes.

    ``shapes`` gives the shapes of inputs whose static shape PyTensor does not know, keyed by
    variable or by name (``{"x": (128, 16384)}``); ``parameters`` lists inputs that are not
    shared variables but should be parameters (what you differentiate). Returns an
    :class:`Imported`: ``.outputs`` are the nodes, ``.feed({...})`` makes an evaluation feed.
    """
    variables, _ = _as_list(outputs, "from_pytensor: outputs")
    if not variables:
        raise ValueError("from_pytensor: outputs is empty")
    importer = _Importer(shapes, parameters)
    nodes = importer.import_outputs(variables)
    importer.check_shape_keys()
    return importer.result(nodes)


# --- counting and PyTensor's own rewrites ------------------------------------------------------------


def _traversal():
    """``pytensor.graph.traversal`` (PyTensor 3), or ``pytensor.graph.basic`` where older releases keep the walks."""
    _pytensor()
    try:
        from pytensor.graph import traversal
    except ImportError:
        from pytensor.graph import basic as traversal
    return traversal


def _roots(outputs) -> list:
    pt = _pytensor()
    return [v for v in _traversal().graph_inputs(outputs) if not isinstance(v, pt.graph.basic.Constant)]


def _applies(outputs) -> list:
    return list(_traversal().applys_between(_roots(outputs), outputs))


def matmul_count(applies) -> int:
    """How many of these PyTensor Apply nodes are matrix products (Dot, Dot22, Gemm, ..., Blockwise{Dot})."""
    return sum(_is_matmul_op(a.op) for a in applies)


def merge_optimizer(outputs) -> dict[str, Any]:
    """Run PyTensor's ``MergeOptimizer`` alone on a clone of the graph of ``outputs``.

    Returns ``nodes`` and ``dots`` (Apply nodes after merging), ``seconds``, and ``merged``:
    the pairs ``(removed, kept)`` of Apply nodes *of the original graph* that it merged.
    """
    pt = _pytensor()
    from pytensor.graph.basic import clone_get_equiv
    from pytensor.graph.features import Feature
    from pytensor.graph.fg import FunctionGraph
    from pytensor.graph.rewriting.basic import MergeOptimizer

    outputs = list(outputs)
    inputs = _roots(outputs)
    equiv = clone_get_equiv(inputs, outputs)
    original = {clone: orig for orig, clone in equiv.items() if isinstance(orig, pt.graph.basic.Apply)}

    class Replacements(Feature):
        def __init__(self):
            self.pairs = []

        def on_change_input(self, fgraph, node, i, var, new_var, reason=None):
            if var.owner is not None and new_var.owner is not None:
                self.pairs.append((var.owner, new_var.owner))

    graph = FunctionGraph([equiv[v] for v in inputs], [equiv[v] for v in outputs], clone=False)
    seen = Replacements()
    graph.attach_feature(seen)
    start = time.perf_counter()
    MergeOptimizer().rewrite(graph)
    seconds = time.perf_counter() - start
    merged = list(dict.fromkeys(
        (original[a], original[b]) for a, b in seen.pairs if a in original and b in original and a is not b
    ))
    return {"nodes": len(graph.apply_nodes), "dots": matmul_count(graph.apply_nodes), "seconds": seconds,
            "merged": merged}


def default_compile(outputs, mode=None) -> dict[str, Any]:
    """Compile ``outputs`` with ``pytensor.function`` (default mode unless ``mode``): nodes and dots it keeps."""
    pt = _pytensor()
    outputs = list(outputs)
    inputs = [v for v in _roots(outputs) if not isinstance(v, pt.compile.sharedvalue.SharedVariable)]
    start = time.perf_counter()
    function = pt.function(inputs, outputs, mode=mode, on_unused_input="ignore")
    seconds = time.perf_counter() - start
    applies = function.maker.fgraph.apply_nodes
    return {"nodes": len(applies), "dots": matmul_count(applies), "seconds": seconds}


def mode_name(mode) -> str:
    """``"default mode, Numba"``, ``"FAST_COMPILE, VM"``: the mode and its linker, briefly."""
    pt = _pytensor()
    resolved = pt.compile.mode.get_mode(mode)
    linker = type(resolved.linker).__name__.removesuffix("Linker") or "?"
    return f"{mode if isinstance(mode, str) else 'default mode'}, {linker}"


# --- the audit -------------------------------------------------------------------------------------


def _stats(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    quartiles = statistics.quantiles(ordered, n=4) if len(ordered) > 1 else [ordered[0]] * 3
    return {
        "median": statistics.median(ordered), "mean": statistics.fmean(ordered),
        "stdev": statistics.stdev(ordered) if len(ordered) > 1 else 0.0,
        "q1": quartiles[0], "q3": quartiles[2], "min": ordered[0], "max": ordered[-1],
    }


def build_both(cost, wrt: list, repeats: int) -> tuple[list, list, dict[str, Any]]:
    """Build the separate and the joint grads ``repeats`` times each, alternating, timing each build.

    Returns the first separate form, the first joint form, and the build-time statistics
    (seconds: median, mean, stdev, quartiles, min, max). A plain loop, like the seed's: the
    garbage collector runs when it runs, and its pauses are part of the cost of building.
    """
    pt = _pytensor()
    if repeats < 1:
        raise ValueError(f"audit: repeats must be >= 1, got {repeats}")
    times = {"separate": [], "joint": []}
    kept: dict[str, list] = {}

    def build(form):
        if form == "separate":
            return [pt.grad(cost, [p])[0] for p in wrt]
        return list(pt.grad(cost, wrt))

    for form in ("joint", "separate"):  # warm-up, untimed: the first grad call in a process pays for imports
        build(form)
    for rep in range(repeats):
        for form in (("joint", "separate") if rep % 2 == 0 else ("separate", "joint")):
            start = time.perf_counter()
            grads = build(form)
            times[form].append(time.perf_counter() - start)
            kept.setdefault(form, grads)
    stats = {form: _stats(times[form]) for form in ("joint", "separate")}
    build_seconds = {
        "repeats": repeats,
        "calls": {"joint": 1, "separate": len(wrt)},
        **stats,
        "separate_over_joint": stats["separate"]["median"] / stats["joint"]["median"],
    }
    return kept["separate"], kept["joint"], build_seconds


def audit(
    cost,
    wrt,
    *,
    shapes: Mapping | None = None,
    compile_check: bool = False,
    repeats: int = 20,
    mode=None,
    commutative: bool = False,
) -> Report:
    """Audit PyTensor's separate grads (one ``pytensor.grad(cost, [p])`` per ``p``) against its joint grad.

    ``cost`` is a scalar PyTensor variable, ``wrt`` a variable or a list of them (shared
    variables, or inputs, which then count as parameters). ``shapes`` gives the shapes of
    inputs whose static shape PyTensor does not know (``{"x": (128, 16384), "y": (128,)}``).
    Both forms are built ``repeats`` times; the report's build times are the medians, and
    ``report.framework["build_seconds"]`` holds the spread. With ``compile_check=True``,
    ``report.framework["compile_check"]`` also holds what PyTensor's ``MergeOptimizer`` and its
    compile rewrites (``mode``, default: PyTensor's default mode) keep of each form.
    """
    pt = _pytensor()
    (cost,), _ = _as_list(cost, "audit: cost")
    if getattr(cost.type, "ndim", None) != 0 or _dtype(cost).kind != "f":
        raise ValueError(f"audit: cost must be a floating-point scalar, got {cost.type} ({cost})")
    targets, _ = _as_list(wrt, "audit: wrt")
    if not targets:
        raise ValueError("audit: wrt is empty; pass at least one variable")
    separate_vars, joint_vars, build_seconds = build_both(cost, targets, repeats)

    importer = _Importer(shapes, [t for t in targets if t.owner is None])
    (cost_node,) = importer.import_outputs([cost])
    wrt_names = []
    for position, (target, node) in enumerate(zip(targets, importer.import_outputs(targets)), start=1):
        wrt_names.append(node.name if node.is_leaf else (target.name or f"wrt{position}"))
    separate = []
    for name, variable in zip(wrt_names, separate_vars):
        separate += importer.import_outputs([variable], GradCall([name]))
    joint = importer.import_outputs(joint_vars, GradCall(wrt_names))
    importer.check_shape_keys()

    names = _forward_names(importer, cost_node)
    report = compare_forms(
        separate, joint, wrt=wrt_names, names=names,
        build_seconds=(build_seconds["separate"]["median"], build_seconds["joint"]["median"]),
        commutative=commutative,
    )
    framework: dict[str, Any] = {"name": "PyTensor", "version": pt.__version__, "build_seconds": build_seconds}
    if compile_check:
        framework["compile_check"] = _compile_check(report, importer, separate_vars, joint_vars, mode)
    report.framework = framework
    return report


def _forward_names(importer: _Importer, cost_node: Node) -> dict[Node, str]:
    """Forward nodes named like ``Elemwise{sigmoid}_2`` (the op without ``pytensor.``), by op and position."""
    names = forward_names(topological_order([cost_node]))
    return {node: name[len(PREFIX):] if name.startswith(PREFIX) else name for node, name in names.items()}


def _compile_check(report: Report, importer: _Importer, separate_vars, joint_vars, mode) -> dict[str, Any]:
    from graphaudit.cost import is_matmul

    def ga_counts(form):
        order = [n for n in topological_order(report.forms[form].outputs) if not n.is_leaf]
        return {"nodes": len(order), "dots": sum(is_matmul(n) for n in order),
                "seconds": report.forms[form].build_seconds if form.endswith("_merged") else None}

    rows = []
    as_built = {}
    for form, variables in (("separate", separate_vars), ("joint", joint_vars)):
        applies = _applies(variables)
        as_built[form] = {"nodes": len(applies), "dots": matmul_count(applies), "seconds": None}
    rows.append({"graph": "as built (PyTensor Apply nodes)", **as_built})
    rows.append({"graph": "graphaudit merge", "separate": ga_counts("separate_merged"),
                 "joint": ga_counts("joint_merged")})
    pt_merge = {form: merge_optimizer(v) for form, v in (("separate", separate_vars), ("joint", joint_vars))}
    rows.append({"graph": "PyTensor MergeOptimizer",
                 **{form: {k: r[k] for k in ("nodes", "dots", "seconds")} for form, r in pt_merge.items()}})
    compiled = {form: default_compile(v, mode) for form, v in (("separate", separate_vars), ("joint", joint_vars))}
    rows.append({"graph": f"PyTensor compile ({mode_name(mode)})", **compiled})

    missed = {}
    for form in ("separate", "joint"):
        mapping = report.merges[form].mapping
        missed[form] = sum(
            any(mapping[importer.nodes[a]] is not mapping[importer.nodes[b]] for a, b in zip(x.outputs, y.outputs))
            for x, y in pt_merge[form]["merged"]
        )
    return {
        "title": "what PyTensor's compiler gets back",
        "rows": rows,
        "merge_optimizer_merges": {form: len(pt_merge[form]["merged"]) for form in ("separate", "joint")},
        "merges_graphaudit_missed": missed,
    }
