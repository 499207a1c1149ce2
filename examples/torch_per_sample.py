"""Per-sample gradients in PyTorch: a loop of ``autograd.grad`` calls vs ``torch.func.vmap(torch.func.grad(...))``.

The loop is how per-sample gradients are often written: the forward on the whole batch
once, then one ``torch.autograd.grad(losses[i], params, retain_graph=True)`` per sample.
Each call runs the whole batch's backward for one sample's seed: the products are
batch-sized every time, mostly multiplying zeros. ``vmap(grad(...))`` runs one batched
backward instead. graphaudit traces both (fake tensors: nothing is allocated), counts them,
and says what merging equal subexpressions gets back of the loop: little, since each call
differs in its seed. The waste is not duplicated work but work on zeros, and only a
different program (vmap) avoids it.

    python examples/torch_per_sample.py
    python examples/torch_per_sample.py --batch 64 --widths 784,256,10
    graphaudit audit examples/torch_per_sample.py:target    # the batch loss: separate vs joint
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from graphaudit.core.describe import si
from graphaudit.frontends.torch import audit_function

WIDTHS = (32, 16, 10)


def build(widths: Sequence[int] = WIDTHS, batch: int = 8, *, seed: int = 0):
    """A tanh MLP (``nn.Linear`` layers) and a batch ``(x, y)``."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(widths, widths[1:])):
        layers += [nn.Linear(fan_in, fan_out)] + ([nn.Tanh()] if i < len(widths) - 2 else [])
    return nn.Sequential(*layers), torch.randn(batch, widths[0]), torch.randint(0, widths[-1], (batch,))


def per_sample_loop(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """Per-sample gradients, one ``autograd.grad`` call per sample: ``[batch, *p.shape]`` per parameter."""
    params = list(model.parameters())
    losses = F.cross_entropy(model(x), y, reduction="none")
    rows = [torch.autograd.grad(losses[i], params, retain_graph=True) for i in range(x.shape[0])]
    return [torch.stack(per_param) for per_param in zip(*rows)]


def per_sample_vmap(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """The same gradients with ``torch.func``: ``vmap`` over the batch of ``grad`` of one sample's loss."""
    params = dict(model.named_parameters())

    def one_loss(p, xi, yi):
        logits = torch.func.functional_call(model, p, (xi.unsqueeze(0),))
        return F.cross_entropy(logits, yi.unsqueeze(0))

    grads = torch.func.vmap(torch.func.grad(one_loss), in_dims=(None, 0, 0))(params, x, y)
    return list(grads.values())


def mean_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(x), y)


def target():
    """The CLI target: the same model's batch loss, one grad call per parameter vs one joint call
    (the per-sample comparison runs from this file: the command line audits scalar losses)."""
    model, x, y = build()
    return mean_loss, model, x, y


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8, help="samples (default: 8)")
    parser.add_argument("--widths", default=",".join(map(str, WIDTHS)),
                        help=f"layer widths, input first (default: {','.join(map(str, WIDTHS))})")
    args = parser.parse_args(argv)
    widths = [int(w) for w in args.widths.split(",")]
    if args.batch < 1 or len(widths) < 2 or min(widths) < 1:
        parser.error("need a positive --batch and two or more positive --widths")

    model, x, y = build(widths, args.batch)
    loop = audit_function(per_sample_loop, x, y, params=model)
    vmapped = audit_function(per_sample_vmap, x, y, params=model)
    print(f"per-sample gradients: batch {args.batch}, widths {'-'.join(map(str, widths))}\n")
    print("--- a loop of autograd.grad calls, one per sample ---")
    print(loop.to_text())
    print("\n--- torch.func.vmap(torch.func.grad(...)) ---")
    print(vmapped.to_text())
    merged = loop.merged.cost
    best = vmapped.merged.cost
    print(f"\nloop merged: {si(merged.flops, 'FLOP')} ({si(merged.matmul_flops, 'FLOP')} in matmuls); vmap: "
          f"{si(best.flops, 'FLOP')} ({si(best.matmul_flops, 'FLOP')} in matmuls); "
          f"loop / vmap matmul FLOPs = {merged.matmul_flops / best.matmul_flops:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
