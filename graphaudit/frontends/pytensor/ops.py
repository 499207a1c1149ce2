"""PyTensor's Ops as graphaudit ops: their names and attrs, how they count, how numpy runs them.

- Names are ``"pytensor." + the Op's class name`` (``pytensor.Dot``, ``pytensor.DimShuffle``,
  ``pytensor.Sum``, ``pytensor.AdvancedIncSubtensor``); elementwise ops are named by their
  scalar op (``pytensor.Elemwise{sigmoid}``, ``pytensor.Elemwise{cast}``: the scalar op's
  class name in lower case), a ``Blockwise`` by its core op (``pytensor.Blockwise{Dot}``,
  what ``x @ W`` builds).
- The Op's ``__props__`` become the node's attrs (slices as ``("slice", start, stop, step)``,
  dicts as sorted tuples, dtypes and types as strings), so two nodes merge exactly when
  PyTensor would call their Ops equal and their inputs are the same.
- Costs follow graphaudit's conventions (:mod:`graphaudit.analysis.cost`): ``Dot``, ``Dot22``, the
  ``Gemm``/``Gemv``/``Ger`` family, ``BatchedDot`` and ``Blockwise{Dot}`` are matmuls
  (``2*m*k*n``, plus one FLOP per element for Gemm's scale-and-add); elementwise ops one
  FLOP per output element (a fused ``Composite`` one per scalar op inside; ``cast``,
  ``second`` and ``identity`` none: they move data); reductions one per input element; the
  softmax family like graphaudit's softmax; indexing, shuffling and shape ops none. Ops
  without a rule are kept, counted, and listed in reports as "no cost rule", never dropped.
- The ops of ordinary gradient graphs (all of the seed MLP's) have numpy code here; any
  other op runs through its own PyTensor ``perform`` (on copies of the inputs it would
  overwrite).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from graphaudit.errors import EvaluationError
from graphaudit.frontends import require
from graphaudit.frontends.common import UNKNOWN, ImportedOp, Opaque, OpTable, hashable_param
from graphaudit.frontends.pytensor.indexing import python_index
from graphaudit.frontends.pytensor.perform import perform_impl, scan_impl
from graphaudit.core.graph import Node
from graphaudit.core.ops import OPS, get_op, no_flops, per_element, reduction_cost

PREFIX = "pytensor."

# graphaudit's own ops whose numpy code and FLOP rules PyTensor's equal ops share
_MATMUL, _SIGMOID = get_op("matmul"), get_op("sigmoid")
_SOFTMAX, _LOG_SOFTMAX = get_op("softmax"), get_op("log_softmax")


def pytensor_module():
    return require("pytensor", "pytensor")


# --- names and attrs -------------------------------------------------------------------------


def _hashable(value: Any) -> Any:
    """A hashable, process-independent stand-in for an op parameter (its repr is stable too)."""
    # Not hashable_param beyond numbers: no Op is rebuilt from attrs (perform runs a kept Apply), so attrs are
    # what numpy code reads (slices as tuples, dtypes as names), and nested Ops compare by props, as in PyTensor.
    if value is None or isinstance(value, (bool, int, float, str, np.bool_, np.integer)):
        return hashable_param(value)
    if isinstance(value, np.floating):
        return float(value)  # a long double too, which hashable_param would keep as one
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
        return (name.removeprefix(PREFIX), attrs)
    text = str(value)
    return type(value).__name__ if " at 0x" in text else text


def _is_op(value: Any) -> bool:
    pt = pytensor_module()
    return isinstance(value, (pt.graph.op.Op, pt.scalar.ScalarOp))


def _props(op) -> tuple[tuple[str, Any], ...]:
    """An op's parameters as attrs: its ``__props__``; an op without them by a digest of its state, the same
    whatever was imported before it and in every process (two instances with equal state compute alike)."""
    props = getattr(type(op), "__props__", None)
    if props is None:
        return (("instance", Opaque(op).digest),)
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
    pt = pytensor_module()
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
        return f"{PREFIX}Blockwise{{{core.removeprefix(PREFIX)}}}", tuple(sorted(attrs))
    attrs = list(_props(op))
    name = type(op).__name__
    if isinstance(op, CAReduce):
        scalar, _ = _scalar_name(op.scalar_op)
        attrs = [(k, scalar if k == "scalar_op" else v) for k, v in attrs]
        if name == "CAReduce":
            name = f"CAReduce{{{scalar}}}"
    return PREFIX + name, tuple(sorted(attrs))


# --- elementwise ops, by scalar op -----------------------------------------------------------


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
    "tan": (np.tan, 1), "arctan": (np.arctan, 1), "sigmoid": (lambda x: _SIGMOID.impl(None, x), 1),
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


def _scalar_of(op_name: str) -> str:
    """``"sigmoid"`` of ``"pytensor.Elemwise{sigmoid}"``."""
    return op_name[op_name.index("{") + 1:-1]


def _elemwise_impl(node: Node, *arrays):
    scalar = _scalar_of(node.op)
    if scalar == "second":
        return np.broadcast_to(arrays[1], node.shape)
    return SCALAR_OPS[scalar][0](*arrays)


def _elemwise_cost(node: Node) -> int:
    scalar = _scalar_of(node.op)
    per = node.attr("scalar_ops") if scalar == "composite" else SCALAR_OPS.get(scalar, (None, 1))[1]
    return per * node.size


# --- cost rules and numpy code of the other ops ----------------------------------------------


def _gemm_cost(node: Node) -> int:  # beta*z + alpha*(x @ y)
    x = node.inputs[2]
    return 2 * node.size * x.shape[1] + 3 * node.size


def _gemv_cost(node: Node) -> int:  # beta*y + alpha*(A @ x)
    a = node.inputs[2]
    return 2 * node.size * a.shape[1] + 3 * node.size


def _ger_cost(node: Node) -> int:  # A + alpha * outer(x, y)
    return 3 * node.size


def _dot22scalar_cost(node: Node) -> int:
    return _MATMUL.cost(node) + node.size


def _inc_cost(node: Node) -> int:
    """One FLOP per element of the increment (none when setting)."""
    return 0 if node.attr("set_instead_of_inc") else node.inputs[1].size


def _scan_cost(node: Node) -> int:
    """A Scan kept as a unit (:mod:`.scan`): its body's FLOPs once per step."""
    return node.attr("steps") * node.attr("body_flops")


def _scan_matmul_cost(node: Node) -> int:
    """A Scan kept as a unit: the FLOPs of its body's products once per step."""
    return node.attr("steps") * node.attr("body_matmul_flops")


def _scan_bound(node: Node) -> str | None:
    """A Scan kept as a unit: which bound its figures are (a while loop's n_steps: upper), None for a count."""
    return node.attr("bound", None)


def _softmax_grad_impl(node: Node, dy, sm):
    product = dy * sm
    return product - np.sum(product, axis=node.attr("axis"), keepdims=True) * sm


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


def _subtensor_impl(node: Node, x, *indices):
    return np.array(x[python_index(node.attr("idx_list"), indices)])


def _inc_subtensor_impl(node: Node, x, y, *indices):
    index = python_index(node.attr("idx_list"), indices)
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


# --- the table -------------------------------------------------------------------------------


def _dot(node: Node, a, b):
    return np.dot(a, b)


def _gemv(node: Node, y, alpha, a, x, beta):
    return beta * y + alpha * np.dot(a, x)


def _ger(node: Node, a, alpha, x, y):
    return a + alpha * np.outer(x, y)


# Op class name -> how it counts and runs (no impl: PyTensor's perform)
TABLE = OpTable(PREFIX, {
    "Dot": ImportedOp("matmul", _MATMUL.cost, _dot),
    "Dot22": ImportedOp("matmul", _MATMUL.cost, _dot),
    "Dot22Scalar": ImportedOp("matmul", _dot22scalar_cost, lambda n, a, b, s: s * np.dot(a, b)),
    "BatchedDot": ImportedOp("matmul", _MATMUL.cost, _MATMUL.impl),
    "Gemm": ImportedOp("matmul", _gemm_cost, lambda n, z, alpha, x, y, beta: beta * z + alpha * np.dot(x, y)),
    "Gemv": ImportedOp("matmul", _gemv_cost, _gemv),
    "CGemv": ImportedOp("matmul", _gemv_cost, _gemv),
    "Ger": ImportedOp("matmul", _ger_cost, _ger),
    "CGer": ImportedOp("matmul", _ger_cost, _ger),
    "Softmax": ImportedOp("elementwise", per_element(5), _SOFTMAX.impl),
    "LogSoftmax": ImportedOp("elementwise", per_element(5), _LOG_SOFTMAX.impl),
    "SoftmaxGrad": ImportedOp("elementwise", per_element(4), _softmax_grad_impl),
    "DimShuffle": ImportedOp("data", no_flops, _dimshuffle_impl),
    "Reshape": ImportedOp("data", no_flops, lambda n, x, shape: np.reshape(x, n.shape)),
    "SpecifyShape": ImportedOp("data", no_flops, lambda n, x, *dims: x),
    "Shape": ImportedOp("data", no_flops, lambda n, x: np.array(np.shape(x), dtype=n.dtype)),
    "Shape_i": ImportedOp("data", no_flops, lambda n, x: np.shape(x)[n.attr("i")]),
    "MakeVector": ImportedOp("data", no_flops, lambda n, *xs: np.array(xs, dtype=n.dtype)),
    "ScalarFromTensor": ImportedOp("data", no_flops, lambda n, x: x),
    "TensorFromScalar": ImportedOp("data", no_flops, lambda n, x: x),
    "Assert": ImportedOp("data", no_flops, _assert_impl),
    "DeepCopyOp": ImportedOp("data", no_flops, lambda n, x: np.array(x, copy=True)),
    "OutputGuard": ImportedOp("data", no_flops, lambda n, x: x),
    "ViewOp": ImportedOp("data", no_flops, lambda n, x: x),
    "Subtensor": ImportedOp("data", no_flops, _subtensor_impl),
    "AdvancedSubtensor": ImportedOp("data", no_flops, _subtensor_impl),
    "AdvancedSubtensor1": ImportedOp("data", no_flops, _subtensor_impl),
    "IncSubtensor": ImportedOp("data", _inc_cost, _inc_subtensor_impl),
    "AdvancedIncSubtensor": ImportedOp("data", _inc_cost, _inc_subtensor_impl),
    "AdvancedIncSubtensor1": ImportedOp("data", _inc_cost, _inc_subtensor_impl),
    "Join": ImportedOp("data", no_flops, _join_impl),
    "Split": ImportedOp("data", no_flops),  # several outputs; evaluated by PyTensor's perform
    "Alloc": ImportedOp("source", no_flops, _alloc_impl),
    "AllocEmpty": ImportedOp("source", no_flops, lambda n, *shape: np.zeros(n.shape, n.dtype)),
    "ARange": ImportedOp("source", no_flops, _arange_impl),
    # a Scan kept as a unit: one node costing its body x steps, its results picked by nodes that write them
    "Scan": ImportedOp("loop", _scan_cost, scan_impl, view=True, matmul_cost=_scan_matmul_cost, bound=_scan_bound),
}, fallback_impl=perform_impl)


def _row(op, name: str) -> ImportedOp:
    """How ``op`` counts and runs: by its scalar op, its core op, or else its class."""
    from pytensor.raise_op import CheckAndRaise
    from pytensor.tensor.blockwise import Blockwise
    from pytensor.tensor.elemwise import CAReduce, Elemwise

    if isinstance(op, (Elemwise, pytensor_module().scalar.ScalarOp)):
        scalar = _scalar_of(name)
        kind = "data" if SCALAR_OPS.get(scalar, (None, 1))[1] == 0 else "elementwise"
        return ImportedOp(kind, _elemwise_cost, _elemwise_impl if scalar in SCALAR_OPS else None)
    if isinstance(op, CAReduce):
        scalar, _ = _scalar_name(op.scalar_op)
        return ImportedOp("reduction", reduction_cost, _reduce_impl if scalar in REDUCE_UFUNCS else None)
    if isinstance(op, Blockwise):
        if type(op.core_op).__name__ in ("Dot", "Dot22"):
            return ImportedOp("matmul", _MATMUL.cost, _MATMUL.impl)
        return UNKNOWN
    if isinstance(op, CheckAndRaise):  # Assert, and PyMC's CheckParameterValue: checks, no arithmetic
        return TABLE.row("Assert")
    return TABLE.row(type(op).__name__)


def imported_op(op) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """The graphaudit op name and attrs of PyTensor Op ``op``, registered on first sight.

    Only the first sight asks how the op counts and runs: its name says its class, and so
    its row and its purity, which later sightings need not check again.
    """
    name, attrs = _op_spec(op)
    if name not in OPS:
        row = _row(op, name)._replace(view=bool(getattr(op, "view_map", None)))  # PyTensor says which ops view
        pure = "RandomVariable" not in {c.__name__ for c in type(op).__mro__}
        doc = f"PyTensor's {type(op).__name__}" + ("" if row.impl else " (evaluated by its own perform)")
        TABLE.op_name(name.removeprefix(PREFIX), pure=pure, row=row, doc=doc)
    return name, attrs
