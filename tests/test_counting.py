"""Counting mode (audit(..., materialize=False)) equals the materialised audit, without building it."""

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_grad import _per_call_backward_ops
from test_properties import ALL, random_graph

import graphaudit as ga

COMPARED = ("forms", "duplicated", "joint_duplicates", "wrt", "kind")


def assert_counting_matches(cost, wrt):
    built = ga.audit(cost, wrt).to_dict(timings=False)
    counted = ga.audit(cost, wrt, materialize=False).to_dict(timings=False)
    assert counted["materialized"] is False and counted["merged_equals_joint"] is None
    for key in COMPARED:
        assert counted[key] == built[key], key
    return counted


@pytest.mark.parametrize("build", [
    lambda: ga.models.seed_mlp(),
    lambda: ga.models.seed_mlp(batch=3, widths=(9, 8, 7, 6, 5, 4, 3)),
    lambda: ga.models.deep_chain(depth=12, width=5, batch=3),
    lambda: ga.models.residual_mlp(depth=5, width=4, batch=2),
    lambda: ga.models.mlp((6, 5, 4), batch=2, activation="relu"),
], ids=["seed", "seed-7-layers", "chain-12", "residual-5", "relu-mlp"])
def test_counting_equals_the_materialised_audit_on_the_models(build):
    model = build()
    assert_counting_matches(model.loss, model.params)


def test_counting_handles_repeated_and_intermediate_wrt():
    x = ga.placeholder("x", (3, 4), "float64")
    w = ga.parameter("w", (4, 4), "float64")
    h = ga.tanh(x @ w)
    cost = ga.sum(ga.sigmoid(h @ w) * h)
    assert_counting_matches(cost, [w, h, w])


@settings(max_examples=150)
@given(st.data())
def test_counting_equals_the_materialised_audit_on_random_graphs(data):
    cost, params, _ = random_graph(data, ALL)
    assert_counting_matches(cost, params)


def test_a_thousand_layer_chain_is_counted_exactly():
    """The hand count of test_grad, summed over 2L calls, for a chain whose separate form has millions of nodes."""
    depth = 1000
    model = ga.models.deep_chain(depth=depth, width=4, batch=2)
    report = ga.audit(model.loss, model.params, materialize=False)
    layers = depth + 1
    expected = Counter()
    for layer in range(1, layers + 1):
        for kind in "wb":
            expected += _per_call_backward_ops(layers, layer, kind)
    separate = report.forms["separate"].cost
    assert separate.backward_nodes == sum(expected.values()) > 2_000_000
    assert report.forms["separate_merged"].cost.nodes == report.forms["joint"].cost.nodes
    assert report.duplicated["nodes"] == separate.nodes - report.forms["joint"].cost.nodes


def test_a_counted_report_cannot_be_drawn_or_measured():
    model = ga.models.deep_chain(depth=2, width=3, batch=2)
    report = ga.audit(model.loss, model.params, materialize=False)
    with pytest.raises(ValueError, match="materialize=True"):
        report.to_dot("merged")
    assert "counting mode" in report.to_text()
