"""graphaudit's front-end for the toy framework (``toyframework.py``): a table, an importer, a build, a CLI.

What the author of a framework writes to audit it with graphaudit, touching no file of
graphaudit: the command line finds :data:`CLI` through the entry point group
``graphaudit.frontends`` (``toy = graphaudit_toy:CLI``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, NamedTuple, TypedDict

import numpy as np
import toyframework as toy

from graphaudit.analysis.report import Report
from graphaudit.core.graph import GradCall, Node, building, constant, parameter, placeholder
from graphaudit.core.ops import elementwise_cost, no_flops, per_element, reduction_cost
from graphaudit.frontends.common import (
    AuditOptions, BuiltForms, CliFrontend, FrameworkSection, ImportedOp, OpTable, audit_forms, imported_node,
    target_wrt,
)


def matmul_flops(node: Node) -> int:
    (m, k), n = node.inputs[0].shape, node.shape[-1]
    return 2 * m * k * n


def run_kernel(node: Node, *arrays: np.ndarray) -> np.ndarray:
    """An imported node runs the toy's own kernel, as JAX's front-end binds the primitive."""
    return toy.KERNELS[node.op.removeprefix(TABLE.prefix)](*arrays, **dict(node.attrs))


TABLE = OpTable("toy.", {
    "matmul": ImportedOp("matmul", matmul_flops),
    "add": ImportedOp("elementwise", elementwise_cost),
    "mul": ImportedOp("elementwise", elementwise_cost),
    "tanh": ImportedOp("elementwise", elementwise_cost),
    "tanh_grad": ImportedOp("elementwise", per_element(3)),  # g * (1 - y * y)
    "sum": ImportedOp("reduction", reduction_cost),
    "sum_rows": ImportedOp("reduction", reduction_cost),
    "transpose": ImportedOp("data", no_flops, view=True),
    "broadcast": ImportedOp("data", no_flops, view=True),
}, fallback_impl=run_kernel)
LEAVES = {"param": parameter, "data": placeholder}


def import_graph(graph: dict, calls: Mapping[int, GradCall]) -> list[Node]:
    """The nodes of an exported toy graph's outputs; each backward node tagged with its ``calls[grad_call]``."""
    nodes: list[Node] = []
    for record in graph["records"]:
        shape, dtype, call = tuple(record["shape"]), np.dtype(record["dtype"]), calls.get(record["grad_call"])
        with building(call):
            if record["op"] in LEAVES:
                node = LEAVES[record["op"]](record["attrs"]["name"], shape, dtype)
            elif record["op"] == "constant":
                node = constant(record["value"])
            else:
                node = imported_node(TABLE.op_name(record["op"]), [nodes[i] for i in record["inputs"]],
                                     record["attrs"].items(), shape, dtype, call=call)
        nodes.append(node)
    return [nodes[i] for i in graph["outputs"]]


class ToyData(TypedDict):
    name: str
    version: str
    grad_calls: dict[str, int]


class ToySection(FrameworkSection):
    schema = ToyData

    def closing_lines(self) -> list[str]:
        calls = self["grad_calls"]
        return ["", f"toyframework {self['version']}: {calls['separate']} separate grad calls, {calls['joint']} joint"]


class ToyForms:
    """The toy's ``grad`` once per parameter (unless counted) and once for all, exported and imported."""

    def __init__(self, loss: toy.Var, params: list[toy.Var]):
        self.loss, self.params = loss, params

    def build(self, options: AuditOptions) -> BuiltForms:
        names = [p.attrs["name"] for p in self.params]
        start = time.perf_counter()
        separate = [toy.grad(self.loss, [p])[0] for p in self.params] if options.materialize else []
        middle = time.perf_counter()
        joint = toy.grad(self.loss, self.params)
        end = time.perf_counter()
        graph = toy.export(separate + joint)
        serials = sorted({r["grad_call"] for r in graph["records"]} - {None})  # the calls, in the order made
        calls = [GradCall([name]) for name in names[: len(separate)]] + [GradCall(names)]
        outputs = import_graph(graph, dict(zip(serials, calls, strict=True)))
        self.calls = len(separate)
        return BuiltForms(names, outputs[len(separate):], outputs[: len(separate)] if separate else None,
                          build_seconds=(middle - start if separate else None, end - middle))

    def section(self, built: BuiltForms, report: Report) -> ToySection:
        return ToySection(name="toyframework", version=toy.VERSION, grad_calls={"separate": self.calls, "joint": 1})


def audit(loss: toy.Var, params: list[toy.Var], *, commutative: bool = False, semantic: bool = False,
          materialize: bool = True) -> Report:
    """The toy's ``grad(loss, [p])`` per parameter against one ``grad(loss, params)``."""
    options = AuditOptions(commutative=commutative, semantic=semantic, materialize=materialize)
    return audit_forms(ToyForms(loss, params), options)


class ToyTarget(NamedTuple):
    loss: toy.Var
    params: list[toy.Var]


def recognise(result: Any, name: str) -> ToyTarget | None:
    """``(loss, params)`` of toy vars is a target; anything else is not the toy's."""
    if not isinstance(result, (tuple, list)) or len(result) != 2 or not isinstance(result[0], toy.Var):
        return None
    params = target_wrt(result[1], toy.Var, "toyframework Var", name, CLI.returns)
    return ToyTarget(result[0], params if isinstance(params, list) else [params])


CLI = CliFrontend(
    name="toyframework",
    returns="(loss, params) of toyframework vars",
    options=frozenset({"commutative", "semantic", "count"}),
    recognise=recognise,
    audit=lambda target, options, own: audit_forms(ToyForms(target.loss, target.params), options),
    example="tests/frontends/toy/toy_mlp.py:target",
)
