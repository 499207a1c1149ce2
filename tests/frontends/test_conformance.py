"""What every front-end owes, checked alike for each installed one: JAX, PyTensor, PyMC, PyTorch, the toy
(tests/frontends/toy/) and graphaudit's own nodes, each auditing one small program from the table below.

Each front-end's example target is recognised first by it in the command line's order and audited
through its CLI declaration; and on the small program, (a) the imported gradients of both forms evaluate, with graphaudit's evaluator, to the framework's own;
(b) the merged forms evaluate to the originals, bit for bit; (c) ``to_dict()`` survives JSON and matches
its schema, the framework's section too; (d) each front-end takes its own target and returns None for
every other's; (e) what cannot be audited is refused in one line: the options a front-end does not
honour and those the counted separate form cannot serve (on the command line, before the front-end is
called), and bad options to its own ``audit``. A front-end's own test files check what is its alone.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest
from conftest import ROOT, central_difference, np_mlp_loss

import graphaudit as ga
from graphaudit.analysis.schema import ReportData, mismatches
from graphaudit.cli.options import ANALYSIS_OPTIONS, analysis_options, check_options
from graphaudit.cli.targets import audit_target
from graphaudit.cli.usage import UsageError
from graphaudit.core.ops import OPS
from graphaudit.frontends import cli_frontends
from graphaudit.frontends.common import AuditOptions

EXAMPLES = ROOT / "examples"
sys.path.insert(0, str(EXAMPLES))


class Case(NamedTuple):
    """One front-end's small program, audited: the report, a feed of its leaves by name, the framework's
    own gradients (in ``report.wrt`` order) and tolerance, what a target function returns for it, its
    ``CliFrontend``, and a call of its ``audit`` that must be refused with ``refusal`` (a regex)."""

    report: ga.Report
    feed: dict[str, np.ndarray]
    expected: list[np.ndarray]
    rtol: float
    atol: float
    target: Any
    cli: Any
    refused: Callable[[], Any]
    refusal: str


def graphaudit_nodes() -> Case:
    from graphaudit.frontends import nodes

    model = ga.models.mlp((4, 5, 3), 6, dtype="float64")
    given = model.make_feed()
    feed = {node.name: value for node, value in given.items()}
    arrays = [given[p] for p in model.params]

    def loss(*params):
        return np_mlp_loss(feed["x"], feed["y"], params)

    expected = [central_difference(loss, arrays, i) for i in range(len(arrays))]
    return Case(ga.audit(model.loss, model.params), feed, expected, 1e-6, 1e-8, (model.loss, model.params),
                nodes.CLI, lambda: ga.audit(model.loss, model.params, materialize=False, measure=True, feed=given),
                r"^audit: measure=True needs the separate form built; drop materialize=False$")


def jax_case() -> Case:
    jax = pytest.importorskip("jax")
    gj = importlib.import_module("graphaudit.frontends.jax")
    import jax_seed_mlp

    fn, args, argnums = jax_seed_mlp.build(batch=5, widths=(7, 6, 5, 4, 3), concrete=True)
    expected = [np.asarray(g) for g in jax.grad(fn, argnums=argnums)(*args)]
    return Case(gj.audit(fn, *args, argnums=argnums), gj.named_leaves(fn, *args), expected, 1e-5, 1e-7,
                (fn, args, argnums), gj.CLI, lambda: gj.audit(fn, *args, argnums=argnums, repeats=0),
                r"^audit: repeats must be >= 1, got 0$")


def torch_case() -> Case:
    torch = pytest.importorskip("torch")
    gt = importlib.import_module("graphaudit.frontends.torch")
    import torch_seed_mlp

    loss_fn, net, x, y = torch_seed_mlp.build((6, 5, 4, 3, 2), 3, dtype=torch.float64)
    expected = [g.numpy() for g in torch.autograd.grad(loss_fn(net, x, y), list(net.parameters()))]
    feed = {name: p.detach().numpy() for name, p in net.named_parameters()} | {"x": x.numpy(), "y": y.numpy()}
    return Case(gt.audit(loss_fn, x, y, params=net), feed, expected, 1e-10, 1e-12, (loss_fn, net, x, y), gt.CLI,
                lambda: gt.audit(loss_fn, x, y, params=net, materialize=False, measure=True),
                r"^audit: measure=True needs the separate form built; drop materialize=False$")


def pytensor_case() -> Case:
    pytensor = pytest.importorskip("pytensor")
    pt = pytest.importorskip("pytensor.tensor")
    gp = importlib.import_module("graphaudit.frontends.pytensor")
    rng = np.random.default_rng(0)
    x, y = pt.matrix("x", shape=(6, 4), dtype="float64"), pt.matrix("y", shape=(6, 3), dtype="float64")
    shapes = {"W1": (4, 5), "b1": (5,), "W2": (5, 3), "b2": (3,)}
    params = [pytensor.shared(rng.standard_normal(shape), name=name) for name, shape in shapes.items()]
    w1, b1, w2, b2 = params
    loss = ((pt.tanh(x @ w1 + b1) @ w2 + b2 - y) ** 2).sum()
    data = {"x": rng.standard_normal((6, 4)), "y": rng.standard_normal((6, 3))}
    expected = pytensor.function([x, y], pytensor.grad(loss, params))(data["x"], data["y"])
    feed = {p.name: p.get_value() for p in params} | data
    return Case(gp.audit(loss, params, repeats=1), feed, expected, 1e-12, 1e-13, (loss, params), gp.CLI,
                lambda: gp.audit(loss, params, repeats=0), r"^audit: repeats must be >= 1, got 0$")


def pymc_case() -> Case:
    pm = pytest.importorskip("pymc")
    pytensor = pytest.importorskip("pytensor")
    gpm = importlib.import_module("graphaudit.frontends.pymc")
    with pm.Model() as model:
        mu = pm.Normal("mu", 0.0, 1.0, shape=2)
        sigma = pm.HalfNormal("sigma", 1.0)
        pm.Normal("y", mu.sum() + mu[0] * mu[1], sigma, observed=[0.3, -1.2, 0.8, 2.0])
    values = model.value_vars
    feed = {"mu": np.array([0.4, -0.7]), "sigma_log__": np.array(0.3)}
    gradients = pytensor.function(values, pytensor.grad(model.logp(), values))
    expected = gradients(*(feed[v.name] for v in values))
    return Case(gpm.audit(model, repeats=1), feed, expected, 1e-12, 1e-13, model, gpm.CLI,
                lambda: gpm.audit(model, loop_budget=-1), r"^audit: loop_budget must be >= 0, got -1$")


def toy_case() -> Case:
    from frontends.toy import toy_frontend, toyframework
    from frontends.toy.test_toy import mlp

    loss, params, inputs, arrays = mlp()
    expected = [g.value for g in toyframework.grad(loss, params)]
    return Case(toy_frontend.audit(loss, params, inputs), arrays, expected, 1e-12, 1e-13, (loss, params, inputs),
                toy_frontend.CLI, lambda: toy_frontend.audit(loss, params, inputs, materialize=False, semantic=True),
                r"^audit: semantic=True needs the separate form built; drop materialize=False$")


# by the name each front-end's CliFrontend gives itself
CASES = {"graphaudit graph": graphaudit_nodes, "JAX": jax_case, "PyTorch": torch_case, "PyTensor": pytensor_case,
         "PyMC": pymc_case, "Toy": toy_case}
FAST = ("graphaudit graph", "Toy")  # the others import a framework and trace: over a second each
EACH = [pytest.param(name, marks=() if name in FAST else pytest.mark.slow) for name in CASES]


@pytest.fixture(scope="module", autouse=True)
def _registry_kept():
    """The op registry as it was, afterwards: the front-ends register their frameworks' ops."""
    saved = dict(OPS)
    yield
    OPS.clear()
    OPS.update(saved)


@pytest.fixture(scope="module")
def audited():
    """Each case, made once (a framework that is not installed: its case is skipped)."""
    made: dict[str, Case] = {}

    def case(name: str) -> Case:
        if name not in made:
            made[name] = CASES[name]()
        return made[name]

    return case


@pytest.mark.parametrize("name", EACH)
def test_a_gradients_of_both_forms_are_the_frameworks_own(audited, name):
    case = audited(name)
    assert len(case.report.wrt) == len(case.expected)
    for form in ("separate", "joint"):
        values = ga.evaluate(case.report.forms[form].outputs, case.feed)
        for wrt, got, want in zip(case.report.wrt, values, case.expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=case.rtol, atol=case.atol, err_msg=f"{name} {form} {wrt}")


@pytest.mark.parametrize("name", EACH)
def test_b_merged_forms_evaluate_to_the_originals_bit_for_bit(audited, name):
    forms = audited(name).report.forms
    assert audited(name).report.merged_equals_joint
    for original, merged in (("separate", "separate_merged"), ("joint", "joint_merged")):
        feed = audited(name).feed
        before, after = ga.evaluate(forms[original].outputs, feed), ga.evaluate(forms[merged].outputs, feed)
        for got, want in zip(after, before, strict=True):
            np.testing.assert_array_equal(got, want, err_msg=f"{name} {merged}")


@pytest.mark.parametrize("name", EACH)
def test_c_to_dict_survives_json_and_matches_its_schema(audited, name):
    report = audited(name).report
    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data == json.loads(report.to_json())
    assert mismatches(data, ReportData, name) == []
    if report.framework is not None:
        assert mismatches(data["framework"], type(report.framework).schema, f"{name} framework") == []


@pytest.mark.slow
def test_d_each_front_end_takes_its_own_target_and_no_others(audited):
    """Every front-end installed, on every case's target. (The command line asks them in turn, built-ins first,
    so an overlap would go to the one asked first: (loss_fn, model, x) is also JAX's (fn, args, argnums) shape.)"""
    cases = {}
    for name in CASES:
        try:
            cases[name] = audited(name)
        except pytest.skip.Exception:
            continue
    for name, case in cases.items():
        assert case.cli.recognise(case.target, f"{name}.py:target") is not None, name
        for other in cases.values():
            if other.cli is not case.cli:
                assert other.cli.recognise(case.target, f"{name}.py:target") is None, (other.cli.name, name)
        assert case.cli.name == name


def test_every_front_end_of_graphaudit_has_a_case():
    assert {frontend.name for frontend in cli_frontends()} <= set(CASES)


@pytest.mark.parametrize("name", EACH)
def test_e_what_cannot_be_audited_is_refused_in_one_line(audited, name):
    """On the command line, before the front-end's audit is called; and by the front-end's own ``audit``."""
    case = audited(name)
    cli, target = case.cli, f"{name.replace(' ', '_')}.py:target"
    for option in ANALYSIS_OPTIONS:
        if option.name not in cli.options:
            with pytest.raises(UsageError, match=rf"^{option.flag} applies to .* targets only; "
                                                 rf"{re.escape(target)} is a {cli.name} target$"):
                check_options(cli, {**analysis_options(), option.name: True}, target)

    def never(*args):
        raise AssertionError(f"{name}: audited with options it should have refused")

    refusing = dataclasses.replace(cli, audit=never)
    needs_built = [option for option in ANALYSIS_OPTIONS if option.name in cli.options
                   and option.field in ("measure", "semantic", "compile_check")]
    for option in needs_built if "count" in cli.options else []:  # what the counted separate form cannot serve
        options = {**analysis_options(), "count": True, option.name: True}
        with pytest.raises(UsageError, match=rf"^{option.field}=True needs the separate form built; "
                                             r"drop materialize=False$"):
            audit_target(refusing, cli.recognise(case.target, target), options, target)
    with pytest.raises(ValueError, match=case.refusal):
        case.refused()


# --- each front-end's example target, through the command line's declarations ---------------------------


def example(name: str, function: str = "target"):
    spec = importlib.util.spec_from_file_location(f"conformance_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, function)()


def toy_target():
    from frontends.toy.test_toy import mlp

    loss, params, inputs, _ = mlp()
    return loss, params, inputs


def own_graph():
    model = ga.models.deep_chain(depth=3, width=4, batch=2)
    return model.loss, model.params


EXAMPLE_TARGETS = {  # front-end name -> (the module it needs, a target of it)
    "PyTorch": ("torch", lambda: example("torch_seed_mlp")),
    "JAX": ("jax", lambda: example("jax_seed_mlp")),
    "PyMC": ("pymc", lambda: example("pymc_eight_schools", "model")),
    "PyTensor": ("pytensor", lambda: example("pytensor_seed", "target")),
    "graphaudit graph": ("numpy", own_graph),
    "Toy": ("numpy", toy_target),
}


def frontends_with_the_toy() -> list:
    from frontends.toy import toy_frontend

    frontends = cli_frontends()
    return [*frontends[:-1], toy_frontend.CLI, frontends[-1]]


@pytest.mark.parametrize("name", [pytest.param(name, marks=() if name in FAST else pytest.mark.slow)
                                  for name in EXAMPLE_TARGETS])
def test_a_front_end_recognises_its_target_audits_it_and_reports_in_the_one_schema(name, monkeypatch):
    module, build = EXAMPLE_TARGETS[name]
    pytest.importorskip(module)
    monkeypatch.syspath_prepend(str(EXAMPLES))  # the examples import their neighbours
    target = build()
    recognised = [(frontend, t) for frontend in frontends_with_the_toy()
                  if (t := frontend.recognise(target, f"{name}.py:target")) is not None]
    frontend, parsed = recognised[0]  # the command line takes the first that recognises it
    assert frontend.name == name
    report = frontend.audit(parsed, AuditOptions(repeats=1), {})
    assert report.merged_equals_joint is True and report.duplicated["nodes"] > 0
    data = report.to_dict(timings=False)
    assert json.loads(json.dumps(data)) == data
    assert mismatches(data, ReportData, name) == []


def test_options_the_separate_form_needs_are_refused_in_one_line_for_every_front_end():
    for option in ("measure", "compile_check", "semantic"):
        with pytest.raises(ValueError, match=rf"^audit: {option}=True needs the separate form built; drop "
                                             "materialize=False$"):
            AuditOptions(materialize=False, **{option: True})
    with pytest.raises(ValueError, match=r"^audit: repeats must be >= 1, got 0$"):
        AuditOptions(repeats=0)
