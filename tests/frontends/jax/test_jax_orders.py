"""Derivatives by order in JAX: each row is audit_function of that order's nested jax.grad."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = jax.numpy

from graphaudit.frontends.jax import audit_function, derivative_orders  # noqa: E402


def u(params, x):
    (w1, b1), (w2, b2) = params
    return jnp.tanh(x @ w1 + b1) @ w2 + b2


def test_each_row_is_audit_function_of_its_orders_program():
    rng = np.random.default_rng(0)
    params = [(rng.normal(size=(2, 6)), rng.normal(size=6)), (rng.normal(size=(6, 1)), rng.normal(size=1))]
    x = rng.normal(size=(4, 2))
    written = [
        jax.grad(lambda p, x: jnp.sum(u(p, x)), argnums=1),
        jax.grad(lambda p, x: jnp.sum(jax.grad(lambda p, x: jnp.sum(u(p, x)), argnums=1)(p, x)), argnums=1),
    ]
    rows = derivative_orders(u, params, x, argnum=1, max_order=2).to_dict()["orders"]
    for row, program in zip(rows, written, strict=True):
        report = audit_function(program, params, x)
        original, merged = report.forms["original"].cost, report.forms["original_merged"].cost
        assert (row["nodes"], row["flops"], row["merged_nodes"], row["merged_flops"]) == (
            original.nodes, original.flops, merged.nodes, merged.flops)
    assert rows[1]["growth"] == rows[1]["flops"] / rows[0]["flops"]
    with pytest.raises(ValueError, match="argnum 2 is not one of the 2 arguments"):
        derivative_orders(u, params, x, argnum=2)
