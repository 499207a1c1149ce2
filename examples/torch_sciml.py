"""Scientific-ML derivative calls in PyTorch, audited as the user wrote them: ``python examples/torch_sciml.py``.

- ``heat_residual``: a PINN for the heat equation u_t = u_xx, its derivatives by nested
  ``torch.autograd.grad(..., create_graph=True)``: u_t and u_x by two calls on the same u;
- ``forces_and_stress``: a small interatomic potential's forces (-dE/d positions) and stress
  (dE/d cell) by two calls on one energy, and ``forces_and_stress_joint`` by one;
- ``maml_step``: a MAML inner step, the meta-gradient through one SGD step (second order);
- ``laplacian_loop``: the Laplacian by a loop of per-dimension grads, and ``laplacian_hessian``
  by ``torch.func.hessian``'s diagonal;
- ``cached_residual``: a DeepXDE-style derivative cache keyed on tensor identity, which misses
  when the residual asks for a derivative w.r.t. a slice of the input.

Each prints graphaudit's report: every grad call named by its line, what the calls repeat.
``target()`` is the PINN's loss for ``graphaudit audit`` (its last bias has no gradient: the
residual only holds derivatives of u); ``orders()`` is u for ``graphaudit growth --orders 1..6``.
"""

from __future__ import annotations

import torch
from torch import nn

from graphaudit.frontends.torch import audit_function, derivative_orders

WIDTH, POINTS, ATOMS = 16, 32, 8


def pinn(width: int = WIDTH, *, seed: int = 0) -> nn.Module:
    """u(x, t): a tanh network of two inputs, float64."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(),
                         nn.Linear(width, 1)).double()


def heat_residual(model: nn.Module, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """u_t - u_xx at each point, the derivatives taken one call each, as PINN code does."""
    x, t = x.detach().requires_grad_(True), t.detach().requires_grad_(True)
    u = model(torch.cat([x, t], dim=1))
    u_t = torch.autograd.grad(u.sum(), t, create_graph=True)[0]  # the u_t call
    u_x = torch.autograd.grad(u.sum(), x, create_graph=True)[0]  # the u_x call: the same u
    u_xx = torch.autograd.grad(u_x.sum(), x, create_graph=True)[0]  # the u_xx call
    return u_t - u_xx


def pinn_loss(model: nn.Module, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return heat_residual(model, x, t).pow(2).mean()


def points(n: int = POINTS, *, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, generator=generator, dtype=torch.float64),
            torch.rand(n, 1, generator=generator, dtype=torch.float64))


def potential(width: int = WIDTH, *, seed: int = 0) -> nn.Module:
    """The pair energy as a function of the squared distance: a tanh network of one input."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(1, width), nn.Tanh(), nn.Linear(width, 1)).double()


def energy(model: nn.Module, positions: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
    """Sum over ordered pairs of model(|r_i - r_j|^2), with r = positions @ cell."""
    r = positions @ cell
    squared = (r[:, None, :] - r[None, :, :]).pow(2).sum(-1, keepdim=True)
    return model(squared).sum()


def forces_and_stress(model: nn.Module, positions: torch.Tensor, cell: torch.Tensor):
    positions, cell = positions.detach().requires_grad_(True), cell.detach().requires_grad_(True)
    e = energy(model, positions, cell)
    forces = -torch.autograd.grad(e, positions, retain_graph=True)[0]  # the forces call
    stress = torch.autograd.grad(e, cell)[0]  # the stress call: the same energy
    return forces, stress


def forces_and_stress_joint(model: nn.Module, positions: torch.Tensor, cell: torch.Tensor):
    positions, cell = positions.detach().requires_grad_(True), cell.detach().requires_grad_(True)
    minus_forces, stress = torch.autograd.grad(energy(model, positions, cell), [positions, cell])  # one call
    return -minus_forces, stress


def atoms(n: int = ATOMS, *, seed: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=generator, dtype=torch.float64), torch.eye(3, dtype=torch.float64)


def maml_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, xq: torch.Tensor, yq: torch.Tensor,
              inner_lr: float = 0.1) -> list[torch.Tensor]:
    """The query loss after one inner SGD step on (x, y), differentiated w.r.t. the initial parameters."""
    names, params = zip(*model.named_parameters())
    inner = (torch.func.functional_call(model, dict(zip(names, params)), (x,)) - y).pow(2).mean()
    grads = torch.autograd.grad(inner, params, create_graph=True)  # the inner step's call
    adapted = {name: p - inner_lr * g for name, p, g in zip(names, params, grads)}
    outer = (torch.func.functional_call(model, adapted, (xq,)) - yq).pow(2).mean()
    return list(torch.autograd.grad(outer, params))  # the meta-gradient's call


def laplacian_loop(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The Laplacian of u at each point: one grad for the gradient, then one per dimension."""
    x = x.detach().requires_grad_(True)
    gradient = torch.autograd.grad(model(x).sum(), x, create_graph=True)[0]
    laplacian = torch.zeros_like(x[:, 0])
    for i in range(x.shape[1]):
        laplacian = laplacian + torch.autograd.grad(gradient[:, i].sum(), x, create_graph=True)[0][:, i]
    return laplacian


def laplacian_hessian(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The same Laplacian as the trace of ``torch.func.hessian`` at each point."""
    def u(point):
        return model(point.unsqueeze(0)).squeeze()

    return torch.func.vmap(lambda point: torch.func.hessian(u)(point).diagonal().sum())(x)


class Jacobians:
    """A DeepXDE-style cache of derivatives, keyed on the tensors' identity, "to avoid duplicate computation"."""

    def __init__(self):
        self.cache: dict[tuple[int, int], torch.Tensor] = {}

    def __call__(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        key = (id(y), id(x))
        if key not in self.cache:
            self.cache[key] = torch.autograd.grad(y.sum(), x, create_graph=True)[0]  # the cache's call
        return self.cache[key]


def cached_residual(model: nn.Module, xt: torch.Tensor) -> torch.Tensor:
    """u_t - u_xx, with u_t read from the cached Jacobian w.r.t. ``xt`` and u_x asked w.r.t. its slice x."""
    jacobian = Jacobians()
    xt = xt.detach().requires_grad_(True)
    x, t = xt[:, 0:1], xt[:, 1:2]
    u = model(torch.cat([x, t], dim=1))
    u_t = jacobian(u, xt)[:, 1:2]
    u_x = jacobian(u, x)  # a new key: the cache misses, and the backward pass of u runs again
    u_xx = jacobian(u_x, x)
    return u_t - u_xx


def meta_batch(*, seed: int = 3) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(8, n, generator=generator, dtype=torch.float64) for n in (2, 1, 2, 1))


def target():
    """The CLI target: the PINN's loss, one grad call per parameter vs one joint call."""
    return pinn_loss, pinn(), *points()


def orders():
    """The CLI target of ``graphaudit growth --orders``: u(model, X) by order of its derivatives w.r.t. X."""
    return (lambda model, xt: model(xt)), pinn(), torch.cat(points(), dim=1)


def main() -> None:
    x, t = points()
    cases = {
        "heat_residual": (heat_residual, pinn(), (x, t)),
        "forces_and_stress": (forces_and_stress, potential(), atoms()),
        "forces_and_stress_joint": (forces_and_stress_joint, potential(), atoms()),
        "maml_step": (maml_step, pinn(), meta_batch()),
        "laplacian_loop": (laplacian_loop, pinn(), (torch.cat([x, t], dim=1),)),
        "laplacian_hessian": (laplacian_hessian, pinn(), (torch.cat([x, t], dim=1),)),
        "cached_residual": (cached_residual, pinn(), (torch.cat([x, t], dim=1),)),
    }
    for name, (function, model, inputs) in cases.items():
        print(f"=== {name}")
        print(audit_function(function, *inputs, params=model).to_text())
    u, model, xt = orders()
    print(derivative_orders(u, xt, params=model, max_order=4).to_text())


if __name__ == "__main__":
    main()
