"""JAX functions that several of the JAX front-end's test files audit."""

from __future__ import annotations

import jax.numpy as jnp


def sorted_loss(w, x):
    """``jnp.sort`` binds ``sort`` (two operands, two results), which has no cost rule."""
    return jnp.sum(jnp.sort(jnp.tanh(x @ w), axis=-1) * jnp.arange(w.shape[1], dtype=jnp.float32))


def cond_program(with_effect: bool):
    """A loss through a ``lax.cond`` on data (imported whole) whose branch has a side effect or not, and its
    arguments. The cond reads no parameter, so each grad call traces the same one: pure, the copies merge;
    with the effect, each is a call of its own and none merges."""
    import jax

    def branch(u):
        if with_effect:
            jax.debug.callback(lambda value: None, u)  # a side effect that prints nothing
        return jnp.tanh(u)

    def loss(w1, w2, x):
        h = jax.lax.cond(jnp.sum(x) > 0, branch, lambda u: u, x)
        return jnp.sum(jnp.tanh(h @ w1) @ w2)

    return loss, (jnp.ones((3, 4)), jnp.ones((4, 2)), jnp.ones((5, 3)))
