"""The PyTorch models of the torch front-end's tests: the examples' builders, and what tests need around them.

Each builder returns ``(loss_fn, model, *inputs)`` and takes its sizes, a dtype and a seed,
so that tests run the examples' models small and in float64; the seed MLP also takes
``device="meta"`` (built without allocating).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import torch

from graphaudit.core.ops import OPS

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))

import torch_convnet  # noqa: E402
import torch_seed_mlp  # noqa: E402
import torch_transformer  # noqa: E402
import torch_wgan_gp  # noqa: E402

SEED_WIDTHS = torch_seed_mlp.SEED_WIDTHS
classifier_loss = torch_seed_mlp.classifier_loss
seed_mlp = torch_seed_mlp.build
transformer = torch_transformer.build
convnet = torch_convnet.build
wgan_gp = torch_wgan_gp.build


def eager_grads(loss_fn, model: torch.nn.Module, *inputs) -> list[torch.Tensor]:
    """PyTorch's own joint gradients of every parameter that requires grad, in ``named_parameters`` order."""
    params = [p for p in model.parameters() if p.requires_grad]
    return list(torch.autograd.grad(loss_fn(model, *inputs), params))


@contextlib.contextmanager
def op_registry_kept():
    """The op registry as it was before, afterwards: audits register aten ops, some impure (attention
    kernels carry the random tag, for their dropout), which tests of graphaudit's own ops need not see."""
    saved = dict(OPS)
    try:
        yield
    finally:
        OPS.clear()
        OPS.update(saved)
