"""Semantic merging: no false merge on random graphs, egglog agrees with value numbering, reports and limits."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st
from test_properties import ALL, random_graph

import graphaudit as ga
from graphaudit.analysis.semantic import Limits, semantic_classes

pytest.importorskip("egglog")

# Builders that write one value in another way, so that the random graphs give the rules work.
VARIANTS = {
    "add, commuted": (2, lambda a, b, d: b + a),
    "mul, commuted": (2, lambda a, b, d: b * a),
    "neg of neg": (1, lambda a, d: -(-a)),
    "sub as add": (2, lambda a, b, d: a + -b),
    "both subtractions": (2, lambda a, b, d: (a - b) * -(b - a)),  # a rule that swapped a - b would merge them
    "times one": (1, lambda a, d: a * ga.constant(np.ones((), a.dtype))),
    "plus zero": (1, lambda a, d: a + ga.constant(np.zeros(d.draw(st.sampled_from([(), (3, 4)]))))),
    "transpose twice": (1, lambda a, d: ga.transpose(ga.transpose(a))),
    "matmul, transposed": (2, lambda a, b, d: ga.transpose(ga.transpose(b) @ ga.transpose(a))),
    "sigmoid through exp": (1, lambda a, d: 1.0 / (1.0 + ga.exp(-a))),
}


def values_by_position(result, feed):
    return ga.evaluate(result.source, feed)


@settings(max_examples=60)
@given(st.data())
def test_semantic_merges_never_merge_unequal_values(data):
    """Every node equals its class's first node: bit for bit by the exact rules, to rounding by all of them."""
    cost, params, feed = random_graph(data, {**ALL, **VARIANTS})
    outputs = [cost, *ga.grad(cost, params)]
    result = ga.merge(outputs, semantic=True)
    values = values_by_position(result, feed)
    for p, (e, c) in enumerate(zip(result.exact.tolist(), result.canonical.tolist())):
        assert values[p].dtype == values[e].dtype == values[c].dtype
        np.testing.assert_array_equal(values[p], values[e])
        np.testing.assert_allclose(values[p], values[c], rtol=1e-9, atol=1e-12)
    before, after = ga.evaluate(outputs, feed), ga.evaluate(result.outputs, feed)
    for old, new in zip(before, after):
        if result.saturation.rounding_merges:
            np.testing.assert_allclose(new, old, rtol=1e-9, atol=1e-12)
        else:
            assert new.tobytes() == old.tobytes()


@settings(max_examples=60)
@given(st.data())
def test_egglog_without_rules_finds_value_numberings_classes(data):
    """Loaded node by node (no value numbering first), egglog's congruence closure gives merge's classes."""
    cost, params, _ = random_graph(data, {**ALL, **VARIANTS})
    result = ga.merge([cost, *ga.grad(cost, params)])
    every_op = np.where(result.leaf, result.canonical, np.arange(len(result.source)))  # leaves: merge's identity
    _, classes, _ = semantic_classes(result.source, every_op, result.leaf, rules=())
    assert classes.tolist() == result.canonical.tolist()


@pytest.mark.parametrize("model", [ga.models.seed_mlp(batch=4, widths=(12, 10, 8, 6, 3)), ga.models.deep_chain(8)],
                         ids=["seed mlp", "deep chain"])
def test_semantic_finds_at_least_what_value_numbering_finds(model):
    separate = ga.separate_grads(model.loss, model.params)
    syntactic, semantic = ga.merge(separate), ga.merge(separate, semantic=True)
    assert semantic.nodes_after <= syntactic.nodes_after
    # every syntactic class lies inside one semantic class
    assert (semantic.canonical[syntactic.canonical] == semantic.canonical).all()
    feed = model.make_feed()
    before, after = ga.evaluate(separate, feed), ga.evaluate(semantic.outputs, feed)
    assert [a.tobytes() for a in before] == [b.tobytes() for b in after]


def two_ways():
    """A graph that computes x @ w twice, once as (w.T @ x.T).T, and sigmoid once through exp."""
    x, w = ga.placeholder("x", (8, 6)), ga.parameter("w", (6, 5))
    h = x @ w
    again = ga.transpose(ga.transpose(w) @ ga.transpose(x))
    s = ga.sigmoid(h)
    s_again = 1.0 / (1.0 + ga.exp(-again))
    return ga.sum(s * s_again), [w]


def test_audit_graph_reports_syntactic_and_semantic_work_apart():
    cost, _ = two_ways()
    plain, report = ga.audit_graph(cost), ga.audit_graph(cost, semantic=True)
    assert report.duplicated == plain.duplicated  # the syntactic figure is unchanged
    extra = report.semantic["extra"]
    # by hand: the second matmul (2*8*6*5 FLOPs), its two input transposes and its output transpose,
    # and exp(-h), 1 + that and the division (8*5 each) are gone; neg too
    assert extra["matmul_flops"] == 2 * 8 * 6 * 5
    assert extra["by_op"]["matmul"]["nodes"] == 1
    assert extra["by_op"]["transpose"]["nodes"] == 3
    assert {op: e["nodes"] for op, e in extra["by_op"].items() if op not in ("matmul", "transpose")} == {
        "neg": 1, "exp": 1, "add": 1, "div": 1}
    assert extra["flops"] == 2 * 8 * 6 * 5 + 4 * 8 * 5
    assert report.semantic["semantic_nodes"] == report.semantic["syntactic_classes"] - extra["nodes"]
    assert set(report.semantic["rounding_rules_matched"]) == {"transpose-of-matmul", "sigmoid-through-exp"}
    assert report.semantic["rounding_merges"] >= 1
    text = report.to_text()
    assert "semantic duplicates" in text and "up to float rounding" in text and "saturated after" in text
    assert "semantic" not in plain.to_dict() and "semantic duplicates" not in plain.to_text()


def test_audit_reports_semantic_work_of_the_separate_form():
    cost, wrt = two_ways()
    report = ga.audit(cost, wrt, semantic=True)
    assert report.semantic["extra"]["matmul_flops"] == 2 * 8 * 6 * 5
    assert report.duplicated == ga.audit(cost, wrt).duplicated
    with pytest.raises(ValueError, match="semantic=True needs the separate form built"):
        ga.audit(cost, wrt, semantic=True, materialize=False)


def test_a_limit_that_stops_saturation_is_reported():
    x = ga.placeholder("x", (3,))
    terms = [ga.exp(x * float(i)) for i in range(1, 9)]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    result = ga.merge([total], semantic=True, associativity=True, limits=Limits(iterations=3))
    assert result.saturation.stopped == "iteration limit" and result.saturation.iterations == 3
    report = ga.audit_graph(total, semantic=True)
    assert report.semantic["saturation"]["stopped"] == "saturated"
    assert not report.semantic["saturation"]["associativity"]


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_json_is_the_same_whatever_the_hash_seed():
    script = ("import graphaudit as ga, json, sys; sys.path.insert(0, 'tests'); from test_semantic import two_ways; "
              "c, w = two_ways(); print(json.dumps(ga.audit(c, w, semantic=True).to_dict(timings=False)))")
    outputs = []
    for seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                             check=True)
        outputs.append(json.loads(run.stdout))
    assert outputs[0] == outputs[1]
    assert outputs[0]["semantic"]["saturation"]["load_seconds"] is None


def test_command_line_semantic(capsys):
    from graphaudit.cli import main

    assert main(["audit", "deep_chain", "--depth", "2", "--semantic"]) == 0
    assert "semantic duplicates (equality saturation" in capsys.readouterr().out


def test_without_egglog_the_message_says_what_to_install(monkeypatch):
    import graphaudit.analysis.semantic as semantic

    def missing(name):
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(semantic.importlib, "import_module", missing)
    with pytest.raises(ImportError, match=r"graphaudit\[egraph\]"):
        ga.merge([ga.placeholder("x", (2,)) + 1.0], semantic=True)


def test_pictures_mark_semantic_duplicates_apart():
    cost, wrt = two_ways()
    report = ga.audit(cost, wrt, semantic=True)
    assert len(report.semantic_duplicates) == report.semantic["extra"]["nodes"]
    for view in ("separate", "merged"):
        dot = report.to_dot(view)
        assert f"{report.semantic['extra']['nodes']} more semantic (orange)" in dot
        assert dot.count('fillcolor="#f5b041"') >= report.semantic["extra"]["nodes"]
        assert "semantic duplicate: an equal value written differently" in dot
        assert "semantic" not in ga.audit(cost, wrt).to_dot(view)
