"""A 2-layer MLP written in the toy framework: the program its tests audit, and a command-line target.

``loss = sum((tanh(x @ w1 + b1) @ w2 + b2) * y)``: x is batch x width[0], y batch x width[2].
"""

from __future__ import annotations

import numpy as np
import toyframework as toy

WIDTHS = (4, 5, 3)
BATCH = 6


def build(widths=WIDTHS, batch=BATCH, seed=0):
    """``(loss, [w1, b1, w2, b2])``, and the data ``{"x": ..., "y": ...}``."""
    rng = np.random.default_rng(seed)
    d, h, o = widths
    x, y = toy.data("x", rng.standard_normal((batch, d))), toy.data("y", rng.standard_normal((batch, o)))
    w1, b1 = toy.param("w1", rng.standard_normal((d, h))), toy.param("b1", rng.standard_normal(h))
    w2, b2 = toy.param("w2", rng.standard_normal((h, o))), toy.param("b2", rng.standard_normal(o))
    hidden = toy.op("tanh", toy.op("add", toy.op("matmul", x, w1), b1))
    out = toy.op("add", toy.op("matmul", hidden, w2), b2)
    return toy.op("sum", toy.op("mul", out, y)), [w1, b1, w2, b2]


def target():
    """What ``graphaudit audit tests/frontends/toy/toy_mlp.py:target`` audits."""
    return build()
