"""Target files the command-line tests audit: graphaudit's own graphs, a JAX function and a PyTorch model."""

from __future__ import annotations

import pytest

MODEL_FILE = """
import numpy as np
import graphaudit as ga

def build():
    x = ga.placeholder("x", (4, 3))
    w1 = ga.parameter("w1", (3, 5))
    w2 = ga.parameter("w2", (5, 2))
    cost = ga.sum(ga.tanh(ga.tanh(x @ w1) @ w2))
    return cost, [w1, w2]

def build_with_feed():
    cost, wrt = build()
    leaves = [n for n in ga.topological_order([cost]) if n.is_leaf]
    rng = np.random.default_rng(0)
    feed = {n: rng.standard_normal(n.shape).astype(n.dtype) for n in leaves if n.op != "constant"}
    return cost, wrt, feed

def single():
    w = ga.parameter("w", (3,))
    return ga.sum(ga.tanh(w)), w

def returns_int():
    return 3

def returns_one():
    return (build()[0],)

def cost_not_node():
    return 1.0, build()[1]

def wrt_not_nodes():
    return build()[0], ["w1"]

def not_scalar():
    w = ga.parameter("w", (3,))
    return ga.tanh(w), [w]

def raises():
    raise RuntimeError("broken model")

not_a_function = 42
"""


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("target") / "my_model.py"
    path.write_text(MODEL_FILE)
    return path


JAX_MODEL_FILE = """
import jax.numpy as jnp
import numpy as np

def loss(w1, w2, x):
    return jnp.sum(jnp.tanh(jnp.tanh(x @ w1) @ w2))

def target():
    rng = np.random.default_rng(0)
    w1, w2, x = (rng.standard_normal(s).astype(np.float32) for s in [(3, 5), (5, 2), (4, 3)])
    return loss, (w1, w2, x), (0, 1)

def args_not_a_tuple():
    return loss, 3, 0

def argnums_not_ints():
    return target()[0], target()[1], ("w1",)

def fails_in_jax():
    return (lambda w: jnp.sum(w @ w), (np.ones((2, 3), np.float32),), 0)
"""


@pytest.fixture(scope="module")
def jax_model_file(tmp_path_factory):
    pytest.importorskip("jax")
    path = tmp_path_factory.mktemp("jax_target") / "jax_model.py"
    path.write_text(JAX_MODEL_FILE)
    return path


TORCH_MODEL_FILE = """
import torch
import torch.nn as nn

def target():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))
    x, y = torch.randn(6, 5), torch.tensor([0, 2, 1, 1, 0, 2])
    return (lambda m, x, y: nn.functional.cross_entropy(m(x), y)), model, x, y
"""


@pytest.fixture(scope="module")
def torch_model_file(tmp_path_factory):
    pytest.importorskip("torch")
    path = tmp_path_factory.mktemp("torch_target") / "torch_model.py"
    path.write_text(TORCH_MODEL_FILE)
    return path
