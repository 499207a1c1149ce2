"""Semantic merging of imported PyTorch graphs: aten's forms of graphaudit's ops (mm, t, view, expand, add, ...)."""

from __future__ import annotations

import numpy as np
import pytest

import graphaudit as ga

torch = pytest.importorskip("torch")
pytest.importorskip("egglog")


def test_mm_of_a_transpose_merges_with_the_transpose_of_the_swapped_product():
    """``a.t() @ b`` and ``(b.t() @ a).t()``: one product, once aten's ops are read as graphaudit's."""
    from graphaudit.frontends.torch import audit

    params = {"a": torch.nn.Parameter(torch.randn(4, 3)), "b": torch.nn.Parameter(torch.randn(4, 5))}

    def loss(p, x):
        return (p["a"].t() @ p["b"] * x).sum() + ((p["b"].t() @ p["a"]).t() * x * x).sum()

    report = audit(loss, torch.randn(3, 5), params=params)
    separate = report.forms["separate"].outputs
    plain, semantic = ga.merge(separate), ga.merge(separate, semantic=True)
    assert semantic.nodes_after < plain.nodes_after
    assert {"transpose-transpose", "transpose-of-matmul"} <= set(semantic.saturation.matches)
    # the forward's second product (and its gradient's copies) merge into the first: a rounding-only rule
    assert semantic.saturation.rounding_merges >= 1
    products = [n for n in semantic.order if n.op == "aten.mm"]
    assert len(products) < len([n for n in plain.order if n.op == "aten.mm"])
    leaves = [n for n in ga.topological_order(separate) if n.op in ("placeholder", "parameter")]
    rng = np.random.default_rng(0)
    feed = {leaf: rng.standard_normal(leaf.shape).astype(np.float32) for leaf in leaves}
    for old, new in zip(ga.evaluate(separate, feed), ga.evaluate(semantic.outputs, feed)):
        np.testing.assert_allclose(new, old, rtol=1e-5, atol=1e-6)
