"""Pictures that stay readable at the size of real models: bounded aspect ratio, distinct labels,
re-traced forward nodes drawn as forward, titles that say what a box is."""

from __future__ import annotations

import re
import shutil
import struct

import pytest

import graphaudit as ga
from graphaudit import models
from graphaudit.views import draw
from graphaudit.core.describe import abbreviate, distinct_labels

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="the Graphviz `dot` program is not installed")
MAX_RATIO = 4


def png_size(path) -> tuple[int, int]:
    return struct.unpack(">II", path.read_bytes()[16:24])


@pytest.mark.slow
@needs_dot
@pytest.mark.parametrize("build", [lambda: models.deep_chain(depth=16), lambda: models.residual_mlp(depth=16)],
                         ids=["deep_chain", "residual_mlp"])
@pytest.mark.parametrize("view", draw.VIEWS)
def test_pictures_of_a_34_parameter_model_keep_a_bounded_aspect_ratio(build, view, tmp_path):
    model = build()
    assert len(model.params) == 34
    report = ga.audit(model.loss, model.params)
    width, height = png_size(tmp_path / report.render(str(tmp_path / f"{view}.png"), view=view).rsplit("/", 1)[1])
    assert 1 / MAX_RATIO <= width / height <= MAX_RATIO, f"{view}: {width}x{height}"


def pytree_model(layers: int = 17):
    """An MLP whose parameters are named like a JAX pytree: the names agree at both ends."""
    x = ga.placeholder("x", (2, 4))
    h, params = x, []
    for k in range(layers):
        w = ga.parameter(f"params['transformer']['blocks_{k}']['mlp']['kernel']", (4, 4))
        b = ga.parameter(f"params['transformer']['blocks_{k}']['mlp']['bias']", (4,))
        params += [w, b]
        h = ga.tanh(h @ w + b)
    return ga.audit(ga.sum(h * h), params)


def test_every_grad_call_keeps_a_label_of_its_own():
    report = pytree_model()
    source = draw.report_dot(report, "separate", max_nodes=60)  # one box per grad call
    titles = re.findall(r'label="(grad\(cost[^"\\]*)', source)
    assert len(titles) == len(report.wrt) == 34
    assert len(set(titles)) == 34
    assert all(len(t) <= draw.LINE_LENGTH for t in titles)
    assert any("blocks_16']['mlp']['bias" in t for t in titles)  # the distinguishing part is kept


def test_labels_are_cut_in_the_middle_where_they_agree():
    labels = [f"grad(cost, [params['encoder']['layer_{k}']['attention']['query']['kernel']])" for k in range(12)]
    short = distinct_labels(labels, 40)
    assert len(set(short)) == 12 and all(len(s) <= 40 for s in short)
    assert short[11].startswith("grad(cost") and short[11].endswith("])") and "layer_11" in short[11]
    assert abbreviate("abcdefghij", 5) == "ab…ij"
    assert distinct_labels(["w1", "w2"], 40) == ["w1", "w2"]


def test_titles_say_what_a_summary_box_is():
    model = models.deep_chain(depth=6, width=4, batch=2)
    report = ga.audit(model.loss, model.params)
    assert "one box per vjp rule" in draw.report_dot(report, "merged", max_nodes=20)
    assert "one box per grad call" in draw.report_dot(report, "separate", max_nodes=20)


def test_retraced_forward_nodes_are_drawn_grey_with_their_multiplicity():
    jax = pytest.importorskip("jax")
    from graphaudit.frontends.jax import audit

    def loss(w1, w2, w3, x):
        return jax.numpy.sum(jax.numpy.tanh(jax.numpy.tanh(x @ w1) @ w2) @ w3)

    ones = jax.numpy.ones((3, 3))
    report = audit(loss, ones, ones, ones, ones, argnums=(0, 1, 2))
    for view in draw.VIEWS:
        source = draw.report_dot(report, view)
        traced = [line for line in source.splitlines() if "traced x3" in line]
        assert traced, view
        assert all(f"fillcolor={draw.FORWARD_FILL}" in line for line in traced), view
