"""The analysis options: each reaches the front-ends that honour it, and is refused in one line by the others."""

from __future__ import annotations

import json

import pytest

from cli.helpers import ROOT, assert_one_line_error, example_targets, run
from graphaudit.cli import main

def test_audit_commutative_flag(capsys):
    code, out, err = run(["audit", "deep_chain", "--depth", 2, "--json", "-", "--commutative"], capsys)
    assert code == 0, err
    assert json.loads(out)["commutative"] is True


def test_measure_without_feed_is_an_error(model_file, capsys):
    code, out, err = run(["audit", f"{model_file}:build", "--measure"], capsys)
    assert_one_line_error(code, out, err)
    assert "feed" in err


def test_xla_flag_needs_a_jax_target(capsys):
    code, out, err = run(["audit", "deep_chain", "--depth", 2, "--xla"], capsys)
    assert_one_line_error(code, out, err)
    assert "--xla applies to JAX targets only" in err


def test_a_flag_the_targets_front_end_cannot_honour_exits_2(jax_model_file, capsys):
    code, out, err = run(["audit", "deep_chain", "--depth", 2, "--group", "module"], capsys)
    assert_one_line_error(code, out, err)
    assert "--group applies to JAX targets only" in err and "is a graphaudit graph target" in err
    code, out, err = run(["audit", "deep_chain", "--depth", 2, "--compile-check"], capsys)
    assert_one_line_error(code, out, err)
    assert "--compile-check applies to PyTorch, PyMC and PyTensor targets only" in err


def test_audit_count_flag_counts_instead_of_building(capsys):
    assert main(["audit", "deep_chain", "--depth", "3", "--width", "4", "--count", "--json", "-"]) == 0
    counted = json.loads(capsys.readouterr().out)
    assert main(["audit", "deep_chain", "--depth", "3", "--width", "4", "--json", "-"]) == 0
    built = json.loads(capsys.readouterr().out)
    assert counted["materialized"] is False and built["materialized"] is True
    assert counted["duplicated"] == built["duplicated"]
    assert counted["forms"]["separate"]["nodes"] == built["forms"]["separate"]["nodes"]


def test_jax_count_flag_counts_the_separate_traces(jax_model_file, capsys):
    assert main(["audit", f"{jax_model_file}:target", "--count", "--json", "-"]) == 0
    counted = json.loads(capsys.readouterr().out)
    assert main(["audit", f"{jax_model_file}:target", "--json", "-"]) == 0
    built = json.loads(capsys.readouterr().out)
    assert counted["materialized"] is False and counted["framework"]["counted_exact"] is True
    assert counted["duplicated"] == built["duplicated"]
    assert counted["forms"]["separate"]["flops"] == built["forms"]["separate"]["flops"]


def test_audit_count_cannot_draw(tmp_path, capsys):
    assert main(["audit", "deep_chain", "--count", "--dot", str(tmp_path / "x.dot")]) == 2
    assert "--count" in capsys.readouterr().err


@pytest.mark.slow
def test_semantic_flag_reaches_every_front_end(jax_model_file, torch_model_file, capsys):
    """--semantic is honoured by the framework front-ends too: the JSON then holds the semantic extra."""
    pytest.importorskip("egglog")
    for target in (f"{jax_model_file}:target", f"{torch_model_file}:target"):
        code, out, err = run(["audit", target, "--semantic", "--json", "-", "--no-timings"], capsys)
        assert code == 0, err
        report = json.loads(out)
        assert report["semantic"] is not None and report["merged_equals_joint"] is True


def _owners(option: str) -> list[str]:
    return [frontend.name for frontend in example_targets().values() if option in frontend.options]


@pytest.mark.parametrize("flag, option", [(["--loop-budget", "0"], "loop_budget"), (["--group", "module"], "group")])
def test_loop_budget_and_group_are_refused_where_not_honoured(flag, option, capsys):
    owners = _owners(option)
    assert "JAX" in owners and "graphaudit graph" not in owners
    code, out, err = run(["audit", "deep_chain", "--depth", "3", *flag], capsys)  # 0 is given, not unset
    assert_one_line_error(code, out, err)
    assert f"{flag[0]} applies to " in err and all(name in err for name in owners)
    assert "deep_chain is a graphaudit graph target" in err


def test_loop_budget_reaches_the_jax_audit(capsys):
    """Scans are unrolled when all the forms unrolled hold at most the budget: the boundary, either side."""
    pytest.importorskip("jax")
    from graphaudit.frontends.common import DEFAULT_LOOP_BUDGET

    target = f"{ROOT / 'examples' / 'jax_lstm.py'}:target"

    def loops(*flag):
        code, out, err = run(["audit", target, "--json", "-", "--no-timings", *flag], capsys)
        assert code == 0, err
        return json.loads(out)["framework"]["loops"]

    default = loops()
    assert default["budget"] == DEFAULT_LOOP_BUDGET and default["unrolled"] is True
    size = default["unrolled_nodes"]
    assert loops("--loop-budget", str(size)) == default | {"budget": size}
    below = loops("--loop-budget", str(size - 1))
    assert below["budget"] == size - 1 and below["unrolled"] is False
    assert {row["treatment"] for row in below["rows"]} != {row["treatment"] for row in default["rows"]}


PYTENSOR_SCAN_FILE = """
import sys
sys.path.insert(0, {examples!r})
from pymc_ar_scan import model  # an AR(1) series: its logp holds a Scan
from graphaudit.frontends.pymc import model_gradient

def target():
    gradient = model_gradient(model())
    return gradient.cost, gradient.wrt, gradient.shapes
"""


@pytest.mark.slow
def test_loop_budget_reaches_the_pytensor_and_pymc_audits(tmp_path, capsys):
    pytest.importorskip("pymc")
    from graphaudit.frontends.common import DEFAULT_LOOP_BUDGET

    path = tmp_path / "pytensor_scan.py"
    path.write_text(PYTENSOR_SCAN_FILE.format(examples=str(ROOT / "examples")))
    for target, pymc in ((f"{ROOT / 'examples' / 'pymc_ar_scan.py'}:model", True), (f"{path}:target", False)):
        for flag, budget, unrolled in (([], DEFAULT_LOOP_BUDGET, True), (["--loop-budget", "0"], 0, False)):
            code, out, err = run(["audit", target, "--json", "-", "--no-timings", "--repeats", "1", *flag], capsys)
            assert code == 0, err
            report = json.loads(out)
            assert ("pymc_version" in report["framework"]) is pymc  # each front-end's own run, not the other's
            assert report["framework"]["loops"]["budget"] == budget
            assert report["framework"]["loops"]["unrolled"] is unrolled


JAX_LAYERS_FILE = """
import jax.numpy as jnp
import numpy as np

def loss(params, x):
    h = jnp.tanh(x @ params["layer1"]["w"] + params["layer1"]["b"])
    return jnp.sum(jnp.tanh(h @ params["layer2"]["w"] + params["layer2"]["b"]))

def target():
    ones = lambda *shape: np.ones(shape, np.float32)
    params = {"layer1": {"w": ones(3, 4), "b": ones(4)}, "layer2": {"w": ones(4, 2), "b": ones(2)}}
    return loss, (params, ones(5, 3)), 0
"""


def test_group_module_makes_one_jax_grad_per_layer(tmp_path, capsys):
    pytest.importorskip("jax")
    path = tmp_path / "layers.py"
    path.write_text(JAX_LAYERS_FILE)
    reports = {}
    for flag in ([], ["--group", "module"]):
        code, out, err = run(["audit", f"{path}:target", "--json", "-", "--no-timings", *flag], capsys)
        assert code == 0, err
        reports[bool(flag)] = json.loads(out)
    wrt = reports[False]["wrt"]
    layers: dict[str, list[str]] = {}
    for name in wrt:  # params['layer1']['w'] belongs to params['layer1']
        layers.setdefault(name.rsplit("[", 1)[0], []).append(name)
    assert reports[False]["framework"]["traces"]["separate"] == len(wrt) == 4
    assert reports[True]["framework"]["traces"]["separate"] == len(layers) == 2
    assert reports[True]["framework"]["groups"] == list(layers.values())
