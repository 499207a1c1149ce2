"""The shared networks: shapes, parameter order, feeds, and no arrays at build time."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, np_mlp_loss, np_residual_loss

import graphaudit as ga
from graphaudit import models

SEED_WIDTHS = (16384, 5000, 3000, 512, 40)


def _leaves(model, op):
    return {n.name: n for n in ga.topological_order([model.loss]) if n.op == op}


def _expected_mlp_params(widths):
    names, shapes = [], []
    for layer, (fan_in, fan_out) in enumerate(zip(widths, widths[1:]), start=1):
        names += [f"w{layer}", f"b{layer}"]
        shapes += [(fan_in, fan_out), (fan_out,)]
    return names, shapes


def test_seed_mlp_defaults_are_the_seed_network_and_allocate_nothing():
    model = models.seed_mlp()
    names, shapes = _expected_mlp_params(SEED_WIDTHS)
    assert [p.name for p in model.params] == names
    assert [p.shape for p in model.params] == shapes
    assert all(p.op == "parameter" and p.value is None and p.dtype == np.float32 for p in model.params)
    assert model.loss.shape == () and model.loss.dtype == np.float32
    placeholders = _leaves(model, "placeholder")
    assert set(placeholders) == {"x", "y"}
    assert placeholders["x"].shape == (128, SEED_WIDTHS[0]) and placeholders["x"].value is None
    assert placeholders["y"].shape == (128,) and placeholders["y"].dtype == np.int64
    # every array in the graph is a small constant: no parameter-sized array exists
    arrays = [n.value for n in ga.topological_order([model.loss]) if n.value is not None]
    assert sum(a.size for a in arrays) < 10


def test_seed_mlp_activations_and_loss_structure():
    widths = (7, 6, 5, 4)
    model = models.seed_mlp(batch=3, widths=widths)
    ops = [n.op for n in ga.topological_order([model.loss])]
    layers = len(widths) - 1
    assert ops.count("matmul") == layers
    assert ops.count("sigmoid") == layers - 1
    assert ops.count("softmax") == 1 and ops.count("log") == 1 and ops.count("index") == 1
    assert model.loss.op == "neg" and model.loss.inputs[0].op == "mean"


@pytest.mark.parametrize("activation, np_fn", [("sigmoid", lambda h: 1 / (1 + np.exp(-h))), ("tanh", np.tanh),
                                                ("relu", lambda h: np.maximum(h, 0))])
def test_mlp_loss_matches_numpy(activation, np_fn):
    model = models.mlp((5, 4, 3, 3), batch=4, activation=activation, dtype="float64")
    feed = model.make_feed(seed=3)
    x, y = _leaves(model, "placeholder")["x"], _leaves(model, "placeholder")["y"]
    ops = [n.op for n in ga.topological_order([model.loss])]
    assert ops.count(activation) == 2
    expected = np_mlp_loss(feed[x], feed[y], [feed[p] for p in model.params], activation=np_fn)
    np.testing.assert_allclose(ga.evaluate(model.loss, feed), expected, rtol=1e-12)


def test_deep_chain_shapes_and_names():
    depth, width, batch, classes = 5, 7, 3, 4
    model = models.deep_chain(depth=depth, width=width, batch=batch, classes=classes)
    names, shapes = _expected_mlp_params([width] * (depth + 1) + [classes])
    assert [p.name for p in model.params] == names
    assert [p.shape for p in model.params] == shapes
    assert len(model.params) == 2 * (depth + 1)
    assert _leaves(model, "placeholder")["x"].shape == (batch, width)
    ops = [n.op for n in ga.topological_order([model.loss])]
    assert ops.count("sigmoid") == depth


def test_residual_mlp_shapes_names_and_loss():
    depth, width, batch, classes = 3, 4, 5, 3
    model = models.residual_mlp(depth=depth, width=width, batch=batch, classes=classes, dtype="float64")
    expected_names = [f"{kind}{block}" for block in range(1, depth + 1) for kind in "wb"] + ["w_out", "b_out"]
    assert [p.name for p in model.params] == expected_names
    expected_shapes = [(width, width), (width,)] * depth + [(width, classes), (classes,)]
    assert [p.shape for p in model.params] == expected_shapes
    assert all(p.value is None for p in model.params)
    ops = [n.op for n in ga.topological_order([model.loss])]
    assert ops.count("tanh") == depth
    feed = model.make_feed(seed=0)
    x, y = _leaves(model, "placeholder")["x"], _leaves(model, "placeholder")["y"]
    expected = np_residual_loss(feed[x], feed[y], [feed[p] for p in model.params])
    np.testing.assert_allclose(ga.evaluate(model.loss, feed), expected, rtol=1e-12)


@pytest.mark.parametrize(
    "build",
    [lambda: models.mlp([4], batch=2), lambda: models.mlp([4, 0], batch=2), lambda: models.mlp([4, 3], batch=0),
     lambda: models.residual_mlp(depth=0), lambda: models.residual_mlp(width=0)],
    ids=["one-width", "zero-width", "zero-batch", "residual-depth0", "residual-width0"],
)
def test_bad_sizes_raise_value_error(build):
    with pytest.raises(ValueError):
        build()


@pytest.mark.parametrize(
    "build",
    [lambda: models.seed_mlp(batch=4, widths=(6, 5, 4, 3, 2)),
     lambda: models.deep_chain(depth=2, width=3, batch=2, classes=3, dtype="float64"),
     lambda: models.residual_mlp(depth=2, width=3, batch=2, classes=3)],
    ids=["seed_mlp", "deep_chain", "residual_mlp"],
)
def test_make_feed_is_deterministic_per_seed_and_differs_across_seeds(build):
    model = build()
    first, again, other = model.make_feed(seed=0), model.make_feed(seed=0), model.make_feed(seed=1)
    placeholders = _leaves(model, "placeholder")
    assert set(first) == set(model.params) | set(placeholders.values())
    for node, value in first.items():
        assert value.shape == node.shape and value.dtype == node.dtype, node
        np.testing.assert_array_equal(value, again[node])
    for node in model.params + [placeholders["x"]]:
        assert not np.array_equal(first[node], other[node]), node
    classes = model.params[-1].shape[0]
    labels = first[placeholders["y"]]
    assert labels.min() >= 0 and labels.max() < classes
    assert model.make_feed().keys() == first.keys()
    np.testing.assert_array_equal(model.make_feed()[placeholders["x"]], first[placeholders["x"]])


def test_make_feed_scales_weights_by_fan_in():
    fan_in, fan_out = 400, 50
    model = models.mlp((fan_in, fan_out, 2), batch=2, dtype="float64")
    feed = model.make_feed(seed=0)
    w1, b1 = model.params[:2]
    np.testing.assert_allclose(feed[w1].std(), 1 / np.sqrt(fan_in), rtol=0.05)
    np.testing.assert_allclose(feed[b1].std(), 0.1, rtol=0.5)


@pytest.mark.subprocess
def test_models_reachable_as_ga_models_in_a_fresh_process():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = "import graphaudit as ga; print(ga.models.seed_mlp.__name__)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "seed_mlp"
