"""A BatchNorm convnet in PyTorch: one ``torch.autograd.grad`` per parameter vs one joint call.

Conv2d, BatchNorm2d, ReLU and max pooling, twice, then global average pooling and a linear
head, in training mode. ``convolution_backward`` and ``native_batch_norm_backward`` take an
``output_mask`` and each separate call asks for one result; graphaudit imports each result
as its own node, so what different calls share still merges. BatchNorm's update of its
running statistics is a write nobody reads again in the step: imported as a value, on
fakes of the buffers (the model's own statistics are never touched).

    python examples/torch_convnet.py
    python examples/torch_convnet.py --channels 64 --size 32 --batch 32
    python examples/torch_convnet.py --measure --compile-check
    graphaudit audit examples/torch_convnet.py:target
"""

from __future__ import annotations

import argparse

import torch
from torch import nn
from torch.nn import functional as F

from graphaudit.frontends.torch import audit


def cross_entropy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(x), y)


def build(channels: int = 8, size: int = 8, batch: int = 4, classes: int = 10, *, dtype=torch.float32,
          seed: int = 0):
    """``(loss_fn, model, x, y)``: two conv blocks and a head, and a batch of 3-channel ``size`` x ``size`` images."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, channels, 3, padding=1, dtype=dtype), nn.BatchNorm2d(channels, dtype=dtype), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(channels, channels, 3, padding=1, dtype=dtype), nn.BatchNorm2d(channels, dtype=dtype), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes, dtype=dtype),
    )
    x = torch.randn(batch, 3, size, size, dtype=dtype)
    return cross_entropy, model, x, torch.randint(0, classes, (batch,))


def target():
    """The CLI target: ``graphaudit audit examples/torch_convnet.py:target``."""
    return build()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--channels", type=int, default=8, help="channels of both conv layers (default: 8)")
    parser.add_argument("--size", type=int, default=8, help="image height and width, even (default: 8)")
    parser.add_argument("--batch", type=int, default=4, help="images (default: 4)")
    parser.add_argument("--measure", action="store_true", help="time both forms in eager PyTorch")
    parser.add_argument("--compile-check", action="store_true", help="what FX CSE and inductor keep (slow)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per form for --measure (default: 5)")
    args = parser.parse_args(argv)
    if min(args.channels, args.size, args.batch, args.repeats) < 1 or args.size % 2 or args.batch < 2:
        parser.error("sizes must be positive, --size even and --batch at least 2 (BatchNorm needs a batch)")

    loss_fn, model, x, y = build(args.channels, args.size, args.batch)
    report = audit(loss_fn, x, y, params=model, measure=args.measure, compile_check=args.compile_check,
                   repeats=args.repeats)
    print(f"BatchNorm convnet in PyTorch: {args.channels} channels, {args.size}x{args.size} images, "
          f"batch {args.batch}, {len(report.wrt)} parameters\n")
    print(report.to_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
