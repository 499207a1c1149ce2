"""Small PyTorch models for the torch front-end's tests: each ``(loss_fn, model, *inputs)``.

Every builder takes its sizes, a dtype and a seed, so that tests run them small in
float64 and examples at their real sizes; ``device="meta"`` builds one without allocating.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from graphaudit.ops import OPS

SEED_WIDTHS = (16384, 5000, 3000, 512, 40)


def nll(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.nll_loss(torch.log_softmax(logits, dim=-1), y)


def classifier_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The seed's loss: mean NLL of the log-softmax of the model's logits."""
    return nll(model(x), y)


def seed_mlp(widths: Sequence[int] = SEED_WIDTHS, batch: int = 128, *, dtype=torch.float32, seed: int = 0,
             device: str = "cpu"):
    """The seed MLP: ``nn.Linear`` layers with a sigmoid between, NLL of log-softmax on top."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    with torch.device(device):
        for i, (fan_in, fan_out) in enumerate(zip(widths, widths[1:])):
            layers.append(nn.Linear(fan_in, fan_out, dtype=dtype))
            if i < len(widths) - 2:
                layers.append(nn.Sigmoid())
        model = nn.Sequential(*layers)
        x = torch.randn(batch, widths[0], dtype=dtype)
        y = torch.randint(0, widths[-1], (batch,))
    return classifier_loss, model, x, y


class Transformer(nn.Module):
    """``nn.TransformerEncoderLayer(batch_first=True)``, mean over the sequence, a linear head."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, classes: int, dtype):
        super().__init__()
        self.encoder = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout=0.0, batch_first=True,
                                                  dtype=dtype)
        self.head = nn.Linear(d_model, classes, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x).mean(dim=1))


def transformer(d_model: int = 64, nhead: int = 4, dim_feedforward: int = 128, batch: int = 8, seq: int = 16,
                classes: int = 10, *, dtype=torch.float32, seed: int = 0):
    torch.manual_seed(seed)
    model = Transformer(d_model, nhead, dim_feedforward, classes, dtype)
    return classifier_loss, model, torch.randn(batch, seq, d_model, dtype=dtype), torch.randint(0, classes, (batch,))


def convnet(channels: int = 8, size: int = 8, batch: int = 4, classes: int = 10, *, dtype=torch.float32,
            seed: int = 0):
    """Conv2d, BatchNorm2d, ReLU, max pooling, twice; then a linear head."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, channels, 3, padding=1, dtype=dtype), nn.BatchNorm2d(channels, dtype=dtype), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(channels, channels, 3, padding=1, dtype=dtype), nn.BatchNorm2d(channels, dtype=dtype), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes, dtype=dtype),
    )
    return classifier_loss, model, torch.randn(batch, 3, size, size, dtype=dtype), torch.randint(0, classes, (batch,))


def wgan_gp_loss(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor,
                 penalty: float = 10.0) -> torch.Tensor:
    """A WGAN-GP critic step: Wasserstein estimate plus the gradient penalty at interpolates."""
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (slopes,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    gradient_penalty = ((slopes.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
    return critic(fake).mean() - critic(real).mean() + penalty * gradient_penalty


def wgan_gp(features: int = 16, hidden: int = 32, batch: int = 8, *, dtype=torch.float32, seed: int = 0):
    """A critic MLP (Linear, LeakyReLU, Linear, LeakyReLU, Linear) and a batch of real and generated samples."""
    torch.manual_seed(seed)
    critic = nn.Sequential(nn.Linear(features, hidden, dtype=dtype), nn.LeakyReLU(0.2),
                           nn.Linear(hidden, hidden, dtype=dtype), nn.LeakyReLU(0.2), nn.Linear(hidden, 1, dtype=dtype))
    real, fake = torch.randn(batch, features, dtype=dtype), torch.randn(batch, features, dtype=dtype)
    return wgan_gp_loss, critic, real, fake, torch.rand(batch, 1, dtype=dtype)


def eager_grads(loss_fn, model: nn.Module, *inputs) -> list[torch.Tensor]:
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
