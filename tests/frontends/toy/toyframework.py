"""A toy autodiff framework, standing in for one graphaudit has never heard of: reverse mode on a tape, over numpy.

Every op runs at once and records itself (a :class:`Var`); :func:`grad` builds the backward pass
as more ops, so gradients are graphs too, and each call builds its own, as Theano's and
PyTensor's do; :func:`export` writes any outputs in the framework's own format, a list of
records. Its front-end is ``graphaudit_toy.py``, next to it.
"""

from __future__ import annotations

import itertools

import numpy as np

VERSION = "0.1"

# The framework's ops: what each computes (attrs as keywords).
KERNELS = {
    "matmul": np.matmul,
    "transpose": np.transpose,
    "add": np.add,  # the second operand may be a row, added to every row of the first
    "mul": np.multiply,
    "tanh": np.tanh,
    "tanh_grad": lambda y, g: g * (1 - y * y),  # tanh's backward, fused as PyTensor and PyTorch have it
    "sum": np.sum,
    "sum_rows": lambda a: a.sum(axis=0),
    "broadcast": lambda a, shape: np.broadcast_to(a, shape),
}
_grad_calls = itertools.count(1)


class Var:
    """A value and the op that made it: ``op``, ``inputs``, ``attrs``, ``value``, and the grad call that
    built it (``grad_call``: None for the forward pass)."""

    def __init__(self, op: str, inputs: tuple = (), value=None, grad_call: int | None = None, **attrs):
        self.op, self.inputs, self.attrs, self.grad_call = op, tuple(inputs), attrs, grad_call
        self.value = np.asarray(value if value is not None else KERNELS[op](*(x.value for x in inputs), **attrs))


def param(name: str, value) -> Var:
    return Var("param", value=np.asarray(value, dtype=np.float64), name=name)


def data(name: str, value) -> Var:
    return Var("data", value=np.asarray(value, dtype=np.float64), name=name)


def op(name: str, *inputs: Var, **attrs) -> Var:
    """``op("matmul", a, b)``: one op of the forward pass."""
    return Var(name, inputs, **attrs)


# The backward rule of each forward op: one function per input, (forward var, adjoint, call) -> that input's adjoint.
VJPS = {
    "matmul": (lambda v, g, c: _op(c, "matmul", g, _op(c, "transpose", v.inputs[1])),
               lambda v, g, c: _op(c, "matmul", _op(c, "transpose", v.inputs[0]), g)),
    "add": (lambda v, g, c: g,
            lambda v, g, c: g if v.inputs[1].value.shape == g.value.shape else _op(c, "sum_rows", g)),
    "mul": (lambda v, g, c: _op(c, "mul", g, v.inputs[1]), lambda v, g, c: _op(c, "mul", g, v.inputs[0])),
    "tanh": (lambda v, g, c: _op(c, "tanh_grad", v, g),),
    "sum": (lambda v, g, c: _op(c, "broadcast", g, shape=v.inputs[0].value.shape),),
}


def _op(call: int, name: str, *inputs: Var, **attrs) -> Var:
    return Var(name, inputs, grad_call=call, **attrs)


def grad(loss: Var, params: list[Var]) -> list[Var]:
    """d loss / d each of ``params``, built as new ops over only the vars on a path from ``params`` to ``loss``."""
    call, order = next(_grad_calls), _topological([loss])
    on_path = {id(p) for p in params}
    for var in order:
        if any(id(x) in on_path for x in var.inputs):
            on_path.add(id(var))
    adjoints = {id(loss): Var("constant", value=np.ones_like(loss.value), grad_call=call)}
    for var in reversed(order):
        adjoint = adjoints.get(id(var))
        for position, source in enumerate(var.inputs):
            if adjoint is not None and id(source) in on_path:
                part = VJPS[var.op][position](var, adjoint, call)
                known = adjoints.get(id(source))
                adjoints[id(source)] = part if known is None else _op(call, "add", known, part)
    missing = [p.attrs.get("name") for p in params if id(p) not in adjoints]
    if missing:
        raise ValueError(f"grad: loss does not depend on {missing[0]}")
    return [adjoints[id(p)] for p in params]


def export(outputs: list[Var]) -> dict:
    """The graph of ``outputs`` in the framework's format: ``records`` in topological order (each op,
    inputs by position, attrs, shape, dtype, grad call, and a leaf's value), and ``outputs`` by position."""
    order = _topological(outputs)
    position = {id(var): i for i, var in enumerate(order)}
    records = [{"op": v.op, "inputs": [position[id(x)] for x in v.inputs], "attrs": dict(v.attrs),
                "shape": list(v.value.shape), "dtype": str(v.value.dtype), "grad_call": v.grad_call,
                "value": v.value if not v.inputs else None} for v in order]
    return {"records": records, "outputs": [position[id(v)] for v in outputs]}


def _topological(outputs: list[Var]) -> list[Var]:
    """Every var the outputs reach, inputs first (a depth-first post-order, without recursion)."""
    order, seen, stack = [], set(), [(v, False) for v in reversed(outputs)]
    while stack:
        var, expanded = stack.pop()
        if expanded:
            order.append(var)
        elif id(var) not in seen:
            seen.add(id(var))
            stack.append((var, True))
            stack.extend((x, False) for x in reversed(var.inputs) if id(x) not in seen)
    return order
