"""A WGAN-GP critic step in PyTorch: one ``torch.autograd.grad`` per parameter vs one joint call.

The critic's loss holds a gradient itself: the penalty on ``|d critic / d x|`` at points
between real and generated samples, taken with ``torch.autograd.grad(...,
create_graph=True)`` inside the loss. That inner call is part of the forward (it runs once);
the separate and joint calls then differentiate through it (double backward), and the
separate calls rebuild the backward of the penalty's backward once per parameter.

    python examples/torch_wgan_gp.py
    python examples/torch_wgan_gp.py --features 784 --hidden 512 --batch 64
    python examples/torch_wgan_gp.py --measure --compile-check
    graphaudit audit examples/torch_wgan_gp.py:target
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from graphaudit.frontends.torch import audit


def wgan_gp_loss(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor,
                 penalty: float = 10.0) -> torch.Tensor:
    """The critic's loss: the Wasserstein estimate plus the gradient penalty at interpolates."""
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (slopes,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    gradient_penalty = ((slopes.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
    return critic(fake).mean() - critic(real).mean() + penalty * gradient_penalty


def build(features: int = 16, hidden: int = 32, batch: int = 8, *, dtype=torch.float32, seed: int = 0):
    """``(loss_fn, critic, real, fake, eps)``: an MLP critic (LeakyReLU) and a batch of real and generated samples."""
    torch.manual_seed(seed)
    critic = nn.Sequential(nn.Linear(features, hidden, dtype=dtype), nn.LeakyReLU(0.2),
                           nn.Linear(hidden, hidden, dtype=dtype), nn.LeakyReLU(0.2), nn.Linear(hidden, 1, dtype=dtype))
    real, fake = torch.randn(batch, features, dtype=dtype), torch.randn(batch, features, dtype=dtype)
    return wgan_gp_loss, critic, real, fake, torch.rand(batch, 1, dtype=dtype)


def target():
    """The CLI target: ``graphaudit audit examples/torch_wgan_gp.py:target``."""
    return build()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", type=int, default=16, help="features per sample (default: 16)")
    parser.add_argument("--hidden", type=int, default=32, help="critic width (default: 32)")
    parser.add_argument("--batch", type=int, default=8, help="samples (default: 8)")
    parser.add_argument("--measure", action="store_true", help="time both forms in eager PyTorch")
    parser.add_argument("--compile-check", action="store_true", help="what FX CSE and inductor keep (slow)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per form for --measure (default: 5)")
    args = parser.parse_args(argv)
    if min(args.features, args.hidden, args.batch, args.repeats) < 1:
        parser.error("sizes must be positive")

    loss_fn, critic, real, fake, eps = build(args.features, args.hidden, args.batch)
    report = audit(loss_fn, real, fake, eps, params=critic, measure=args.measure, compile_check=args.compile_check,
                   repeats=args.repeats)
    print(f"WGAN-GP critic step in PyTorch: {args.features} features, critic width {args.hidden}, "
          f"batch {args.batch}, {len(report.wrt)} parameters\n")
    print(report.to_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
