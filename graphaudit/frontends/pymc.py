"""PyMC front-end: the seed's question for a ``pm.Model``'s log density, asked through PyTensor.

A PyMC model is a PyTensor graph: ``model.logp()`` is a scalar over the model's *value
variables* (one per free random variable, on the unconstrained space: ``tau_log__`` for a
positive ``tau``), and a sampler needs its gradient w.r.t. all of them. :func:`audit` asks
PyTensor for that gradient once per value variable and once jointly, exactly as
:func:`graphaudit.frontends.pytensor.audit` does for any cost, with:

- the value variables as ``wrt``, named as the model names them;
- their shapes from the model's initial point (a value variable's static shape may be open
  when its size comes from data);
- PyMC's parameter checks (``CheckParameterValue``) counted as the assertions they are:
  no FLOPs (:mod:`graphaudit.frontends.pytensor.ops`);
- the report's framework section saying which model and PyMC it was.

PyMC is imported lazily: importing this module does not need it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, NamedTuple

from graphaudit.frontends import require
from graphaudit.frontends.common import AuditOptions, BuiltForms, CliFrontend, TargetError, audit_forms
from graphaudit.frontends.pytensor.audit import REPEATS, PyTensorForms
from graphaudit.frontends.pytensor.section import PyTensorSection
from graphaudit.frontends.pytensor.scan import DEFAULT_BUDGET
from graphaudit.analysis.report import Report


class ModelGradient(NamedTuple):
    """What :func:`audit` differentiates: ``cost`` (``model.logp()``), ``wrt`` (the value variables)
    and ``shapes`` (each value variable's shape at the model's initial point, by name)."""

    cost: Any
    wrt: list
    shapes: dict[str, tuple[int, ...]]


def model_gradient(model, *, jacobian: bool = True) -> ModelGradient:
    """The log density of ``model`` and the value variables a sampler differentiates it by."""
    pm = require("pymc", "pymc")
    if not isinstance(model, pm.Model):
        raise TypeError(f"expected a pymc.Model, got a {type(model).__name__}")
    if not model.value_vars:
        raise ValueError("the model has no free random variables: there is nothing to differentiate")
    point = model.initial_point()
    shapes = {v.name: tuple(int(d) for d in point[v.name].shape) for v in model.value_vars}
    return ModelGradient(model.logp(jacobian=jacobian), list(model.value_vars), shapes)


def audit(
    model,
    *,
    jacobian: bool = True,
    compile_check: bool = False,
    repeats: int = REPEATS,
    mode=None,
    commutative: bool = False,
    semantic: bool = False,
    loop_budget: int = DEFAULT_BUDGET,
) -> Report:
    """Audit ``pytensor.grad(model.logp(), [v])`` per value variable ``v`` against one joint call.

    ``jacobian`` is ``model.logp``'s (the log-Jacobian terms of the transforms, which
    samplers include). The other options are :func:`graphaudit.frontends.pytensor.audit`'s:
    ``compile_check=True`` adds what PyTensor's ``MergeOptimizer`` and compile rewrites
    (``mode``) keep of each form; Scans are unrolled for the analysis when both forms unrolled
    hold at most ``loop_budget`` nodes, else imported whole; ``semantic=True`` adds what equality
    saturation finds beyond value numbering.
    """
    options = AuditOptions(commutative=commutative, semantic=semantic, repeats=repeats, compile_check=compile_check,
                           loop_budget=loop_budget)
    target = model_gradient(model, jacobian=jacobian)
    return audit_forms(PyMCForms(target.cost, target.wrt, target.shapes, mode), options)


class PyMCForms(PyTensorForms):
    """PyTensor's forms of the model's log density, and a section that says which model it was."""

    def section(self, built: BuiltForms, report: Report) -> PyMCSection:
        return PyMCSection(super().section(built, report), pymc_version=require("pymc", "pymc").__version__,
                           value_variables={name: list(shape) for name, shape in self.shapes.items()})


class PyMCSection(PyTensorSection):
    """PyTensor's section (build times, compile check, Scans) and the model: ``pymc_version`` and
    ``value_variables`` (name -> shape at the initial point, a list as JSON has it)."""

    def lines(self) -> list[str]:
        shapes = self["value_variables"]
        names = ", ".join(f"{name} {'x'.join(map(str, shape)) or 'scalar'}" for name, shape in shapes.items())
        return ["", f"PyMC {self['pymc_version']}: model.logp() w.r.t. its {len(shapes)} value variables: {names}",
                *super().lines()]


# --- the command line ------------------------------------------------------------------------------


class ModelTarget(NamedTuple):
    model: Any
    name: str


def recognise(result: Any, name: str) -> ModelTarget | None:
    """``result`` as a target when it is a ``pymc.Model`` (PyMC is not imported to tell)."""
    pymc = sys.modules.get("pymc")
    if pymc is None or not isinstance(result, pymc.Model):
        return None
    if not result.value_vars:
        raise TargetError(f"{name}: the model has no free random variables: there is nothing to differentiate")
    return ModelTarget(result, name)


def audit_target(target: ModelTarget, options: AuditOptions, own: Mapping[str, Any]) -> Report:
    """:func:`audit` of the model with the command line's options."""
    gradient = model_gradient(target.model)
    return audit_forms(PyMCForms(gradient.cost, gradient.wrt, gradient.shapes, None), options)


CLI = CliFrontend(
    name="PyMC",
    returns="a pymc.Model (its logp is differentiated w.r.t. its value variables)",
    options=frozenset({"commutative", "semantic", "repeats", "compile_check", "loop_budget"}),
    recognise=recognise,
    audit=audit_target,
    repeats=REPEATS,
    example="examples/pymc_eight_schools.py:model",
    module="pymc",
    extra="pymc",
)
