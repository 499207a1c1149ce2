"""Targets: what a bad one says in one line, and that each front-end recognises its own."""

from __future__ import annotations

import json

import pytest

from cli.helpers import ROOT, assert_one_line_error, example_targets, run

BAD_TARGETS = {
    "missing function": "{model}:no_such_function",
    "not a function": "{model}:not_a_function",
    "returns an int": "{model}:returns_int",
    "returns a 1-tuple": "{model}:returns_one",
    "cost not a node": "{model}:cost_not_node",
    "wrt not nodes": "{model}:wrt_not_nodes",
    "cost not scalar": "{model}:not_scalar",
    "function raises": "{model}:raises",
    "missing file": "{tmp}/no_such_file.py:build",
    "syntax error": "{tmp}/broken.py:build",
    "import error": "{tmp}/bad_import.py:build",
    "unknown example": "no_such_example",
    "file without function": "{model}",
}


@pytest.mark.parametrize("case", sorted(BAD_TARGETS))
def test_bad_target_exits_2_with_one_line(case, model_file, tmp_path, capsys):
    (tmp_path / "broken.py").write_text("def build(:\n    return 1\n")
    (tmp_path / "bad_import.py").write_text("import no_such_module_anywhere\n")
    target = BAD_TARGETS[case].format(model=model_file, tmp=tmp_path)
    assert_one_line_error(*run(["audit", target], capsys))


def test_error_messages_name_the_problem(model_file, tmp_path, capsys):
    (tmp_path / "broken.py").write_text("x = 1\ndef build(:\n    return 1\n")
    cases = {
        f"{tmp_path}/nope.py:f": "does not exist",
        f"{tmp_path}/broken.py:build": "line 2",
        f"{model_file}:no_such_function": "no function 'no_such_function'",
        f"{model_file}:returns_int": "(cost, wrt)",
        "no_such_example": "seed_mlp, deep_chain, residual_mlp",
    }
    for target, expected in cases.items():
        code, out, err = run(["audit", target], capsys)
        assert code == 2 and expected in err, (target, err)


def test_example_sizes_do_not_apply_to_files(model_file, capsys):
    assert_one_line_error(*run(["audit", f"{model_file}:build", "--depth", 3], capsys))


@pytest.mark.parametrize("name", example_targets())
def test_each_front_ends_example_is_a_target_it_recognises(name):
    import argparse

    from graphaudit.cli.targets import load_target

    frontend = example_targets()[name]
    if frontend.module:
        pytest.importorskip(frontend.module)
    args = argparse.Namespace(target=frontend.example, batch=None, depth=None, width=None, measure=False)
    recognised_by, _ = load_target(args)
    assert recognised_by is frontend


def test_a_target_no_front_end_recognises_says_what_each_expects(model_file, capsys):
    code, out, err = run(["audit", f"{model_file}:cost_not_node"], capsys)
    assert_one_line_error(code, out, err)
    assert "(cost, wrt)" in err and "JAX" in err and "PyTensor" in err and "first item is a float" in err


def test_audit_jax_target_with_xla(jax_model_file, capsys):
    code, out, err = run(["audit", f"{jax_model_file}:target", "--xla", "--json", "-", "--no-timings"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert report["wrt"] == ["w1", "w2"] and report["merged_equals_joint"] is True
    framework = report["framework"]
    assert framework["name"] == "JAX"
    compiled, without_cse = framework["compile_check"]["rows"]
    assert compiled["separate"]["dots"] == compiled["joint"]["dots"]
    assert compiled["separate"]["seconds"] is None  # --no-timings
    code, out, err = run(["audit", f"{jax_model_file}:target"], capsys)
    assert code == 0, err
    assert "2 separate grad calls" in out and "JAX " in out and "after XLA" not in out


@pytest.mark.parametrize(
    "function, expected",
    [
        ("args_not_a_tuple", "args is an int, not a tuple or list"),
        ("argnums_not_ints", "argnums must be an int or a non-empty tuple of ints"),
        ("fails_in_jax", "auditing"),
    ],
)
def test_bad_jax_target_exits_2_with_one_line(jax_model_file, function, expected, capsys):
    code, out, err = run(["audit", f"{jax_model_file}:{function}"], capsys)
    assert_one_line_error(code, out, err)
    assert expected in err


def test_audit_torch_target(torch_model_file, capsys):
    code, out, err = run(["audit", f"{torch_model_file}:target", "--json", "-", "--no-timings"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert report["wrt"] == ["0.weight", "0.bias", "2.weight", "2.bias"] and report["merged_equals_joint"] is True
    assert report["framework"]["name"] == "PyTorch"
    code, out, err = run(["audit", f"{torch_model_file}:target", "--xla"], capsys)
    assert_one_line_error(code, out, err)
    assert "--xla applies to JAX targets only" in err and "is a PyTorch target" in err


def test_a_three_item_torch_target_is_not_taken_for_a_jax_one(tmp_path, capsys):
    """(loss_fn, model, x) has the length of JAX's (fn, args, argnums): the PyTorch front-end is asked first."""
    pytest.importorskip("torch")
    path = tmp_path / "three.py"
    path.write_text("import torch, torch.nn as nn\n"
                    "def target():\n"
                    "    return (lambda m, x: m(x).pow(2).sum()), nn.Linear(3, 2), torch.ones(4, 3)\n")
    code, out, err = run(["audit", f"{path}:target", "--json", "-", "--no-timings"], capsys)
    assert code == 0, err
    assert json.loads(out)["wrt"] == ["weight", "bias"]


def test_audit_pymc_target(capsys):
    """A function returning a pm.Model (examples/pymc_eight_schools.py:model) audits its logp."""
    pytest.importorskip("pymc")
    target = f"{ROOT / 'examples' / 'pymc_eight_schools.py'}:model"
    code, out, err = run(["audit", target, "--json", "-", "--no-timings", "--repeats", "1"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert report["merged_equals_joint"] is True and "mu" in report["wrt"]
    code, out, err = run(["audit", target, "--count"], capsys)
    assert_one_line_error(code, out, err)
    assert "is a PyMC target" in err
