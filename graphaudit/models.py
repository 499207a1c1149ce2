"""Networks shared by the examples, the tests and the CLI.

Each builder returns a :class:`Model` ``(loss, params, make_feed)``. Building never
allocates the parameters' arrays (the seed's ``w1`` alone is 328 MB in float32):
``make_feed(seed=0)`` draws every input and parameter on demand, reproducibly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from graphaudit.core import ops
from graphaudit.core.graph import Node, parameter, placeholder

ACTIVATIONS: dict[str, Callable[[Node], Node]] = {"sigmoid": ops.sigmoid, "tanh": ops.tanh, "relu": ops.relu}


class Model(NamedTuple):
    loss: Node
    params: list[Node]
    make_feed: Callable[..., dict[Node, np.ndarray]]


def nll_loss(logits: Node, labels: Node) -> Node:
    """The seed's loss: ``-mean(log(softmax(logits))[arange(n), labels])``."""
    logp = ops.log(ops.softmax(logits))
    return -ops.mean(logp[ops.arange(logits.shape[0]), labels])


def _feeder(x: Node, y: Node, params: list[Node], classes: int) -> Callable[..., dict[Node, np.ndarray]]:
    """A ``make_feed(seed=0)``: inputs ~ N(0, 1), weights ~ N(0, 1/fan_in), biases ~ N(0, 0.01)."""

    def make_feed(seed: int = 0) -> dict[Node, np.ndarray]:
        rng = np.random.default_rng(seed)
        feed = {
            x: rng.standard_normal(x.shape, dtype=np.float64).astype(x.dtype),
            y: rng.integers(0, classes, size=y.shape).astype(y.dtype),
        }
        for p in params:
            scale = 1 / np.sqrt(p.shape[0]) if p.ndim == 2 else 0.1
            feed[p] = (scale * rng.standard_normal(p.shape, dtype=np.float64)).astype(p.dtype)
        return feed

    return make_feed


def mlp(widths: Sequence[int], batch: int, activation: str = "sigmoid", dtype="float32") -> Model:
    """Dense layers ``widths[0] -> ... -> widths[-1]``, ``activation`` between, NLL loss on top.

    Parameters come in layer order: ``w1, b1, w2, b2, ...``.
    """
    widths = [int(w) for w in widths]
    if len(widths) < 2 or min(widths) < 1 or int(batch) < 1:
        raise ValueError(f"mlp: need >= 2 positive widths and a positive batch, got {widths}, batch={batch}")
    act = ACTIVATIONS[activation]
    x = placeholder("x", (batch, widths[0]), dtype)
    y = placeholder("y", (batch,), "int64")
    h, params = x, []
    for layer, (fan_in, fan_out) in enumerate(zip(widths, widths[1:]), start=1):
        w = parameter(f"w{layer}", (fan_in, fan_out), dtype)
        b = parameter(f"b{layer}", (fan_out,), dtype)
        params += [w, b]
        h = h @ w + b
        if layer < len(widths) - 1:
            h = act(h)
    return Model(nll_loss(h, y), params, _feeder(x, y, params, widths[-1]))


def seed_mlp(batch: int = 128, widths: Sequence[int] = (16384, 5000, 3000, 512, 40), dtype="float32") -> Model:
    """The seed's network (docs/seed.md): sigmoid layers 16384 -> 5000 -> 3000 -> 512, softmax over 40 classes."""
    return mlp(widths, batch, "sigmoid", dtype)


def deep_chain(depth: int = 16, width: int = 32, batch: int = 64, classes: int = 10, dtype="float32") -> Model:
    """``depth`` sigmoid layers of ``width`` units, then a softmax layer: the quadratic case."""
    return mlp([width] * (depth + 1) + [classes], batch, "sigmoid", dtype)


def residual_mlp(depth: int = 8, width: int = 32, batch: int = 64, classes: int = 10, dtype="float32") -> Model:
    """``h = h + tanh(h @ w + b)`` repeated ``depth`` times, then a softmax layer.

    Every hidden state has two consumers (the skip and the block), so adjoints are sums.
    """
    if int(depth) < 1 or int(width) < 1 or int(batch) < 1:
        raise ValueError(f"residual_mlp: depth, width and batch must be positive, got {depth}, {width}, {batch}")
    x = placeholder("x", (batch, width), dtype)
    y = placeholder("y", (batch,), "int64")
    h, params = x, []
    for block in range(1, depth + 1):
        w = parameter(f"w{block}", (width, width), dtype)
        b = parameter(f"b{block}", (width,), dtype)
        params += [w, b]
        h = h + ops.tanh(h @ w + b)
    w_out = parameter("w_out", (width, classes), dtype)
    b_out = parameter("b_out", (classes,), dtype)
    params += [w_out, b_out]
    return Model(nll_loss(h @ w_out + b_out, y), params, _feeder(x, y, params, classes))
