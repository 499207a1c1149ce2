"""Scientific-ML derivative calls in JAX, audited as the user wrote them: ``python examples/jax_sciml.py``.

- ``heat_residual``: a PINN for the heat equation u_t = u_xx, with u_t, u_x and u_xx taken by
  nested ``jax.grad`` calls of the network at one point;
- ``forces_and_stress``: a small pair potential's forces (dE/d positions) and stress (dE/d strain)
  by two ``jax.grad`` calls on one energy, and ``forces_and_stress_joint`` by one;
- ``maml_step``: a MAML inner step, the meta-loss after one SGD step (a grad inside a grad).

Each prints graphaudit's report: every grad call named by its line, what the calls repeat.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from graphaudit.frontends.jax import audit_function


def mlp(params, x):
    """A tanh network of scalar input(s) ``x`` (shape (2,): x, t) to a scalar."""
    h = x
    for w, b in params[:-1]:
        h = jnp.tanh(h @ w + b)
    w, b = params[-1]
    return (h @ w + b)[0]


def heat_residual(params, xt):
    """u_t - u_xx at one point ``xt = (x, t)``."""
    u = lambda xt: mlp(params, xt)  # noqa: E731
    u_t = jax.grad(u)(xt)[1]  # the u_t call
    u_x = lambda xt: jax.grad(u)(xt)[0]  # noqa: E731
    u_xx = jax.grad(u_x)(xt)[0]  # the u_xx call (and the u_x call inside it)
    return u_t - u_xx


def pair_energy(positions, strain):
    """Sum over pairs of exp(-|r_i - r_j|^2) of the strained positions."""
    r = positions @ (jnp.eye(positions.shape[1]) + strain)
    diff = r[:, None, :] - r[None, :, :]
    return 0.5 * jnp.sum(jnp.exp(-jnp.sum(diff ** 2, axis=-1)))


def forces_and_stress(positions, strain):
    forces = -jax.grad(pair_energy, 0)(positions, strain)  # the forces call
    stress = jax.grad(pair_energy, 1)(positions, strain)  # the stress call
    return forces, stress


def forces_and_stress_joint(positions, strain):
    minus_forces, stress = jax.grad(pair_energy, argnums=(0, 1))(positions, strain)  # one call
    return -minus_forces, stress


def maml_step(params, x, y, inner_lr=0.1):
    """The loss after one inner SGD step, differentiated w.r.t. the initial parameters."""

    def loss(p):
        return jnp.mean((x @ p["w"] + p["b"] - y) ** 2)

    def adapted_loss(p):
        g = jax.grad(loss)(p)  # the inner step's call
        return loss(jax.tree_util.tree_map(lambda a, d: a - inner_lr * d, p, g))

    return jax.grad(adapted_loss)(params)  # the meta-gradient's call


def example_arguments(seed: int = 0) -> dict[str, tuple]:
    rng = np.random.default_rng(seed)
    params = [(jnp.asarray(rng.normal(size=(2, 8)) * 0.5), jnp.zeros(8)),
              (jnp.asarray(rng.normal(size=(8, 8)) * 0.5), jnp.zeros(8)),
              (jnp.asarray(rng.normal(size=(8, 1)) * 0.5), jnp.zeros(1))]
    positions = jnp.asarray(rng.normal(size=(6, 3)))
    maml = {"w": jnp.asarray(rng.normal(size=(4, 1))), "b": jnp.zeros(1)}
    return {
        "heat_residual": (params, jnp.asarray([0.3, 0.7])),
        "forces_and_stress": (positions, jnp.zeros((3, 3))),
        "forces_and_stress_joint": (positions, jnp.zeros((3, 3))),
        "maml_step": (maml, jnp.asarray(rng.normal(size=(5, 4))), jnp.asarray(rng.normal(size=(5, 1)))),
    }


if __name__ == "__main__":
    functions = {"heat_residual": heat_residual, "forces_and_stress": forces_and_stress,
                 "forces_and_stress_joint": forces_and_stress_joint, "maml_step": maml_step}
    for name, args in example_arguments().items():
        print(f"=== {name}")
        print(audit_function(functions[name], *args).to_text())
