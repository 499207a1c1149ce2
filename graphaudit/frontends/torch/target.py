"""A PyTorch target of the command line: ``(loss_fn, params, *inputs)``, recognised and audited."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from graphaudit.frontends.common import AuditOptions, CliFrontend, TargetError, a_type, audit_forms
from graphaudit.analysis.report import Report
from graphaudit.frontends.torch.audit import TorchForms


class TorchTarget(NamedTuple):
    """What a PyTorch target function returns: ``loss_fn(params, *inputs)`` is a scalar."""

    loss_fn: Callable[..., Any]
    params: Any
    inputs: tuple
    name: str


def recognise(result: Any, name: str) -> TorchTarget | None:
    """``result`` as a target when it is ``(loss_fn, params, *inputs)`` with ``params`` an ``nn.Module``
    or a dict of torch tensors; None otherwise. Imports nothing: no torch object exists unless
    torch is imported already."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(result, (tuple, list)) or len(result) < 2:
        return None
    loss_fn, params, *inputs = result
    if isinstance(loss_fn, torch.nn.Module) and callable(params) and not isinstance(params, torch.nn.Module):
        raise TargetError(f"{name} returned ({type(loss_fn).__name__} model, loss_fn, ...): its first item is a model "
                          f"where the loss function belongs; return {CLI.returns}")
    is_module = isinstance(params, torch.nn.Module)
    is_dict = isinstance(params, Mapping) and any(isinstance(v, torch.Tensor) for v in params.values())
    if not (is_module or is_dict):
        return None
    if not callable(loss_fn):
        raise TargetError(f"{name} must return {CLI.returns}: loss_fn is {a_type(loss_fn)}, not a function")
    if is_dict:
        bad = [key for key, value in params.items() if not isinstance(value, torch.Tensor)]
        if bad:
            raise TargetError(f"{name}: params[{bad[0]!r}] is {a_type(params[bad[0]])}, not a torch tensor")
    return TorchTarget(loss_fn, params, tuple(inputs), name)


def audit_target(target: TorchTarget, options: AuditOptions, own: Mapping[str, Any]) -> Report:
    """:func:`audit` of a command-line target."""
    return audit_forms(TorchForms(target.loss_fn, target.params, target.inputs), options)


CLI = CliFrontend(
    name="PyTorch",
    returns="(loss_fn, params, *inputs) for PyTorch",
    options=frozenset({"measure", "repeats", "commutative", "semantic", "compile_check", "count"}),
    recognise=recognise,
    audit=audit_target,
    example="examples/torch_seed_mlp.py:target",
    module="torch",
    extra="torch",
)
