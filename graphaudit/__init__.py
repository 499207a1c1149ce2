"""graphaudit: audit computation graphs for redundant backward work.

Build a graph with the op functions below (or import one from a framework), ask for
gradients with :func:`grad`, and compare one joint call against one call per parameter
with :func:`audit`.
"""

from graphaudit import models
from graphaudit.analysis.audit import audit, audit_graph, compare_forms, count_forms
from graphaudit.core.convert import from_networkx, to_networkx
from graphaudit.analysis.cost import Cost, total_cost
from graphaudit.views.draw import render, to_dot
from graphaudit.errors import (
    DisconnectedInputError,
    EvaluationError,
    GraphauditError,
    ShapeError,
    UnknownOpError,
)
from graphaudit.core.evaluate import evaluate
from graphaudit.core.grad import grad, separate_grads
from graphaudit.analysis.growth import Growth, growth
from graphaudit.analysis.merge import MergeResult, digests, merge
from graphaudit.analysis.report import Report
from graphaudit.core.graph import GradCall, Node, constant, parameter, placeholder, topological_order
from graphaudit.core.source import Source
from graphaudit.core.ops import (
    OPS,
    Op,
    add,
    apply,
    arange,
    broadcast_to,
    cast,
    concat,
    div,
    equal,
    exp,
    greater,
    log,
    log_softmax,
    matmul,
    max,
    maximum,
    mean,
    mul,
    neg,
    normal,
    one_hot,
    pow,
    relu,
    reshape,
    sigmoid,
    softmax,
    sqrt,
    sub,
    sum,
    take,
    tanh,
    transpose,
    uniform,
    where,
    zeros,
)

__version__ = "0.1.0"

__all__ = [
    "Cost", "Growth", "MergeResult", "Report", "audit", "growth", "audit_graph", "compare_forms", "count_forms", "digests", "merge", "total_cost", "models",
    "from_networkx", "to_networkx", "render", "to_dot", "Source",
    "DisconnectedInputError", "EvaluationError", "GradCall", "GraphauditError", "Node", "OPS", "Op", "ShapeError",
    "UnknownOpError", "add", "apply", "arange", "broadcast_to", "cast", "concat", "constant", "div", "equal",
    "evaluate", "exp", "grad", "greater", "log", "log_softmax", "matmul", "max", "maximum", "mean", "mul", "neg",
    "normal", "one_hot", "parameter", "placeholder", "pow", "relu", "reshape", "sigmoid", "softmax", "sqrt", "sub",
    "separate_grads", "sum", "take", "tanh", "topological_order", "transpose", "uniform", "where", "zeros",
]
