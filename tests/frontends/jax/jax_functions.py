"""JAX functions that several of the JAX front-end's test files audit."""

from __future__ import annotations

import jax.numpy as jnp


def sorted_loss(w, x):
    """``jnp.sort`` binds ``sort`` (two operands, two results), which has no cost rule."""
    return jnp.sum(jnp.sort(jnp.tanh(x @ w), axis=-1) * jnp.arange(w.shape[1], dtype=jnp.float32))
