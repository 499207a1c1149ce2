"""A toy framework: numpy values on a tape, and its own reverse mode that builds gradient graphs.

It knows nothing of graphaudit. ``Var``\\s are computed eagerly and remember how (``op``,
``inputs``); :func:`grad` builds the backward as new ``Var``\\s marked ``backward``, one
vjp rule per op, as Theano's ``grad`` did: each call builds its own copy of the backward.
"""

from __future__ import annotations

import numpy as np


class Var:
    def __init__(self, op: str, inputs: tuple = (), value=None, name: str | None = None, backward: bool = False):
        self.op, self.inputs, self.name, self.backward = op, inputs, name, backward
        self.value = np.asarray(value, dtype=np.float64) if value is not None else FORWARD[op](*(i.value for i in inputs))

    def __matmul__(self, other): return apply("matmul", self, other)
    def __mul__(self, other): return apply("mul", self, other)
    def __add__(self, other): return apply("add", self, other)


def leaf(name: str, value) -> Var:
    return Var("leaf", value=value, name=name)


def apply(op: str, *inputs: Var, backward: bool = False) -> Var:
    return Var(op, inputs, backward=backward)


FORWARD = {  # op -> numpy code
    "matmul": np.matmul, "mul": np.multiply, "add": np.add, "tanh": np.tanh, "sum": np.sum,
    "transpose": np.transpose, "one_minus_square": lambda y: 1.0 - y * y,
    "fill": lambda x, like: np.full_like(like, x),
}


def _vjp(var: Var, g: Var) -> list[Var]:
    """The cotangents of ``var``'s inputs, given ``g``, the cotangent of ``var``."""
    b = lambda op, *xs: apply(op, *xs, backward=True)  # noqa: E731
    a = var.inputs
    if var.op == "matmul":
        return [b("matmul", g, b("transpose", a[1])), b("matmul", b("transpose", a[0]), g)]
    if var.op == "mul":
        return [b("mul", g, a[1]), b("mul", g, a[0])]
    if var.op == "add":
        return [g, g]
    if var.op == "tanh":
        return [b("mul", g, b("one_minus_square", var))]
    if var.op == "sum":
        return [b("fill", g, a[0])]
    raise NotImplementedError(var.op)


def grad(loss: Var, wrt: list[Var]) -> list[Var]:
    """d loss / d w for each ``w``: the backward of the ops on a path from ``wrt`` to ``loss``, built anew."""
    order, seen = [], set()

    def visit(v: Var) -> None:
        if id(v) not in seen:
            seen.add(id(v))
            for i in v.inputs:
                visit(i)
            order.append(v)

    visit(loss)
    reaches = {id(w) for w in wrt}
    for v in order:
        if any(id(i) in reaches for i in v.inputs):
            reaches.add(id(v))
    adjoint = {id(loss): leaf("one", 1.0)}
    for v in reversed(order):
        g = adjoint.get(id(v))
        if g is None or not v.inputs:
            continue
        for i, gi in zip(v.inputs, _vjp(v, g)):
            if id(i) in reaches:
                adjoint[id(i)] = gi if id(i) not in adjoint else apply("add", adjoint[id(i)], gi, backward=True)
    return [adjoint[id(w)] for w in wrt]
