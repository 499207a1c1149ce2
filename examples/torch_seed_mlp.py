"""The seed experiment in PyTorch: one ``torch.autograd.grad`` per parameter against one joint call.

The seed's network (docs/seed.md: ``nn.Linear`` layers 16384 -> 5000 -> 3000 -> 512 -> 40 with a
sigmoid between, mean NLL of the log-softmax, batch 128) and the user's own program: the
forward once, then ``torch.autograd.grad(loss, [p], retain_graph=True)`` per parameter, or
``torch.autograd.grad(loss, params)`` once. graphaudit traces it with ``make_fx`` on fake
tensors and the model is built on the ``meta`` device: at the seed's size nothing is
allocated (the weights would take about 400 MB). ``--measure`` and ``--compile-check`` run
real tensors, so they build the model on the CPU.

    python examples/torch_seed_mlp.py
    python examples/torch_seed_mlp.py --batch 4 --widths 6,5,4,3,2 --measure --compile-check
    graphaudit audit examples/torch_seed_mlp.py:target
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import torch
from seed_mlp import widths_arg  # the same --widths as examples/seed_mlp.py
from torch import nn
from torch.nn import functional as F

from graphaudit.frontends.torch import audit

SEED_WIDTHS = (16384, 5000, 3000, 512, 40)


def classifier_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The seed's loss: mean NLL of the log-softmax of the model's logits."""
    return F.nll_loss(torch.log_softmax(model(x), dim=-1), y)


def build(widths: Sequence[int] = SEED_WIDTHS, batch: int = 128, *, dtype=torch.float32, device: str = "cpu",
          seed: int = 0):
    """``(loss_fn, model, x, y)``: ``nn.Linear`` layers with a sigmoid between, on ``device`` (``meta``: no data)."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    with torch.device(device):
        for i, (fan_in, fan_out) in enumerate(zip(widths, widths[1:])):
            layers.append(nn.Linear(fan_in, fan_out, dtype=dtype))
            if i < len(widths) - 2:
                layers.append(nn.Sigmoid())
        x = torch.randn(batch, widths[0], dtype=dtype)
        y = torch.randint(0, widths[-1], (batch,))
    return classifier_loss, nn.Sequential(*layers), x, y


def target():
    """The CLI target at the seed's size, on the meta device: ``graphaudit audit examples/torch_seed_mlp.py:target``."""
    return build(device="meta")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=128, help="batch size (default: the seed's 128)")
    parser.add_argument("--widths", type=widths_arg, default=SEED_WIDTHS,
                        help="layer widths, input first (default: 16384,5000,3000,512,40)")
    parser.add_argument("--measure", action="store_true", help="time both forms in eager PyTorch (allocates)")
    parser.add_argument("--compile-check", action="store_true", help="what FX CSE and inductor keep (slow)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per form for --measure (default: 5)")
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON to PATH")
    args = parser.parse_args(argv)
    if args.batch < 1 or args.repeats < 1:
        parser.error("--batch and --repeats must be positive")

    real = args.measure or args.compile_check
    loss_fn, model, x, y = build(args.widths, args.batch, device="cpu" if real else "meta")
    report = audit(loss_fn, x, y, params=model, measure=args.measure, compile_check=args.compile_check,
                   repeats=args.repeats)
    print(f"seed MLP in PyTorch: batch {args.batch}, widths {'-'.join(map(str, args.widths))}, float32, "
          f"{len(report.wrt)} parameters\n")
    print(report.to_text())
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            file.write(report.to_json() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
