"""A PyTensor target of the command line: ``(cost, wrt)`` or ``(cost, wrt, shapes)``, recognised and audited."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, NamedTuple

from graphaudit.frontends.common import AuditOptions, CliFrontend, TargetError, a_type, audit_forms, target_wrt
from graphaudit.analysis.report import Report
from graphaudit.frontends.pytensor.audit import REPEATS, PyTensorForms


class PyTensorTarget(NamedTuple):
    """What a target function returned: differentiate scalar ``cost`` w.r.t. ``wrt``, inputs of ``shapes``."""

    cost: Any
    wrt: list
    shapes: Mapping | None
    name: str


def recognise(result: Any, name: str) -> PyTensorTarget | None:
    """``result`` as a target when it is a 2- or 3-tuple whose first item is a PyTensor variable; None otherwise.

    PyTensor is not imported to tell: a function that built PyTensor variables has imported it.
    """
    pytensor = sys.modules.get("pytensor")
    if pytensor is None or not isinstance(result, (tuple, list)) or len(result) not in (2, 3):
        return None
    variable = pytensor.graph.basic.Variable
    if not isinstance(result[0], variable):
        return None
    cost, wrt, shapes = (*result, None) if len(result) == 2 else result
    wrt = target_wrt(wrt, variable, "PyTensor variable", name, CLI.returns)
    if shapes is not None and not isinstance(shapes, Mapping):
        raise TargetError(f"{name}: shapes is {a_type(shapes)}, not a dict {{variable or name: shape}}")
    return PyTensorTarget(cost, wrt if isinstance(wrt, list) else [wrt], shapes, name)


def audit_target(target: PyTensorTarget, options: AuditOptions, own: Mapping[str, Any]) -> Report:
    """:func:`audit` of the target with the command line's options."""
    return audit_forms(PyTensorForms(target.cost, target.wrt, target.shapes, None), options)


CLI = CliFrontend(
    name="PyTensor",
    returns="(cost, wrt) or (cost, wrt, shapes) for PyTensor variables",
    options=frozenset({"commutative", "semantic", "repeats", "compile_check", "loop_budget"}),
    recognise=recognise,
    audit=audit_target,
    repeats=REPEATS,
    example="examples/pytensor_seed.py:target",
    module="pytensor",
    extra="pytensor",
)
