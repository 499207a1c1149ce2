"""Derivatives by order in JAX: nested ``jax.grad`` of the sum, w.r.t. one argument.

Order ``j`` of ``u_fn(*args)`` w.r.t. ``args[argnum]`` is ``jax.grad`` of the sum of order
``j - 1`` (order 0: ``u_fn``). Each order's program is traced with ``jax.make_jaxpr``,
imported (:func:`~.importer.from_jaxpr`) and audited (:func:`graphaudit.audit_graph`);
:mod:`graphaudit.analysis.orders` makes the rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphaudit.analysis.audit import audit_graph
from graphaudit.analysis.orders import Orders, order_rows
from graphaudit.frontends import require
from graphaudit.frontends.jax.importer import from_jaxpr


def order_function(u_fn: Callable, order: int, argnum: int) -> Callable:
    """The ``order``-th nested ``jax.grad`` of ``u_fn``'s sum w.r.t. argument ``argnum``."""
    jax = require("jax", "jax")
    function = u_fn
    for _ in range(order):
        function = jax.grad(lambda *args, inner=function: jax.numpy.sum(inner(*args)), argnums=argnum)
    return function


def derivative_orders(u_fn: Callable, *args: Any, argnum: int = 0, max_order: int = 4,
                      commutative: bool = False) -> Orders:
    """One row per derivative order ``1 .. max_order`` of ``u_fn(*args)`` w.r.t. ``args[argnum]`` (see the
    module docstring): the traced and merged program's nodes and FLOPs, and their growth per order."""
    jax = require("jax", "jax")
    if not callable(u_fn):
        raise TypeError(f"derivative_orders: u_fn must be a function, got {type(u_fn).__name__}")
    if isinstance(max_order, bool) or not isinstance(max_order, int) or max_order < 1:
        raise ValueError(f"derivative_orders: max_order must be an int >= 1, got {max_order!r}")
    if not 0 <= argnum < len(args):
        raise ValueError(f"derivative_orders: argnum {argnum} is not one of the {len(args)} arguments")
    reports = []
    for order in range(1, max_order + 1):
        outputs = from_jaxpr(jax.make_jaxpr(order_function(u_fn, order, argnum))(*args))
        reports.append(audit_graph([n for n in outputs if n.op != "constant"], commutative=commutative))
    return Orders(f"JAX {jax.__version__}", order_rows(reports))
