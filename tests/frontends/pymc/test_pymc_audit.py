"""frontends/pymc.py: a pm.Model's logp audited w.r.t. its value variables, checked against PyTensor itself.

Four models: eight schools (non-centred, from the example), a logistic regression, a
hierarchical model with group indexing, and an AR(1) written with a Scan (the example).
For each: the imported separate and joint gradients evaluate to PyTensor's own, and every
merge PyTensor's MergeOptimizer makes in the separate form graphaudit's merge makes too.
Compiled functions use FAST_COMPILE, and the compile check is left out (the MergeOptimizer
comparison is made here directly), so the file stays fast.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

import graphaudit as ga
from graphaudit.cli.options import analysis_options
from graphaudit.cli.targets import audit_target

pm = pytest.importorskip("pymc")
pytensor = pytest.importorskip("pytensor")
gp = pytest.importorskip("graphaudit.frontends.pytensor")
gpm = pytest.importorskip("graphaudit.frontends.pymc")
from pytensor.graph.traversal import applys_between, graph_inputs  # noqa: E402

N, K, GROUPS = 30, 4, 5
RNG = np.random.default_rng(11)
X = RNG.standard_normal((N, K))


def example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def logistic_regression():
    with pm.Model() as model:
        beta = pm.Normal("beta", 0.0, 1.0, shape=K)
        alpha = pm.Normal("alpha", 0.0, 1.0)
        pm.Bernoulli("y", logit_p=alpha + pm.math.dot(X, beta), observed=RNG.integers(0, 2, N))
    return model


def varying_intercepts():
    group = RNG.integers(0, GROUPS, N)
    with pm.Model() as model:
        mu_a = pm.Normal("mu_a", 0.0, 1.0)
        sigma_a = pm.HalfNormal("sigma_a", 1.0)
        a = pm.Normal("a", mu_a, sigma_a, shape=GROUPS)
        sigma = pm.HalfNormal("sigma", 1.0)
        pm.Normal("y", a[group], sigma, observed=RNG.standard_normal(N))
    return model


MODELS = {
    "eight_schools": lambda: example("pymc_eight_schools").model(),
    "logistic_regression": logistic_regression,
    "varying_intercepts": varying_intercepts,
    "ar_scan": lambda: example("pymc_ar_scan").model(steps=6),
}


@pytest.fixture(scope="module", params=list(MODELS))
def audited(request):
    model = MODELS[request.param]()
    return request.param, model, gpm.audit(model, repeats=1)


def _point(model, seed=3):
    """A point off the initial one (where many gradients vanish), by value variable name."""
    rng = np.random.default_rng(seed)
    return {name: value + rng.uniform(-0.5, 0.5, np.shape(value)) for name, value in model.initial_point().items()}


@pytest.mark.slow
def test_gradients_evaluate_to_pytensors_own_in_both_forms(audited):
    _, model, report = audited
    point = _point(model)
    logp, wrt = model.logp(), model.value_vars
    expected = pytensor.function(wrt, pytensor.grad(logp, wrt), mode="FAST_COMPILE")(*(point[v.name] for v in wrt))
    assert report.wrt == [v.name for v in wrt]
    for form in ("separate", "joint"):
        outputs = report.forms[form].outputs
        leaves = [n for n in ga.topological_order(outputs) if n.op == "parameter" and n.name in point]
        for got, want in zip(ga.evaluate(outputs, {leaf: point[leaf.name] for leaf in leaves}), expected):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


def test_merge_makes_every_merge_the_merge_optimizer_makes(audited):
    name, model, report = audited
    target = gpm.model_gradient(model)
    separate = [pytensor.grad(target.cost, [v])[0] for v in target.wrt]
    imported = gp.from_pytensor(separate, shapes=target.shapes, parameters=target.wrt)
    merged = ga.merge(imported.outputs)
    pairs = gp.merge_optimizer(separate)["merged"]
    assert pairs
    for removed, kept in pairs:
        for a, b in zip(removed.outputs, kept.outputs):
            ours = merged.mapping.get(imported.nodes.get(a)), merged.mapping.get(imported.nodes.get(b))
            assert None in ours or ours[0] is ours[1], (removed, kept)
    if not imported.loops:  # one node per Apply node: graphaudit removes at least what PyTensor removes
        ours_removed = len(ga.topological_order(imported.outputs)) - len(ga.topological_order(merged.outputs))
        roots = [v for v in graph_inputs(separate) if not isinstance(v, pytensor.graph.basic.Constant)]
        applies = len(list(applys_between(roots, separate)))
        assert ours_removed >= applies - gp.merge_optimizer(separate)["nodes"]
    assert report.merged_equals_joint


def test_pymcs_parameter_checks_cost_nothing_and_every_op_has_a_cost_rule(audited):
    _, _, report = audited
    for form in ("separate", "joint"):
        assert not report.forms[form].cost.no_cost_rule
    checks = [n for n in ga.topological_order(report.forms["joint"].outputs) if n.op == "pytensor.CheckParameterValue"]
    assert checks and all(ga.analysis.cost.node_flops(n) == 0 for n in checks)


def test_logistic_regression_matmul_flops_match_the_hand_count():
    report = gpm.audit(logistic_regression(), repeats=1)
    forward = 2 * N * K  # X @ beta
    backward = 2 * N * K  # d logp / d beta = X.T @ (y - sigmoid(...)); alpha's call needs no product
    for form in ("separate", "joint", "separate_merged"):
        assert report.forms[form].cost.matmul_flops == forward + backward
    assert report.to_dict()["duplicated"]["matmul_flops"] == 0


def test_the_scan_model_costs_body_times_steps_and_says_how_each_scan_was_treated():
    model = MODELS["ar_scan"]()
    unrolled = gpm.audit(model, repeats=1)
    whole = gpm.audit(model, repeats=1, loop_budget=0)
    assert {row["length"] for row in whole.framework["loops"]["rows"]} == {6}
    assert {row["treatment"] for row in unrolled.framework["loops"]["rows"]} == {"unrolled"}
    assert {row["treatment"] for row in whole.framework["loops"]["rows"]} == {"whole, body x trip count"}
    scans = [n for n in ga.topological_order(whole.forms["joint"].outputs) if n.op == "pytensor.Scan"]
    assert scans and all(ga.analysis.cost.node_flops(n) == n.attr("steps") * n.attr("body_flops") for n in scans)
    target = gpm.model_gradient(model)
    flops = [sum(ga.analysis.cost.node_flops(n) for n in ga.topological_order(
        gp.from_pytensor(target.cost, shapes=target.shapes, parameters=target.wrt, loop_budget=budget).outputs))
        for budget in (0, 10**6)]
    assert flops[0] == flops[1]  # the log density's loop: its body once per step, unrolled or not
    for form in ("separate", "joint"):  # a whole loop costs every output of its body; unrolled, only those used
        assert unrolled.forms[form].cost.flops <= whole.forms[form].cost.flops
    assert unrolled.merged_equals_joint
    text = whole.to_text()
    assert "PyMC" in text and "Scans imported whole" in text


def test_the_command_line_target_is_a_model():
    model = logistic_regression()
    target = gpm.CLI.recognise(model, "models.py:model")
    assert target is not None and gpm.CLI.recognise((1, 2), "x") is None
    report = audit_target(gpm.CLI, target, {**analysis_options(), "repeats": 1}, "models.py:model")
    assert report.wrt == ["beta", "alpha"]
    with pytest.raises(TypeError, match="expected a pymc.Model"):
        gpm.audit("not a model")


def test_the_examples_print_their_reports(capsys):
    assert example("pymc_eight_schools").main(["--reps", "1"]) == 0
    out = capsys.readouterr().out
    assert "wrt mu, tau_log__, theta_tilde" in out and "merge(separate) == merge(joint): yes" in out
    assert example("pymc_ar_scan").main(["--steps", "4", "--reps", "1", "--loop-budget", "0"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"  Scan +4 steps  body \w{8} \(\d+ nodes, ", out) and "whole, body x trip count" in out


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_scan_models_report_is_the_same_whatever_the_hash_seed():
    code = ("import sys; sys.path.insert(0, 'examples'); import pymc_ar_scan\n"
            "from graphaudit.frontends.pymc import audit\n"
            "for budget in (0, 10**6):\n"
            "    print(audit(pymc_ar_scan.model(steps=3), repeats=1, loop_budget=budget).to_json(timings=False))")
    outputs = [subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PYTHONHASHSEED": seed}) for seed in ("1", "2")]
    assert outputs[0].returncode == 0, outputs[0].stderr
    assert outputs[0].stdout == outputs[1].stdout and '"treatment": "unrolled"' in outputs[0].stdout
