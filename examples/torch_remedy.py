"""Running the merged graph: four training steps made of ``torch.autograd.grad`` calls, deduplicated.

    python examples/torch_remedy.py
    python examples/torch_remedy.py --compile     # also compile each merged graph with inductor

Each step is a function of its tensors (the parameters as a dict, as ``torch.func.functional_call``
takes them) that returns gradients:

- ``seed_step``: the seed's question, one ``torch.autograd.grad`` per parameter of an MLP
  (``seed_joint_step``: the one joint call);
- ``pinn_step``: a heat-equation PINN, u_t and u_xx by nested ``create_graph=True`` calls, then
  the parameter gradients of the residual loss (``torch.compile`` refuses it: double backward);
- ``forces_and_stress_step``: an interatomic potential's forces and stress by two calls on one
  energy (``examples/torch_sciml.py``'s potential);
- ``wgan_gp_step``: a WGAN-GP critic's gradients, its gradient penalty a ``create_graph=True`` call.

``graphaudit.frontends.torch.deduplicate(step, *args)`` traces a step, merges it and gives back a
function that runs the merged graph; this script prints what each lost and checks it against eager.
``benchmarks/bench_remedy.py`` times them.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn
from torch.nn import functional as F

from graphaudit.frontends.torch import deduplicate
from torch_sciml import energy, potential


def _call(model: nn.Module, params: dict, *args: torch.Tensor) -> torch.Tensor:
    return torch.func.functional_call(model, params, args)


def mlp(widths, activation: type[nn.Module], *, dtype=torch.float64, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(widths, widths[1:])):
        layers += [nn.Linear(fan_in, fan_out, dtype=dtype)] + ([activation()] if i < len(widths) - 2 else [])
    return nn.Sequential(*layers)


def parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's parameters as a dict of fresh leaves that require grad (the step's first argument)."""
    return {name: p.detach().clone().requires_grad_(True) for name, p in model.named_parameters()}


def seed_step(model: nn.Module):
    def step(params: dict, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        loss = F.nll_loss(torch.log_softmax(_call(model, params, x), dim=-1), y)
        return [torch.autograd.grad(loss, p, retain_graph=True)[0] for p in params.values()]  # one call each
    return step


def seed_joint_step(model: nn.Module):
    def step(params: dict, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        loss = F.nll_loss(torch.log_softmax(_call(model, params, x), dim=-1), y)
        return list(torch.autograd.grad(loss, list(params.values())))  # one joint call
    return step


def pinn_step(model: nn.Module):
    def step(params: dict, x: torch.Tensor, t: torch.Tensor) -> list:
        x, t = x.detach().requires_grad_(True), t.detach().requires_grad_(True)
        u = _call(model, params, torch.cat([x, t], dim=1))
        u_t = torch.autograd.grad(u.sum(), t, create_graph=True)[0]
        u_x = torch.autograd.grad(u.sum(), x, create_graph=True)[0]
        u_xx = torch.autograd.grad(u_x.sum(), x, create_graph=True)[0]
        loss = (u_t - u_xx).pow(2).mean()
        return list(torch.autograd.grad(loss, list(params.values()), allow_unused=True))  # last bias: None
    return step


class Energy(nn.Module):
    """``torch_sciml.energy`` as a module, so that functional_call swaps the potential's parameters."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, positions: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        return energy(self.model, positions, cell)


def forces_and_stress_step(model: Energy):
    def step(params: dict, positions: torch.Tensor, cell: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        positions, cell = positions.detach().requires_grad_(True), cell.detach().requires_grad_(True)
        e = _call(model, params, positions, cell)
        forces = -torch.autograd.grad(e, positions, retain_graph=True)[0]
        stress = torch.autograd.grad(e, cell)[0]
        return forces, stress
    return step


def wgan_gp_step(model: nn.Module, penalty: float = 10.0):
    def step(params: dict, real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor) -> list[torch.Tensor]:
        mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
        (slopes,) = torch.autograd.grad(_call(model, params, mixed).sum(), mixed, create_graph=True)
        gradient_penalty = ((slopes.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
        loss = _call(model, params, fake).mean() - _call(model, params, real).mean() + penalty * gradient_penalty
        return list(torch.autograd.grad(loss, list(params.values())))
    return step


def zoo_steps(loss_fn, model: nn.Module):
    """``(separate, joint)`` for any ``loss_fn(model, *inputs)``: its gradients by one call per parameter and by
    one call, as functions of ``(params, buffers, *inputs)`` (the model's own tensors swapped for those)."""

    class Loss(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *inputs):
            return loss_fn(self.model, *inputs)

    def loss(params: dict, buffers: dict, inputs: tuple) -> torch.Tensor:
        state = {f"model.{name}": value for name, value in [*params.items(), *buffers.items()]}
        return torch.func.functional_call(Loss(), state, inputs)

    def separate(params: dict, buffers: dict, *inputs) -> list:
        value = loss(params, buffers, inputs)
        return [torch.autograd.grad(value, p, retain_graph=True, allow_unused=True)[0] for p in params.values()]

    def joint(params: dict, buffers: dict, *inputs) -> list:
        return list(torch.autograd.grad(loss(params, buffers, inputs), list(params.values()), allow_unused=True))

    return separate, joint


def matmul_calls(fn, *args) -> int:
    """How many matmul and convolution kernels ``fn(*args)`` runs (what graphaudit's op table calls matmul)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from graphaudit.frontends.torch.aten import op_key
    from graphaudit.frontends.torch.ops import TABLE

    class Count(TorchDispatchMode):
        count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.count += TABLE.row(op_key(func)[0]).kind == "matmul"
            return func(*args, **(kwargs or {}))

    with Count() as counter:
        fn(*args)
    return counter.count


def steps(scale: int = 1, *, dtype=torch.float64) -> dict[str, tuple]:
    """``{name: (step, args)}`` for the four steps; ``scale`` multiplies widths and batch sizes."""
    generator = torch.Generator().manual_seed(1)

    def rand(*shape):
        return torch.rand(*shape, generator=generator, dtype=dtype)

    seed = mlp((32 * scale, 24 * scale, 16 * scale, 8 * scale, 4), nn.Sigmoid, dtype=dtype)
    x = torch.randn(16 * scale, 32 * scale, generator=generator, dtype=dtype)
    y = torch.randint(0, 4, (16 * scale,), generator=generator)
    pinn = mlp((2, 16 * scale, 16 * scale, 16 * scale, 1), nn.Tanh, dtype=dtype)
    atoms = Energy(potential(16 * scale).to(dtype))
    critic = mlp((16 * scale, 32 * scale, 32 * scale, 1), lambda: nn.LeakyReLU(0.2), dtype=dtype)
    return {
        "seed MLP, one call per parameter": (seed_step(seed), (parameters(seed), x, y)),
        "PINN (heat), u_t and u_xx nested": (pinn_step(pinn), (parameters(pinn), rand(64 * scale, 1),
                                                               rand(64 * scale, 1))),
        "forces and stress, two calls": (forces_and_stress_step(atoms), (parameters(atoms), rand(8 * scale, 3),
                                                                         torch.eye(3, dtype=dtype))),
        "WGAN-GP critic": (wgan_gp_step(critic), (parameters(critic), rand(8 * scale, 16 * scale),
                                                  rand(8 * scale, 16 * scale), rand(8 * scale, 1))),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compile", action="store_true", help="compile each merged graph with inductor (slow)")
    args = parser.parse_args(argv)
    for name, (step, example) in steps().items():
        fast = deduplicate(step, *example, compile=args.compile)
        calls = fast.report.framework["fx_nodes"]
        print(f"{name}: {calls['original']['nodes']} aten calls -> {calls['deduplicated']['nodes']}, "
              f"matmuls {calls['original']['matmuls']} -> {calls['deduplicated']['matmuls']}; "
              "checked against eager PyTorch")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
