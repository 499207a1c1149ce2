"""The toy fourth front-end (toyframework.py and graphaudit_toy.py here): a framework graphaudit has never heard
of, audited through the API and through the command line, which finds it by its entry point alone.

What every front-end owes (gradients in both forms, merged == original, to_dict, recognition, refusals) is
checked for the toy by tests/frontends/test_conformance.py; here, what is the toy's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import graphaudit_toy as gt
import numpy as np
import pytest
import toy_mlp
import toyframework as toy
from cli.helpers import assert_one_line_error, install_frontends, module_env, run
from conftest import central_difference

from graphaudit.cli.options import honoured_by
from graphaudit.frontends import FrontendEntryPointError, cli_frontends

HERE = Path(__file__).resolve().parent
BUILT_IN = [frontend.name for frontend in cli_frontends()]  # before any toy is installed
PROGRAM = """
import numpy as np
import toyframework as toy

def target():
    rng = np.random.default_rng(0)
    x, y = toy.data("x", rng.standard_normal((6, 4))), toy.data("y", rng.standard_normal((6, 3)))
    w1, b1 = toy.param("w1", rng.standard_normal((4, 5))), toy.param("b1", rng.standard_normal(5))
    w2, b2 = toy.param("w2", rng.standard_normal((5, 3))), toy.param("b2", rng.standard_normal(3))
    hidden = toy.op("tanh", toy.op("add", toy.op("matmul", x, w1), b1))
    out = toy.op("add", toy.op("matmul", hidden, w2), b2)
    return toy.op("sum", toy.op("mul", out, y)), [w1, b1, w2, b2]
"""


def toy_loss(x, y, w1, b1, w2, b2):
    """The MLP's loss, run by the toy on these arrays."""
    hidden = toy.op("tanh", toy.op("add", toy.op("matmul", toy.data("x", x), toy.param("w1", w1)), toy.param("b1", b1)))
    out = toy.op("add", toy.op("matmul", hidden, toy.param("w2", w2)), toy.param("b2", b2))
    return float(toy.op("sum", toy.op("mul", out, toy.data("y", y))).value)


def numpy_backprop(x, y, w1, b1, w2, b2):
    """The MLP's gradients written out in numpy, by the chain rule."""
    hidden = np.tanh(x @ w1 + b1)
    d_hidden = (y @ w2.T) * (1 - hidden**2)
    return [x.T @ d_hidden, d_hidden.sum(axis=0), hidden.T @ y, y.sum(axis=0)]


def test_the_toys_gradients_are_numpy_backprop_and_finite_differences():
    loss, params = toy_mlp.build()
    leaves = {r["attrs"]["name"]: r["value"] for r in toy.export([loss])["records"] if r["op"] in ("param", "data")}
    arrays = [leaves[name] for name in ("x", "y", "w1", "b1", "w2", "b2")]
    joint = [g.value for g in toy.grad(loss, params)]
    separate = [toy.grad(loss, [p])[0].value for p in params]
    for which, (name, by_hand) in enumerate(zip(["w1", "b1", "w2", "b2"], numpy_backprop(*arrays)), start=2):
        np.testing.assert_allclose(joint[which - 2], by_hand, rtol=1e-12, err_msg=name)
        np.testing.assert_array_equal(separate[which - 2], joint[which - 2], err_msg=name)
        np.testing.assert_allclose(joint[which - 2], central_difference(toy_loss, arrays, which), rtol=1e-6, atol=1e-8)


def test_a_parameter_the_loss_does_not_reach_is_refused_in_one_line():
    loss, params = toy_mlp.build()
    with pytest.raises(ValueError, match=r"^grad: loss does not depend on w9$"):
        toy.grad(loss, [toy.param("w9", np.ones(2))])


@pytest.mark.parametrize("widths, batch", [((4, 5, 3), 6), ((7, 2, 9), 3)])
def test_duplicated_flops_equal_the_hand_count(widths, batch):
    """Each grad call builds the backward ops on its parameter's path. With n = batch and d, h, o the widths,
    the calls for w1, b1, w2, b2 build: all four the output adjoint broadcast(1) * y (n*o FLOPs); w1 and b1
    also dZ2 @ w2.T (2*n*o*h) and tanh_grad (3 FLOPs an element, 3*n*h). The joint call builds each once,
    so the separate form repeats 3*n*o + 2*n*o*h + 3*n*h FLOPs, 2*n*o*h of them in products."""
    d, h, o = widths
    n = batch
    report = gt.audit(*toy_mlp.build(widths, batch))
    assert report.wrt == ["w1", "b1", "w2", "b2"]
    assert report.duplicated["flops"] == 3 * n * o + 2 * n * o * h + 3 * n * h
    assert report.duplicated["matmul_flops"] == 2 * n * o * h
    by_op = report.duplicated["by_op"]
    assert (by_op["toy.mul"]["flops"], by_op["toy.matmul"]["flops"], by_op["toy.tanh_grad"]["flops"]) == (
        3 * n * o, 2 * n * o * h, 3 * n * h)
    assert report.merged_equals_joint
    separate, joint = report.forms["separate"].cost, report.forms["joint"].cost
    assert separate.flops - joint.flops == report.duplicated["flops"]
    counted = gt.audit(*toy_mlp.build(widths, batch), materialize=False)
    assert counted.duplicated == report.duplicated and counted.framework["grad_calls"] == {"separate": 0, "joint": 1}


def test_auditing_leaves_the_toys_graph_as_it_was():
    loss, params = toy_mlp.build()
    before = toy.export([loss])
    gt.audit(loss, params)
    after = toy.export([loss])
    assert [{**r, "value": None} for r in after["records"]] == [{**r, "value": None} for r in before["records"]]
    for old, new in zip(before["records"], after["records"]):
        np.testing.assert_array_equal(old["value"], new["value"])


# --- the command line, which finds the toy through its entry point ------------------------------------------


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """The toy installed as pip would install a package ``graphaudit-toy``: its entry point on sys.path."""
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.syspath_prepend(str(install_frontends(tmp_path / "site", "graphaudit_toy", {"toy": "graphaudit_toy:CLI"})))
    (tmp_path / "program.py").write_text(PROGRAM)
    return tmp_path / "program.py"


def test_the_entry_point_adds_the_toy_after_the_built_in_front_ends(installed, capsys):
    assert [frontend.name for frontend in cli_frontends()] == [*BUILT_IN, "toyframework"]
    assert cli_frontends()[-1] is gt.CLI
    code, out, err = run(["audit", "--help"], capsys)
    text = " ".join(out.split())
    assert code == 0 and "toyframework: (loss, params) of toyframework vars options: --commutative, --semantic, --count" in text
    assert "toyframework graphaudit audit tests/frontends/toy/toy_mlp.py:target" in text


def test_the_command_line_audits_a_toy_target_from_a_file(installed, capsys):
    code, out, err = run(["audit", f"{installed}:target", "--json", "-", "--no-timings", "--commutative"], capsys)
    assert code == 0, err
    assert json.loads(out) == json.loads(gt.audit(*toy_mlp.build(), commutative=True).to_json(timings=False))
    code, out, err = run(["audit", f"{installed}:target", "--json", "-", "--count"], capsys)
    assert code == 0, err
    assert json.loads(out)["duplicated"] == json.loads(gt.audit(*toy_mlp.build()).to_json())["duplicated"]


def test_an_option_the_toy_does_not_honour_is_refused_in_one_line(installed, capsys):
    code, out, err = run(["audit", f"{installed}:target", "--measure"], capsys)
    assert_one_line_error(code, out, err)
    assert f"--measure applies to {honoured_by('measure')} targets only; {installed}:target is a toyframework target" in err
    assert "toyframework" not in honoured_by("measure")


def test_installed_front_ends_come_in_entry_point_name_order(tmp_path, monkeypatch):
    site = install_frontends(tmp_path, "two_toys", {"toy": "graphaudit_toy:CLI", "a_second": "second_toy:CLI"})
    (site / "second_toy.py").write_text("import dataclasses, graphaudit_toy\n"
                                        "CLI = dataclasses.replace(graphaudit_toy.CLI, name='second toy')\n")
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "second_toy", raising=False)
    assert [frontend.name for frontend in cli_frontends()] == [*BUILT_IN, "second toy", "toyframework"]


@pytest.mark.parametrize("value, says", [
    ("graphaudit_toy:TABLE", "is an OpTable, not a graphaudit.frontends.common.CliFrontend"),
    ("no_such_module:CLI", "does not load: ModuleNotFoundError: No module named 'no_such_module'"),
])
def test_a_broken_entry_point_is_one_line_naming_it(tmp_path, monkeypatch, capsys, value, says):
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.syspath_prepend(str(install_frontends(tmp_path, "broken_toy", {"toy": value})))
    message = f"the front-end entry point toy = {value} (graphaudit.frontends of broken_toy 0.1) {says}"
    with pytest.raises(FrontendEntryPointError) as raised:
        cli_frontends()
    assert str(raised.value) == message
    code, out, err = run(["audit", "seed_mlp"], capsys)
    assert_one_line_error(code, out, err)
    assert err == f"graphaudit: error: {message}\n"


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_fresh_process_finds_the_installed_toy(installed):
    env = module_env()
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(installed.parent / "site"), str(HERE)])
    done = subprocess.run([sys.executable, "-m", "graphaudit", "audit", f"{installed}:target", "--json", "-"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    n, (_, h, o) = toy_mlp.BATCH, toy_mlp.WIDTHS  # PROGRAM's sizes
    assert json.loads(done.stdout)["duplicated"]["flops"] == 3 * n * o + 2 * n * o * h + 3 * n * h
