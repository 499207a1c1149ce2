"""frontends/pytensor/scan.py: a Scan imports with its body, unrolled within the budget, else as one node.

Values are checked against PyTensor's compiled functions, FLOPs against body x steps counted
by hand, and graphaudit's merge against PyTensor's MergeOptimizer, under both treatments.
"""

from __future__ import annotations

import numpy as np
import pytest

import graphaudit as ga
from graphaudit.frontends.common.loops import Treatment

pytensor = pytest.importorskip("pytensor")
pt = pytest.importorskip("pytensor.tensor")
gp = pytest.importorskip("graphaudit.frontends.pytensor")

STEPS, WIDTH = 7, 3
RNG = np.random.default_rng(5)
W = pt.matrix("W", shape=(WIDTH, WIDTH))
H0 = pt.vector("h0", shape=(WIDTH,))
XS = pt.matrix("xs", shape=(None, WIDTH))
RHO = pt.scalar("rho")
VALUES = {"W": RNG.standard_normal((WIDTH, WIDTH)) / 2, "h0": RNG.standard_normal(WIDTH),
          "xs": RNG.standard_normal((STEPS, WIDTH)), "rho": np.array(0.6)}
SHAPES = {"xs": (STEPS, WIDTH)}
WHOLE, UNROLLED = 0, 10**6  # loop budgets: nothing fits, everything fits


def rnn():
    """h_t = tanh(W @ h_{t-1} + x_t): a sequence, a sit-sot state and a non-sequence; cost sum(h_T^2)."""
    hs = pytensor.scan(lambda x, h, w: pt.tanh(pt.dot(w, h) + x), sequences=[XS], outputs_info=[H0],
                       non_sequences=[W], return_updates=False)
    return pt.sum(hs[-1] ** 2), [W, H0]


def two_taps():
    """y_t = rho * y_{t-1} - y_{t-2} / 2 + x_t, with a nit-sot output z_t = y_t * x_t beside it (mit-sot)."""
    y0 = pt.vector("y0", shape=(2,))
    (ys, zs) = pytensor.scan(lambda x, a, b, rho: (rho * b - a / 2 + x, (rho * b - a / 2 + x) * x),
                             sequences=[XS[:, 0]], outputs_info=[{"initial": y0, "taps": [-2, -1]}, None],
                             non_sequences=[RHO], return_updates=False)
    return pt.sum(ys ** 2) + pt.sum(zs), [RHO, y0]


def _feed(imported, extra=()):
    values = {**VALUES, "y0": np.array([0.2, -0.4]), **dict(extra)}
    return {leaf: values[leaf.name] for leaf in imported.leaves}


@pytest.mark.slow
@pytest.mark.parametrize("model", [rnn, two_taps])
@pytest.mark.parametrize("budget", [WHOLE, UNROLLED])
def test_scans_and_their_gradients_evaluate_as_pytensor_does(model, budget):
    cost, wrt = model()
    outputs = [cost, *pytensor.grad(cost, wrt)]
    imported = gp.from_pytensor(outputs, shapes=SHAPES, parameters=wrt, loop_budget=budget)
    treatment = "whole, body x trip count" if budget == WHOLE else "unrolled"
    assert imported.loops and {loop.treatment for loop in imported.loops} == {treatment}
    inputs = [v for v in pytensor.graph.traversal.graph_inputs(outputs)
              if not isinstance(v, pytensor.graph.basic.Constant)]
    feed = _feed(imported)
    expected = pytensor.function(inputs, outputs, mode="FAST_COMPILE")(*(feed[imported.node(v)] for v in inputs))
    for got, want in zip(ga.evaluate(imported.outputs, feed), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_a_scan_costs_its_body_times_its_steps_unrolled_or_not():
    cost, _ = rnn()
    product = 2 * WIDTH * WIDTH  # W @ h
    body = product + WIDTH + WIDTH  # W @ h, + x, tanh
    whole = gp.from_pytensor(cost, shapes=SHAPES, loop_budget=WHOLE)
    unrolled = gp.from_pytensor(cost, shapes=SHAPES, loop_budget=UNROLLED)
    (loop,) = whole.loops
    assert (loop.length, loop.body_flops, loop.body_matmul_flops, loop.treatment) == (
        STEPS, body, product, "whole, body x trip count")
    (scan,) = [n for n in ga.topological_order(whole.outputs) if n.op == "pytensor.Scan"]
    assert ga.analysis.cost.node_flops(scan) == STEPS * body
    assert (ga.analysis.cost.node_matmul_flops(scan), ga.analysis.cost.node_bound(scan)) == (STEPS * product, None)
    for name in ("flops", "matmul_flops"):
        totals = [getattr(ga.total_cost(ga.topological_order(i.outputs)), name) for i in (whole, unrolled)]
        assert totals[0] == totals[1]
    assert unrolled.loops[0].treatment == "unrolled" and unrolled.loops[0].body == loop.body
    # the estimate of the unrolled size is what unrolling makes, give or take the rows it reads and stacks
    made = sum(not n.is_leaf for n in ga.topological_order(unrolled.outputs))
    assert whole.unrolled_nodes <= made <= whole.unrolled_nodes + 3 * STEPS


@pytest.mark.slow
@pytest.mark.parametrize("budget", [WHOLE, UNROLLED])
def test_merge_makes_every_merge_of_the_merge_optimizer_through_scans(budget):
    cost, wrt = two_taps()
    report = gp.audit(cost, wrt, shapes=SHAPES, compile_check=True, repeats=1, loop_budget=budget,
                      mode="FAST_COMPILE")
    check = report.framework["compile_check"]
    assert check["merge_optimizer_merges"]["separate"] > 0
    assert check["merges_graphaudit_missed"] == {"separate": 0, "joint": 0}
    loops = report.framework["loops"]
    assert loops["unrolled"] == (budget == UNROLLED) and loops["budget"] == budget
    # the forward Scan in both forms, and one backward Scan per grad call
    assert sum(row["separate"] for row in loops["rows"]) == 1 + len(wrt)
    assert sum(row["joint"] for row in loops["rows"]) == 1 + 1
    if budget == UNROLLED:  # inside the loops too, the separate calls rebuild what the joint call builds once
        assert report.merged_equals_joint
    assert ("Scans unrolled for the analysis" if budget else "Scans imported whole") in report.to_text()


@pytest.mark.parametrize("budget", [WHOLE, UNROLLED])
def test_the_matmul_flops_of_scans_are_the_hand_count_whole_or_unrolled(budget):
    cost, wrt = rnn()
    report = gp.audit(cost, wrt, shapes=SHAPES, loop_budget=budget, repeats=1)
    product = 2 * WIDTH * WIDTH  # a matrix-vector product: W @ h forward; per step backward, dW (an outer
    forward = STEPS * product    # product of dz and h) and dh (W^T @ dz)
    joint = forward + STEPS * 2 * product  # the first step's dh is needed: h0 is a parameter
    assert report.forms["joint"].cost.matmul_flops == joint
    if budget == WHOLE:  # each call builds the same backward Scan (both products every step): they merge
        assert report.forms["separate"].cost.matmul_flops == forward + 2 * STEPS * 2 * product
        assert report.duplicated["matmul_flops"] == STEPS * 2 * product
    else:  # W's call needs no dh at the first step, h0's call no dW
        assert report.forms["separate"].cost.matmul_flops == forward + (STEPS + STEPS - 1) * product + STEPS * product
    assert report.forms["separate_merged"].cost.matmul_flops == joint and report.merged_equals_joint
    assert report.forms["joint"].cost.bounds == ()


def test_a_while_scan_kept_whole_is_an_upper_bound():
    from pytensor.scan.utils import until

    ys = pytensor.scan(lambda h, w: (pt.dot(w, h), until(pt.sum(h) > 10)), outputs_info=[H0], non_sequences=[W],
                       n_steps=STEPS, return_updates=False)
    imported = gp.from_pytensor(pt.sum(ys[-1]))
    (scan,) = [n for n in ga.topological_order(imported.outputs) if n.op == "pytensor.Scan"]
    assert imported.loops[0].treatment == Treatment.N_STEPS
    # at most n_steps products, and the sum and comparison of the predicate
    assert (ga.analysis.cost.node_matmul_flops(scan), ga.analysis.cost.node_bound(scan)) == (STEPS * 2 * WIDTH * WIDTH, "upper")
    assert ga.analysis.cost.node_flops(scan) == STEPS * (2 * WIDTH * WIDTH + WIDTH + 1)


def test_equal_scans_kept_as_units_merge_and_different_ones_do_not():
    first, _ = rnn()
    again, _ = rnn()
    other = pytensor.scan(lambda x, h, w: pt.sigmoid(pt.dot(w, h) + x), sequences=[XS], outputs_info=[H0],
                          non_sequences=[W], return_updates=False)[-1].sum()
    imported = gp.from_pytensor([first, again, other], shapes=SHAPES, loop_budget=WHOLE)
    merged = ga.merge(imported.outputs).outputs
    assert merged[0] is merged[1] and merged[0] is not merged[2]


def test_a_scan_whose_steps_are_unknown_is_an_error():
    n = pt.lscalar("n")
    ys = pytensor.scan(lambda h: h * 2, outputs_info=[H0], n_steps=n, return_updates=False)
    with pytest.raises(ga.ShapeError, match=r"only known at run time"):
        gp.from_pytensor(ys.sum(), shapes={"n": ()})
