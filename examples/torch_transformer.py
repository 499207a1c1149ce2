"""A transformer encoder layer in PyTorch: one ``torch.autograd.grad`` per parameter vs one joint call.

``nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, batch_first=True)`` (dropout
off, so the audit is deterministic), the mean over the sequence and a linear head, trained
with cross-entropy. The attention runs PyTorch's CPU flash-attention kernel, forward and
backward; LayerNorm's backward asks for one result per separate call, and graphaudit
imports each result as its own node (``output_mask`` dropped), so the merged separate form
equals the joint one. The report's forward nodes are named by module path
(``encoder.self_attn``, ``encoder.linear2``).

    python examples/torch_transformer.py
    python examples/torch_transformer.py --d-model 512 --heads 8 --ff 2048 --batch 32 --seq 128
    python examples/torch_transformer.py --measure --compile-check
    graphaudit audit examples/torch_transformer.py:target
"""

from __future__ import annotations

import argparse

import torch
from torch import nn
from torch.nn import functional as F

from graphaudit.frontends.torch import audit


class Classifier(nn.Module):
    """One encoder layer, the mean over the sequence, a linear head."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, classes: int, dtype=torch.float32):
        super().__init__()
        self.encoder = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout=0.0, batch_first=True,
                                                  dtype=dtype)
        self.head = nn.Linear(d_model, classes, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x).mean(dim=1))


def cross_entropy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(x), y)


def build(d_model: int = 64, nhead: int = 4, dim_feedforward: int = 128, batch: int = 8, seq: int = 16,
          classes: int = 10, *, dtype=torch.float32, seed: int = 0):
    """``(loss_fn, model, x, y)``: the classifier and a batch of ``seq`` tokens of ``d_model`` features."""
    torch.manual_seed(seed)
    model = Classifier(d_model, nhead, dim_feedforward, classes, dtype)
    return cross_entropy, model, torch.randn(batch, seq, d_model, dtype=dtype), torch.randint(0, classes, (batch,))


def target():
    """The CLI target: ``graphaudit audit examples/torch_transformer.py:target``."""
    return build()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--d-model", type=int, default=64, help="features per token (default: 64)")
    parser.add_argument("--heads", type=int, default=4, help="attention heads (default: 4)")
    parser.add_argument("--ff", type=int, default=128, help="feed-forward width (default: 128)")
    parser.add_argument("--batch", type=int, default=8, help="sequences (default: 8)")
    parser.add_argument("--seq", type=int, default=16, help="tokens per sequence (default: 16)")
    parser.add_argument("--measure", action="store_true", help="time both forms in eager PyTorch")
    parser.add_argument("--compile-check", action="store_true", help="what FX CSE and inductor keep (slow)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per form for --measure (default: 5)")
    args = parser.parse_args(argv)
    sizes = (args.d_model, args.heads, args.ff, args.batch, args.seq, args.repeats)
    if min(sizes) < 1 or args.d_model % args.heads:
        parser.error("sizes must be positive and --d-model a multiple of --heads")

    loss_fn, model, x, y = build(args.d_model, args.heads, args.ff, args.batch, args.seq)
    report = audit(loss_fn, x, y, params=model, measure=args.measure, compile_check=args.compile_check,
                   repeats=args.repeats)
    print(f"TransformerEncoderLayer({args.d_model}, {args.heads}, {args.ff}) + linear head in PyTorch: "
          f"batch {args.batch}, sequence {args.seq}, {len(report.wrt)} parameters\n")
    print(report.to_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
