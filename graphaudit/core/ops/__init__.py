"""graphaudit's ops: the registry, one file per family of ops, and :class:`Node`'s operators.

The families are imported in the order their ops are listed in ``OPS``. Importing
this package also installs ``+ - * / ** @``, unary ``-``, ``[]`` and ``.T`` on
:class:`~graphaudit.core.graph.Node` (as JAX installs its array methods from above), so that
graph.py needs nothing from here.
"""

from graphaudit.core.graph import Node
from graphaudit.core.ops.registry import (
    OPS,
    Op,
    apply,
    define,
    define_imported,
    elementwise_cost,
    get_op,
    no_flops,
    per_element,
    reduction_cost,
)
from graphaudit.core.ops.rules import broadcast_shapes
from graphaudit.core.ops.elementwise import (
    add,
    cast,
    div,
    equal,
    exp,
    greater,
    log,
    maximum,
    mul,
    neg,
    pow,
    relu,
    sigmoid,
    sqrt,
    sub,
    tanh,
    where,
)
from graphaudit.core.ops.matmul import matmul
from graphaudit.core.ops.reduce import log_softmax, max, mean, softmax, sum
from graphaudit.core.ops.shape import broadcast_to, concat, reshape, transpose
from graphaudit.core.ops.index import getitem, take
from graphaudit.core.ops.sources import arange, normal, one_hot, uniform, zeros


def _reflected(builder):
    """``x + node`` calls ``node.__radd__(x)``: the builder, with the operands back in their order."""

    def method(self, other):
        return builder(other, self)

    return method


OPERATORS = (
    ("__add__", add), ("__radd__", _reflected(add)),
    ("__sub__", sub), ("__rsub__", _reflected(sub)),
    ("__mul__", mul), ("__rmul__", _reflected(mul)),
    ("__truediv__", div), ("__rtruediv__", _reflected(div)),
    ("__pow__", pow), ("__rpow__", _reflected(pow)),
    ("__matmul__", matmul), ("__rmatmul__", _reflected(matmul)),
    ("__neg__", neg),
    ("__getitem__", getitem),
    ("T", property(transpose)),
)

for _name, _method in OPERATORS:
    setattr(Node, _name, _method)
