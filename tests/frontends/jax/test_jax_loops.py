"""frontends/jax/loops.py: scan, cond and while imported with their bodies, costed as what they run.

Hand counts are formulas over the sizes and the number of steps. ``P`` names one product:
``2 * rows * contracted * columns`` FLOPs.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import ROOT

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

import graphaudit as ga  # noqa: E402
from graphaudit.analysis.cost import node_bound, node_flops, node_matmul_flops  # noqa: E402
from graphaudit.core.describe import operand_text, si  # noqa: E402
from graphaudit.frontends import jax as gj  # noqa: E402
from graphaudit.frontends.common.loops import Treatment  # noqa: E402

sys.path.insert(0, str(ROOT / "examples"))
import jax_lstm  # noqa: E402


def assert_grads(report, fn, args, argnums=0):
    """Both forms, evaluated in one jit, give jax.grad's values (the merged form is checked by the core)."""
    expected = jax.tree_util.tree_leaves(jax.grad(fn, argnums=argnums)(*args))
    feed = gj.named_leaves(fn, *args)
    for form in ("separate", "joint"):
        for value, reference in zip(gj.evaluate(report.forms[form].outputs, feed), expected):
            np.testing.assert_allclose(value, np.asarray(reference), rtol=2e-5, atol=1e-6, err_msg=form)


def treatments(report):
    return {row["treatment"] for row in report.framework["loops"]["rows"]}


def matmul_flops(outputs, backward=None):
    order = ga.topological_order(outputs)
    return sum(node_flops(n) for n in order
               if n.op == "jax.dot_general" and (backward is None or (n.call is not None) == backward))


# --- an LSTM written with lax.scan ---------------------------------------------------------------

STEPS, BATCH, INPUTS, HIDDEN, OUTPUTS = 4, 3, 5, 4, 2


@pytest.fixture(scope="module")
def lstm():
    fn, args, argnums = jax_lstm.build(STEPS, BATCH, INPUTS, HIDDEN, OUTPUTS)
    return fn, args, gj.audit(fn, *args, argnums=argnums)


def lstm_products(steps=STEPS, n=BATCH, d=INPUTS, h=HIDDEN, o=OUTPUTS):
    """One step's input and recurrent products (four gates: 4h columns), and the read-out of all steps."""
    return 2 * n * d * 4 * h, 2 * n * h * 4 * h, 2 * steps * n * h * o


def test_lstm_matmul_flops_are_the_hand_counts(lstm):
    _, _, report = lstm
    x, r, y = lstm_products()
    t = STEPS
    forward = t * (x + r) + y
    # backward: dwy and dhs from the read-out; per step dwx and dwh; dh for every step but the first
    joint_backward = 2 * y + t * x + t * r + (t - 1) * r
    assert report.wrt == ["params['b']", "params['wh']", "params['wx']", "params['wy']"]
    assert matmul_flops(report.forms["joint"].outputs, backward=False) == forward
    assert matmul_flops(report.forms["joint"].outputs, backward=True) == joint_backward
    # every trace re-traces the forward pass; b, wh and wx each need dhs and the whole dh chain
    calls, through_the_loop = 4, 3
    duplicated = (calls - 1) * forward + (through_the_loop - 1) * (y + (t - 1) * r)
    assert report.duplicated["matmul_flops"] == duplicated
    assert report.forms["separate"].cost.matmul_flops == forward + joint_backward + duplicated
    assert report.forms["separate_merged"].cost.matmul_flops == forward + joint_backward
    assert report.merged_equals_joint is True
    assert treatments(report) == {Treatment.UNROLLED}


@pytest.mark.slow
def test_lstm_unrolled_evaluates_to_jax_grad(lstm):
    fn, args, report = lstm
    assert_grads(report, fn, args)


def test_lstm_report_says_how_each_loop_was_treated(lstm):
    _, _, report = lstm
    loops = report.framework["loops"]
    assert loops["unrolled"] is True and loops["unrolled_nodes"] <= loops["budget"] == 1_000_000
    rows = loops["rows"]
    # a forward scan in every trace, a backward scan in each trace whose parameter is inside the loop
    calls, through_the_loop = 4, 3
    assert sum(row["separate"] for row in rows) == calls + through_the_loop
    assert sum(row["joint"] for row in rows) == 2
    assert all(row["primitive"] == "scan" and row["length"] == STEPS for row in rows)
    text = report.to_text()
    assert "loops: scans unrolled for the analysis, step by step" in text
    assert f"  scan       {STEPS} steps  body {rows[0]['body'][:8]}  unrolled  (met " in text


def test_lstm_unrolled_by_jax_is_the_graph_the_importer_unrolls(lstm):
    """``lax.scan(..., unroll=True)`` (the remedy for JAX, benchmarks/bench_remedy_jax.py) is still a scan in
    the jaxpr (JAX unrolls it when lowering): the same gradients, and forms that cost what the scan's do."""
    fn, args, report = lstm

    def unrolled(params, xs, ys):
        return jax_lstm.lstm_loss(params, xs, ys, unroll=True)

    flat = gj.audit(unrolled, *args)
    assert treatments(flat) == {Treatment.UNROLLED} and flat.merged_equals_joint
    assert_grads(flat, fn, args)
    for form in ("separate", "joint", "separate_merged"):
        got, want = flat.forms[form].cost, report.forms[form].cost
        assert (got.flops, got.matmul_flops) == (want.flops, want.matmul_flops), form


@pytest.mark.slow
def test_lstm_whole_when_over_the_budget_costs_body_times_steps():
    fn, args, argnums = jax_lstm.build(3, 2, 3, 2, 2)
    report = gj.audit(fn, *args, argnums=argnums, loop_budget=0, xla=True)
    assert treatments(report) == {Treatment.WHOLE} and report.framework["loops"]["unrolled"] is False
    scans = [n for n in ga.topological_order(report.forms["joint"].outputs) if n.op == "jax.scan"]
    for scan in scans:
        body = gj.from_jaxpr(scan.attr("jaxpr").value, unroll=False)
        assert node_flops(scan) == scan.attr("length") * sum(node_flops(n) for n in ga.topological_order(body))
    # each separate trace runs its own backward scan: as whole units they cannot merge, and XLA keeps them too
    compiled = report.framework["compile_check"]["rows"][0]
    assert report.merged_equals_joint is False and compiled["separate"]["dots"] > compiled["joint"]["dots"]
    assert {operand_text(scan) for scan in scans} == {f"scan {scans[0].attr('length')} steps"}
    text = report.to_text()
    assert "scans imported whole, bodies compared by digest" in text
    assert_grads(report, fn, args)
    (value,) = ga.evaluate(report.forms["joint"].outputs[:1], gj.named_leaves(fn, *args))  # the numpy path too
    np.testing.assert_allclose(value, np.asarray(jax.grad(fn)(*args)["b"]), rtol=2e-5, atol=1e-6)


# --- matmul FLOPs of loops kept whole --------------------------------------------------------------

T, B, D, H = 5, 3, 4, 6  # steps, batch, inputs, hidden units


def rnn_loss(w, u, h0, xs):
    """h_t = tanh(h_(t-1) @ w + x_t @ u) over T steps; the cost is sum(h_T^2)."""
    h, _ = jax.lax.scan(lambda h, x: (jnp.tanh(h @ w + x @ u), None), h0, xs)
    return jnp.sum(h ** 2)


def rnn_args():
    rng = np.random.default_rng(9)
    return (rng.standard_normal((H, H), dtype=np.float32) / 3, rng.standard_normal((D, H), dtype=np.float32) / 2,
            rng.standard_normal((B, H), dtype=np.float32), rng.standard_normal((T, B, D), dtype=np.float32))


@pytest.mark.slow
def test_a_scan_kept_whole_counts_its_products_as_body_times_steps():
    args = rnn_args()
    whole = gj.audit(rnn_loss, *args, argnums=(0, 1), loop_budget=1)
    unrolled = gj.audit(rnn_loss, *args, argnums=(0, 1))
    assert treatments(whole) == {Treatment.WHOLE} and treatments(unrolled) == {Treatment.UNROLLED}
    recurrent, read_in = 2 * B * H * H, 2 * B * D * H  # h @ w, x @ u (and their transposes: dw, dh; du)
    forward = T * (recurrent + read_in)
    # whole, the backward body runs dw, du and dh every step; unrolled, the first step's dh feeds nothing
    assert whole.forms["joint"].cost.matmul_flops == forward + T * (recurrent + read_in + recurrent)
    assert unrolled.forms["joint"].cost.matmul_flops == forward + T * (recurrent + read_in) + (T - 1) * recurrent
    # each trace keeps its own forward scan (it saves what its parameter's backward reads) and its backward:
    # w's runs dw and dh, u's runs du and dh
    assert whole.forms["separate"].cost.matmul_flops == 2 * forward + T * 2 * recurrent + T * (read_in + recurrent)
    scans = [n for n in ga.topological_order(whole.forms["separate"].outputs) if n.op == "jax.scan"]
    for scan in scans:
        body = ga.topological_order(gj.from_jaxpr(scan.attr("jaxpr").value, unroll=False))
        assert node_matmul_flops(scan) == T * sum(node_flops(n) for n in body if n.op == "jax.dot_general")
        assert node_bound(scan) is None
    assert whole.forms["joint"].cost.bounds == () and "<=" not in whole.to_text()
    assert_grads(whole, rnn_loss, args, argnums=(0, 1))


def test_a_scan_over_a_cond_on_data_is_an_upper_bound_too():
    def loss(w, xs):
        def step(h, x):
            return jax.lax.cond(jnp.sum(x) > 0, lambda h: jnp.tanh(h @ w), lambda h: h, h) + x, None

        return jnp.sum(jax.lax.scan(step, jnp.zeros((B, H), jnp.float32), xs)[0] ** 2)

    rng = np.random.default_rng(10)
    args = (rng.standard_normal((H, H), dtype=np.float32), rng.standard_normal((T, B, H), dtype=np.float32))
    (scan,) = [n for n in ga.topological_order(gj.from_jaxpr(jax.make_jaxpr(loss)(*args), unroll=False))
               if n.op == "jax.scan"]
    # every step at most the branch with the product
    assert (node_matmul_flops(scan), node_bound(scan)) == (T * 2 * B * H * H, "upper")


def test_a_cond_bounds_its_flops_and_its_matmul_flops_each_by_its_own_costliest_branch():
    n, d, k = 3, 4, 10
    assert k * n * d > 2 * n * d * d  # the tanh branch costs more FLOPs, the product branch more matmul FLOPs

    def branches(w, h):
        def tanhs(h):
            for _ in range(k):
                h = jnp.tanh(h)
            return h

        return jax.lax.cond(jnp.sum(h) > 0, lambda h: h @ w, tanhs, h)

    closed = jax.make_jaxpr(branches)(jnp.ones((d, d), jnp.float32), jnp.ones((n, d), jnp.float32))
    (cond,) = [n for n in ga.topological_order(gj.from_jaxpr(closed)) if n.op == "jax.cond"]
    assert (node_flops(cond), node_matmul_flops(cond), node_bound(cond)) == (k * n * d, 2 * n * d * d, "upper")


# --- fori_loop and cond ------------------------------------------------------------------------------


@pytest.mark.slow
def test_fori_loop_with_a_cond_on_the_counter_takes_the_known_branch():
    n, h, o, steps = 3, 4, 2, 5

    def loss(w, v, x):
        def body(i, a):
            return jax.lax.cond(i % 2 == 0, lambda a: jnp.tanh(a @ w), lambda a: a, a)

        return jnp.sum((jax.lax.fori_loop(0, steps, body, x) @ v) ** 2)

    rng = np.random.default_rng(6)
    args = (rng.standard_normal((h, h), dtype=np.float32), rng.standard_normal((h, o), dtype=np.float32),
            rng.standard_normal((n, h), dtype=np.float32))
    report = gj.audit(loss, *args, argnums=(0, 1))
    p, p_out = 2 * n * h * h, 2 * n * h * o
    taken = (steps + 1) // 2  # the even steps multiply by w
    forward = taken * p + p_out
    # backward: dv, then dh through the read-out, dw at each taken step, dh at each taken step but the first
    joint_backward = 2 * p_out + taken * p + (taken - 1) * p
    assert matmul_flops(report.forms["joint"].outputs, backward=False) == forward
    assert matmul_flops(report.forms["joint"].outputs, backward=True) == joint_backward
    assert report.duplicated["matmul_flops"] == forward  # v's call needs no loop: only the forward is re-traced
    assert treatments(report) == {Treatment.UNROLLED, Treatment.TAKEN_BRANCH}
    assert report.merged_equals_joint is True
    assert_grads(report, loss, args, argnums=(0, 1))


@pytest.mark.slow
def test_cond_on_data_is_costed_at_its_costliest_branch_an_upper_bound():
    n, d = 3, 4
    p = 2 * n * d * d

    def loss(w1, w2, w3, x):
        h = jax.lax.cond(jnp.sum(x) > 0, lambda h: jnp.tanh(h @ w1) @ w2, lambda h: h @ w3, x)
        return jnp.sum(h ** 2)

    rng = np.random.default_rng(7)
    args = (*(rng.standard_normal((d, d), dtype=np.float32) for _ in range(3)),
            rng.standard_normal((n, d), dtype=np.float32))
    report = gj.audit(loss, *args, argnums=(0, 1, 2), xla=True, loop_budget=1)
    conds = {n.call is not None: n for n in ga.topological_order(report.forms["joint"].outputs) if n.op == "jax.cond"}
    # forward, the tanh branch: two products, tanh and the 1 - tanh its derivative keeps
    assert node_flops(conds[False]) == 2 * p + 2 * n * d
    assert node_matmul_flops(conds[False]) == 2 * p
    # backward, the same branch: dw2, dh through w2, dw1, and the two multiplies and sum of tanh's derivative
    assert node_flops(conds[True]) == 3 * p + 3 * n * d
    assert node_matmul_flops(conds[True]) == 3 * p
    joint = report.forms["joint"].cost
    assert joint.matmul_flops == 2 * p + 3 * p and dict(joint.bounds) == {"upper": 2}
    assert treatments(report) == {Treatment.COSTLIEST_BRANCH}
    text = report.to_text()
    joint_row = next(line for line in text.splitlines() if line.startswith("joint "))
    assert f"<={si(joint.flops, 'FLOP')}" in joint_row and f"<={si(joint.matmul_flops, 'FLOP')}" in joint_row
    assert "FLOPs marked <= are an upper bound: loops costed without knowing their branch or trip count" in text
    assert ("the FLOPs and matmul FLOPs above are upper bounds: conds costed at their costliest branch "
            "(matmul FLOPs: the branch with the most)") in text
    # each separate trace keeps the branches its parameter needs: different conds, and XLA keeps them apart too
    compiled = report.framework["compile_check"]["rows"][0]
    assert report.merged_equals_joint is False and compiled["separate"]["dots"] > compiled["joint"]["dots"]
    assert_grads(report, loss, args, argnums=(0, 1, 2))


def test_while_is_costed_for_one_iteration_a_lower_bound():
    def loss(w, x):
        scale = jax.lax.while_loop(lambda s: s < 100.0, lambda s: s * 2.0, jnp.sum(x * x) + 1.0)
        return jnp.sum(jnp.tanh(x @ w)) * scale

    rng = np.random.default_rng(8)
    args = (rng.standard_normal((4, 3), dtype=np.float32), rng.standard_normal((2, 4), dtype=np.float32))
    report = gj.audit(loss, *args)
    (loop,) = [n for n in ga.topological_order(report.forms["joint"].outputs) if n.op == "jax.while"]
    assert node_flops(loop) == 1 + 1  # the body's multiply and the predicate's comparison, once
    assert node_matmul_flops(loop) == 0 and node_bound(loop) == "lower"
    assert treatments(report) == {Treatment.ONE_ITERATION}
    assert dict(report.forms["joint"].cost.bounds) == {"lower": 1}  # the while, forward only
    text = report.to_text()
    assert "lower bounds: while loops costed for one iteration" in text and "FLOPs marked >= are a lower bound" in text
    assert_grads(report, loss, args)


def test_unrolled_size_counts_steps():
    closed = jax.make_jaxpr(lambda x: jax.lax.scan(lambda c, v: (c + v, c * v), 0.0, x))(jnp.ones(7))
    body = len(closed.jaxpr.eqns[0].params["jaxpr"].jaxpr.eqns)
    # per step: the body's equations, a slice of the one scanned input and a stacking of the one result
    assert gj.unrolled_size(closed) == 7 * (body + 1 + 1)


def test_the_example_runs_small(capsys):
    assert jax_lstm.main(["--steps", "3", "--batch", "2", "--inputs", "3", "--hidden", "2", "--no-xla"]) == 0
    out = capsys.readouterr().out
    assert "LSTM in JAX (lax.scan): 3 steps, batch 2, 3 inputs, 2 hidden units, 4 parameters" in out
    assert "merge(separate) == merge(joint): yes" in out and "scan       3 steps" in out
