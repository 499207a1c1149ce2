"""graphaudit's front-end for the toy framework (:mod:`.toyframework`): a table, an importer, a build.

It touches no file of graphaudit: it declares its command-line side in the ``graphaudit.frontends``
entry-point group (the tests write that declaration), and the shared driver does the audit.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from frontends.toy import toyframework as toy
from graphaudit.analysis.report import Report
from graphaudit.core.graph import GradCall, Node, building, constant, parameter, placeholder
from graphaudit.core.ops import elementwise_cost, no_flops, reduction_cost
from graphaudit.frontends.common import (
    AuditOptions, BuiltForms, CliFrontend, FrameworkSection, ImportedOp, OpTable, audit_forms, imported_node,
)


def _numpy(op: str):
    return lambda node, *arrays: toy.FORWARD[op](*arrays)


def _matmul_flops(node: Node) -> int:
    (m, k), (_, n) = node.inputs[0].shape, node.inputs[1].shape
    return 2 * m * k * n


TABLE = OpTable("toy.", {
    "matmul": ImportedOp("matmul", _matmul_flops, _numpy("matmul")),
    "mul": ImportedOp("elementwise", elementwise_cost, _numpy("mul")),
    "add": ImportedOp("elementwise", elementwise_cost, _numpy("add")),
    "tanh": ImportedOp("elementwise", elementwise_cost, _numpy("tanh")),
    "one_minus_square": ImportedOp("elementwise", lambda node: 2 * int(np.prod(node.shape)), _numpy("one_minus_square")),
    "sum": ImportedOp("reduction", reduction_cost, _numpy("sum")),
    "transpose": ImportedOp("shape", no_flops, _numpy("transpose"), view=True),
    "fill": ImportedOp("shape", no_flops, _numpy("fill")),
})


def import_vars(outputs: list[toy.Var], shared: dict[int, Node], call: GradCall) -> list[Node]:
    """The toy's graph as nodes: leaves and forward Vars from ``shared`` (by the Var's id; every call reads
    the one forward), backward Vars new in each call, tagged with ``call``."""
    backward: dict[int, Node] = {}  # this call's; ids of Vars alive while ``outputs`` are

    def node_of(var: toy.Var) -> Node:
        nodes = backward if var.backward else shared
        if id(var) not in nodes:
            if var.op == "leaf":  # a constant the toy's grad made (the seed 1.0)
                return constant(var.value)
            inputs = [node_of(i) for i in var.inputs]
            nodes[id(var)] = imported_node(TABLE.op_name(var.op), inputs, [], var.value.shape, var.value.dtype,
                                           call=call if var.backward else None)
        return nodes[id(var)]

    with building():
        return [node_of(v) for v in outputs]


class ToyForms:
    """One toy ``grad`` per parameter and one joint, imported over the same leaves."""

    def __init__(self, loss: toy.Var, params: list[toy.Var], inputs: list[toy.Var]):
        self.loss, self.params, self.inputs = loss, params, inputs

    def build(self, options: AuditOptions) -> BuiltForms:
        leaves = {id(p): parameter(p.name, value=p.value) for p in self.params}
        leaves.update({id(x): placeholder(x.name, x.value.shape, x.value.dtype) for x in self.inputs})
        wrt = [p.name for p in self.params]
        separate = None
        if options.materialize:
            separate = [import_vars(toy.grad(self.loss, [p]), leaves, GradCall([p.name]))[0] for p in self.params]
        joint = import_vars(toy.grad(self.loss, self.params), leaves, GradCall(wrt))
        return BuiltForms(wrt, joint, separate)

    def section(self, built: BuiltForms, report: Report) -> FrameworkSection:
        return FrameworkSection(name="Toy", version="0.1")


def audit(loss: toy.Var, params: list[toy.Var], inputs: list[toy.Var], **options: Any) -> Report:
    return audit_forms(ToyForms(loss, params, inputs), AuditOptions(**options))


def recognise(result: Any, name: str):
    if isinstance(result, tuple) and len(result) == 3 and isinstance(result[0], toy.Var):
        return result
    return None


def audit_target(target, options: AuditOptions, own: Mapping[str, Any]) -> Report:
    return audit_forms(ToyForms(*target), options)


CLI = CliFrontend(name="Toy", returns="(loss, params, inputs) of toy Vars", options=frozenset({"commutative", "count"}),
                  recognise=recognise, audit=audit_target, example="toy.py:target")
