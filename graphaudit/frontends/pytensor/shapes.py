"""Shape rules for PyTensor ops whose output shape PyTensor's static types leave open.

PyTensor's types give a static shape with ``None`` for each dimension known only at run
time (a batch size, say). The importer starts from the shapes given for the inputs
(``shapes=``) and asks a rule here for each op's output shapes, with the small integer
values computed so far (``x.shape[0]``, ``arange`` bounds, reshape targets) beside them.
An op without a rule is asked of PyTensor itself, rebuilt on inputs of known shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from graphaudit.errors import ShapeError
from graphaudit.frontends.pytensor.indexing import NEWAXIS
from graphaudit.frontends.pytensor.ops import pytensor_module


def static_shape(var) -> tuple[int | None, ...] | None:
    """PyTensor's static shape (``None`` per unknown dimension), or None for non-tensor types."""
    shape = getattr(var.type, "shape", None)
    if shape is not None:
        return tuple(None if d is None else int(d) for d in shape)
    if hasattr(var.type, "dtype") and type(var.type).__name__ == "ScalarType":
        return ()
    return None


def shape_text(shape) -> str:
    """``(3, ?)``: a static shape with its unknown dimensions as ``?``."""
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


class UnknownValue(ShapeError):
    """A shape rule needs a value (a slice bound, a reshape target) that is only known at run time."""


class Shapes:
    """What a shape rule sees: the PyTensor Apply, the variables its node reads (``inputs``), their
    shapes and known small values, and an indexing op's index list (:mod:`.indexing`)."""

    def __init__(self, apply, inputs, shapes, values, idx_list=None):
        self.apply = apply
        self.op = apply.op
        self.inputs = inputs
        self.shapes = shapes
        self.values = values
        self.idx_list = idx_list

    def value(self, position: int, what: str) -> np.ndarray:
        value = self.values[position]
        if value is None:
            raise UnknownValue(
                f"{type(self.op).__name__}: its output shape depends on the value of input {position} ({what}), "
                f"which is only known at run time; give PyTensor a static shape for it "
                f"(or shapes= for the inputs it is computed from)"
            )
        return value


def _broadcast_rule(s: Shapes):
    try:
        return [tuple(np.broadcast_shapes(*s.shapes))] * len(s.apply.outputs)
    except ValueError:
        raise ShapeError(f"{s.op}: input shapes {' and '.join(map(str, s.shapes))} do not broadcast") from None


def _dot_rule(s: Shapes):
    """numpy's dot for operands of one or two dimensions: ``a[:-1] + b[1:]``."""
    a, b = s.shapes[0], s.shapes[1]
    name = type(s.op).__name__
    if not 1 <= len(a) <= 2 or not 1 <= len(b) <= 2:
        raise ShapeError(f"{name}: needs operands of one or two dimensions, got shapes {a} and {b}")
    if a[-1] != b[0]:
        raise ShapeError(f"{name}: inner dimensions differ: {a} . {b} ({a[-1]} != {b[0]})")
    return [a[:-1] + b[1:]]


def _batched_dot_rule(s: Shapes):
    a, b = s.shapes
    if len(a) != 3 or len(b) != 3 or a[0] != b[0] or a[2] != b[1]:
        raise ShapeError(f"BatchedDot: shapes {a} and {b} do not fit (B,m,k) @ (B,k,n)")
    return [(a[0], a[1], b[2])]


def _first_input_rule(s: Shapes):
    return [s.shapes[0]]


def _parse_signature(signature: str):
    ins, outs = signature.replace(" ", "").split("->")

    def groups(text):
        return [tuple(d for d in g.split(",") if d) for g in text[1:-1].split("),(")] if text else []

    return groups(ins), groups(outs)


def _blockwise_rule(s: Shapes):
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


def _dimshuffle_rule(s: Shapes):
    (shape,) = s.shapes
    order = s.op.new_order
    kept = [i for i in order if i != "x"]
    dropped = [i for i in range(len(shape)) if i not in kept]
    if any(shape[i] != 1 for i in dropped):
        raise ShapeError(f"{s.op}: cannot drop axes {dropped} of shape {shape}: they are not of length 1")
    return [tuple(1 if i == "x" else shape[i] for i in order)]


def _reduce_rule(s: Shapes):
    (shape,) = s.shapes
    axis = s.op.axis
    axes = set(range(len(shape))) if axis is None else {a % len(shape) for a in axis}
    return [tuple(d for i, d in enumerate(shape) if i not in axes)]


def _reshape_rule(s: Shapes):
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


def _index_entries(s: Shapes, idx_list, first_index: int):
    """The index of a ``*Subtensor`` op as entries ``("slice", (start, stop, step))``, ``("scalar", value)``,
    ``("array", shape)``, ``("newaxis", None)``."""
    entries = []
    for entry in idx_list:
        if entry == NEWAXIS:
            entries.append((NEWAXIS, None))
            continue
        if isinstance(entry, tuple):  # ("slice", start, stop, step)
            bounds = tuple(None if p is None else int(s.value(first_index + p, "a slice bound")) for p in entry[1:])
            entries.append(("slice", bounds))
            continue
        position = first_index + entry
        shape = s.shapes[position]
        dtype = s.inputs[position].type.dtype
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
    if any(kind == NEWAXIS for kind, _ in entries):  # a new axis: a full slice of an axis of length 1
        sizes = iter(shape)
        shape = tuple(1 if kind == NEWAXIS else next(sizes, None) for kind, _ in entries) + tuple(sizes)
        if None in shape:
            raise ShapeError(f"{name}: too many indices for an array of {len(shape) - shape.count(None)} dimensions")
        entries = [("slice", (None, None, None)) if kind == NEWAXIS else (kind, data) for kind, data in entries]
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


def _subtensor_rule(s: Shapes):
    entries = _index_entries(s, s.idx_list, 1)
    return [_indexed_shape(type(s.op).__name__, s.shapes[0], entries)]


def _arange_rule(s: Shapes):
    start, stop, step = (s.value(i, what).item() for i, what in enumerate(("start", "stop", "step")))
    if step == 0:
        raise ShapeError("ARange: step is 0")
    return [(max(0, math.ceil((stop - start) / step)),)]


def _alloc_rule(s: Shapes):
    dims = tuple(int(s.value(i, "a dimension of the allocated shape")) for i in range(1, len(s.shapes)))
    try:
        np.broadcast_shapes(s.shapes[0], dims)
    except ValueError:
        raise ShapeError(f"Alloc: a value of shape {s.shapes[0]} does not broadcast to {dims}") from None
    return [dims]


def _alloc_empty_rule(s: Shapes):
    return [tuple(int(s.value(i, "a dimension of the allocated shape")) for i in range(len(s.shapes)))]


def _join_rule(s: Shapes):
    axis = int(s.value(0, "the axis"))
    parts = s.shapes[1:]
    first = parts[0]
    axis %= len(first)
    for part in parts[1:]:
        if len(part) != len(first) or any(a != b for i, (a, b) in enumerate(zip(part, first)) if i != axis):
            raise ShapeError(f"Join: shapes {first} and {part} differ off axis {axis}")
    return [first[:axis] + (sum(p[axis] for p in parts),) + first[axis + 1:]]


def _makevector_rule(s: Shapes):
    return [(len(s.shapes),)]


def _scalar_rule(s: Shapes):
    return [()] * len(s.apply.outputs)


SHAPE_RULES: dict[str, Callable[[Shapes], list | None]] = {
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


def shape_rule(op) -> Callable | None:
    from pytensor.tensor.blockwise import Blockwise
    from pytensor.tensor.elemwise import CAReduce, Elemwise

    if isinstance(op, Elemwise):
        return _broadcast_rule
    if isinstance(op, CAReduce):
        return _reduce_rule
    if isinstance(op, Blockwise):
        return _blockwise_rule
    if isinstance(op, pytensor_module().scalar.ScalarOp):
        return _scalar_rule
    return SHAPE_RULES.get(type(op).__name__)

