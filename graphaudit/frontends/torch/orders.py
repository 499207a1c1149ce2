"""Derivatives by order in PyTorch: nested ``torch.autograd.grad(..., create_graph=True)``, as a PINN takes them.

Order ``j`` is ``y = u_fn(model, x)``, then ``j`` times ``y = torch.autograd.grad(y.sum(), x,
create_graph=True)[0]``; each order's program is traced and audited by
:func:`~.function.audit_function`, and :mod:`graphaudit.analysis.orders` makes the rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphaudit.analysis.orders import Orders, order_rows
from graphaudit.frontends.torch.function import audit_function
from graphaudit.frontends.torch.version import supported_torch


def order_program(u_fn: Callable, order: int) -> Callable:
    """``program(model, x)``: the ``order``-th nested derivative of ``u_fn(model, x)``'s sum w.r.t. ``x``."""
    torch = supported_torch()

    def program(model: Any, x: Any) -> Any:
        x = x.detach().requires_grad_(True)
        y = u_fn(model, x)
        for _ in range(order):
            y = torch.autograd.grad(y.sum(), x, create_graph=True)[0]
        return y

    return program


def derivative_orders(u_fn: Callable, x: Any, *, params: Any, max_order: int = 4,
                      commutative: bool = False) -> Orders:
    """One row per derivative order ``1 .. max_order`` of ``u_fn(params, x)`` w.r.t. ``x`` (see the module
    docstring): the traced and merged program's nodes and FLOPs, and their growth per order."""
    torch = supported_torch()
    if not callable(u_fn):
        raise TypeError(f"derivative_orders: u_fn must be a function, got {type(u_fn).__name__}")
    if isinstance(max_order, bool) or not isinstance(max_order, int) or max_order < 1:
        raise ValueError(f"derivative_orders: max_order must be an int >= 1, got {max_order!r}")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"derivative_orders: x must be a floating-point tensor, got {type(x).__name__}")
    reports = [audit_function(order_program(u_fn, order), x, params=params, commutative=commutative)
               for order in range(1, max_order + 1)]
    return Orders(f"PyTorch {torch.__version__}", order_rows(reports))
