"""The command line: ``graphaudit demo | audit | examples`` and ``python -m graphaudit``.

Most tests run :func:`graphaudit.cli.main` in-process (fast); one runs the module in a
subprocess. Checks of rendered pictures skip when Graphviz's ``dot`` is not installed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from graphaudit.cli import main

ROOT = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPORT_KEYS = {"kind", "wrt", "forms", "duplicated", "joint_duplicates", "merged_equals_joint", "measured", "commutative"}
FORMS = {"separate", "joint", "separate_merged", "joint_merged"}
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")


def run(argv, capsys):
    """``main(argv)`` in-process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, out, err):
    assert code == 2, (code, out, err)
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("graphaudit: error: "), err
    assert out == ""


MODEL_FILE = """
import numpy as np
import graphaudit as ga

def build():
    x = ga.placeholder("x", (4, 3))
    w1 = ga.parameter("w1", (3, 5))
    w2 = ga.parameter("w2", (5, 2))
    cost = ga.sum(ga.tanh(ga.tanh(x @ w1) @ w2))
    return cost, [w1, w2]

def build_with_feed():
    cost, wrt = build()
    leaves = [n for n in ga.topological_order([cost]) if n.is_leaf]
    rng = np.random.default_rng(0)
    feed = {n: rng.standard_normal(n.shape).astype(n.dtype) for n in leaves if n.op != "constant"}
    return cost, wrt, feed

def single():
    w = ga.parameter("w", (3,))
    return ga.sum(ga.tanh(w)), w

def returns_int():
    return 3

def returns_one():
    return (build()[0],)

def cost_not_node():
    return 1.0, build()[1]

def wrt_not_nodes():
    return build()[0], ["w1"]

def not_scalar():
    w = ga.parameter("w", (3,))
    return ga.tanh(w), [w]

def raises():
    raise RuntimeError("broken model")

not_a_function = 42
"""


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("target") / "my_model.py"
    path.write_text(MODEL_FILE)
    return path


# --- demo ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One run of ``graphaudit demo`` (the seed network, batch 128) for the tests below."""
    out_dir = tmp_path_factory.mktemp("demo") / "out"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["demo", "--out", str(out_dir)])
    return code, stdout.getvalue(), stderr.getvalue(), out_dir


def test_demo_writes_json_and_dot(demo):
    code, out, err, out_dir = demo
    assert code == 0, err
    report = json.loads((out_dir / "report.json").read_text())
    assert REPORT_KEYS <= set(report)
    assert set(report["forms"]) == FORMS
    assert report["wrt"] == ["w1", "b1", "w2", "b2", "w3", "b3", "w4", "b4"]
    assert report["merged_equals_joint"] is True
    assert report["duplicated"]["matmul_flops"] > 0
    assert "digraph" in (out_dir / "report.dot").read_text()
    # the report is printed, and so is where the files are
    assert "separate grad calls" in out
    for name in ("report.json", "report.dot"):
        assert str(out_dir / name) in out


@needs_dot
def test_demo_writes_png_files(demo):
    code, out, err, out_dir = demo
    assert code == 0, err
    for name in ("separate.png", "merged.png"):
        path = out_dir / name
        assert path.read_bytes()[:8] == PNG_SIGNATURE, name
        assert str(path) in out
    assert err == ""


def test_demo_without_dot_still_writes_json_and_dot(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no `dot` to be found
    out_dir = tmp_path / "out"
    code, out, err = run(["demo", "--out", out_dir, "--batch", 4], capsys)
    assert code == 0, err
    assert json.loads((out_dir / "report.json").read_text())["kind"] == "grad"
    assert "digraph" in (out_dir / "report.dot").read_text()
    assert not (out_dir / "separate.png").exists() and not (out_dir / "merged.png").exists()
    lines = err.splitlines()
    assert len(lines) == 1 and "graphviz" in lines[0].lower() and "install" in lines[0].lower(), err
    assert "Traceback" not in err


def test_demo_output_folder_that_cannot_be_made(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert_one_line_error(*run(["demo", "--out", blocker / "out"], capsys))


# --- audit: built-in examples ------------------------------------------------------------------


def test_audit_json_to_stdout(capsys):
    code, out, err = run(["audit", "seed_mlp", "--json", "-", "--no-timings"], capsys)
    assert code == 0, err
    report = json.loads(out)  # stdout holds the JSON and nothing else
    assert REPORT_KEYS <= set(report)
    assert set(report["forms"]) == FORMS
    assert all(form["build_seconds"] is None for form in report["forms"].values())
    assert err == ""


def test_audit_json_without_timings_is_deterministic(capsys):
    argv = ["audit", "deep_chain", "--depth", 4, "--width", 8, "--batch", 2, "--json", "-", "--no-timings"]
    first = run(argv, capsys)
    second = run(argv, capsys)
    assert first[0] == second[0] == 0
    assert first[1] == second[1]


def test_audit_example_prints_text_and_writes_files(tmp_path, capsys):
    json_path, dot_path = tmp_path / "r.json", tmp_path / "r.dot"
    code, out, err = run(
        ["audit", "residual_mlp", "--depth", 3, "--width", 4, "--batch", 2, "--json", json_path, "--dot", dot_path,
         "--view", "separate"],
        capsys,
    )
    assert code == 0, err
    assert "duplicated work" in out
    assert f"wrote {json_path}" in out and f"wrote {dot_path}" in out
    report = json.loads(json_path.read_text())
    assert report["wrt"][-2:] == ["w_out", "b_out"]
    assert report["measured"] is None
    assert "digraph" in dot_path.read_text()


def test_audit_measure_on_example(capsys):
    code, out, err = run(
        ["audit", "deep_chain", "--depth", 2, "--width", 4, "--batch", 2, "--measure", "--repeats", 1, "--json", "-"],
        capsys,
    )
    assert code == 0, err
    measured = json.loads(out)["measured"]
    assert measured["repeats"] == 1
    assert measured["max_abs_difference"] < 1e-5


def test_audit_commutative_flag(capsys):
    code, out, err = run(["audit", "deep_chain", "--depth", 2, "--json", "-", "--commutative"], capsys)
    assert code == 0, err
    assert json.loads(out)["commutative"] is True


@needs_dot
def test_audit_png_and_svg(tmp_path, capsys):
    png, svg = tmp_path / "g.png", tmp_path / "g.svg"
    code, out, err = run(
        ["audit", "deep_chain", "--depth", 3, "--width", 4, "--png", png, "--svg", svg, "--view", "separate"], capsys
    )
    assert code == 0, err
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    assert "<svg" in svg.read_text()


def test_audit_png_without_dot_is_an_error(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    code, out, err = run(["audit", "deep_chain", "--depth", 2, "--json", "-", "--png", tmp_path / "g.png"], capsys)
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("graphaudit: error: ") and "Traceback" not in err
    assert "graphviz" in lines[0].lower()


# --- audit: file targets ------------------------------------------------------------------------


def test_audit_file_target(model_file, tmp_path, capsys):
    json_path = tmp_path / "report.json"
    code, out, err = run(["audit", f"{model_file}:build", "--json", json_path], capsys)
    assert code == 0, err
    assert "2 separate grad calls" in out
    report = json.loads(json_path.read_text())
    assert report["wrt"] == ["w1", "w2"]
    assert report["merged_equals_joint"] is True
    assert report["duplicated"]["nodes"] > 0


def test_audit_file_target_single_wrt(model_file, capsys):
    code, out, err = run(["audit", f"{model_file}:single", "--json", "-"], capsys)
    assert code == 0, err
    assert json.loads(out)["wrt"] == ["w"]


def test_audit_file_target_with_feed_measures(model_file, capsys):
    code, out, err = run(["audit", f"{model_file}:build_with_feed", "--measure", "--repeats", 1, "--json", "-"], capsys)
    assert code == 0, err
    assert json.loads(out)["measured"]["repeats"] == 1


def test_audit_file_target_relative_path(model_file, monkeypatch, capsys):
    monkeypatch.chdir(model_file.parent)
    code, out, err = run(["audit", "my_model.py:build", "--json", "-"], capsys)
    assert code == 0, err


# --- bad input: exit 2, one line on stderr, no traceback ----------------------------------------

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


@pytest.mark.parametrize("flag", ["--json", "--png", "--svg", "--dot"])
def test_output_in_missing_folder(flag, tmp_path, capsys):
    suffix = {"--json": ".json", "--png": ".png", "--svg": ".svg", "--dot": ".dot"}[flag]
    path = tmp_path / "no" / "such" / f"out{suffix}"
    code, out, err = run(["audit", "deep_chain", "--depth", 2, flag, path], capsys)
    assert_one_line_error(code, out, err)
    assert "does not exist" in err


def test_output_in_unwritable_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("graphaudit.cli.os.access", lambda path, mode: False)  # as if not ours (root writes anywhere)
    code, out, err = run(["audit", "deep_chain", "--json", tmp_path / "r.json"], capsys)
    assert_one_line_error(code, out, err)
    assert "not writable" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["audit", "seed_mlp", "--depth", "3"],  # option that does not apply
        ["audit", "deep_chain", "--batch", "0"],  # not positive
        ["audit", "deep_chain", "--width", "x"],
        ["audit", "deep_chain", "--view", "sideways"],
        ["audit", "deep_chain", "--png", "picture.svg"],  # suffix does not match
        ["audit"],  # no target
        ["audit", "seed_mlp", "--no-such-flag"],
        ["no-such-command"],
    ],
    ids=lambda argv: " ".join(argv),
)
def test_bad_usage_exits_2_with_one_line(argv, capsys):
    assert_one_line_error(*run(argv, capsys))


def test_measure_without_feed_is_an_error(model_file, capsys):
    code, out, err = run(["audit", f"{model_file}:build", "--measure"], capsys)
    assert_one_line_error(code, out, err)
    assert "feed" in err


def test_example_sizes_do_not_apply_to_files(model_file, capsys):
    assert_one_line_error(*run(["audit", f"{model_file}:build", "--depth", 3], capsys))


def test_traceback_flag_shows_the_error(model_file):
    with pytest.raises(Exception):
        main(["audit", f"{model_file}:raises", "--traceback"])


# --- examples and help ---------------------------------------------------------------------------


def test_examples_lists_all_three(capsys):
    code, out, err = run(["examples"], capsys)
    assert code == 0
    names = [line.split()[0] for line in out.splitlines() if line and not line[0].isspace()]
    assert names == ["seed_mlp", "deep_chain", "residual_mlp"]


@pytest.mark.parametrize("command", ["demo", "audit", "examples"])
def test_command_help(command, capsys):
    code, out, err = run([command, "--help"], capsys)
    assert code == 0
    assert out.startswith(f"usage: graphaudit {command}")


def test_no_command_shows_help_and_exits_2(capsys):
    code, out, err = run([], capsys)
    assert code == 2
    assert "usage: graphaudit" in err


def _module_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


@pytest.mark.subprocess
def test_python_m_graphaudit_help():
    result = subprocess.run(
        [sys.executable, "-m", "graphaudit", "--help"], capture_output=True, text=True, env=_module_env(), timeout=60
    )
    assert result.returncode == 0, result.stderr
    for command in ("demo", "audit", "examples"):
        assert command in result.stdout
    assert result.stderr == ""


@pytest.mark.subprocess
def test_python_m_graphaudit_bad_input(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "graphaudit", "audit", str(tmp_path / "missing.py") + ":build"],
        capture_output=True,
        text=True,
        env=_module_env(),
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr



# --- audit: JAX targets (fn, args, argnums) ------------------------------------------------------

JAX_MODEL_FILE = """
import jax.numpy as jnp
import numpy as np

def loss(w1, w2, x):
    return jnp.sum(jnp.tanh(jnp.tanh(x @ w1) @ w2))

def target():
    rng = np.random.default_rng(0)
    w1, w2, x = (rng.standard_normal(s).astype(np.float32) for s in [(3, 5), (5, 2), (4, 3)])
    return loss, (w1, w2, x), (0, 1)

def args_not_a_tuple():
    return loss, 3, 0

def argnums_not_ints():
    return target()[0], target()[1], ("w1",)

def fails_in_jax():
    return (lambda w: jnp.sum(w @ w), (np.ones((2, 3), np.float32),), 0)
"""


@pytest.fixture(scope="module")
def jax_model_file(tmp_path_factory):
    pytest.importorskip("jax")
    path = tmp_path_factory.mktemp("jax_target") / "jax_model.py"
    path.write_text(JAX_MODEL_FILE)
    return path


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


def test_xla_flag_needs_a_jax_target(capsys):
    code, out, err = run(["audit", "deep_chain", "--depth", 2, "--xla"], capsys)
    assert_one_line_error(code, out, err)
    assert "--xla applies to JAX targets only" in err


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


def test_audit_count_flag_counts_instead_of_building(capsys):
    assert main(["audit", "deep_chain", "--depth", "3", "--width", "4", "--count", "--json", "-"]) == 0
    counted = json.loads(capsys.readouterr().out)
    assert main(["audit", "deep_chain", "--depth", "3", "--width", "4", "--json", "-"]) == 0
    built = json.loads(capsys.readouterr().out)
    assert counted["materialized"] is False and built["materialized"] is True
    assert counted["duplicated"] == built["duplicated"]
    assert counted["forms"]["separate"]["nodes"] == built["forms"]["separate"]["nodes"]


def test_audit_count_cannot_draw(tmp_path, capsys):
    assert main(["audit", "deep_chain", "--count", "--dot", str(tmp_path / "x.dot")]) == 2
    assert "--count" in capsys.readouterr().err


def test_a_flag_the_targets_front_end_cannot_honour_exits_2(jax_model_file, capsys):
    code, out, err = run(["audit", f"{jax_model_file}:target", "--count"], capsys)
    assert_one_line_error(code, out, err)
    assert "--count applies to graphaudit graph targets only" in err and "is a JAX target" in err
    code, out, err = run(["audit", "deep_chain", "--depth", 2, "--compile-check"], capsys)
    assert_one_line_error(code, out, err)
    assert "--compile-check applies to PyTorch, PyMC and PyTensor targets only" in err


def test_a_target_no_front_end_recognises_says_what_each_expects(model_file, capsys):
    code, out, err = run(["audit", f"{model_file}:cost_not_node"], capsys)
    assert_one_line_error(code, out, err)
    assert "(cost, wrt)" in err and "JAX" in err and "PyTensor" in err and "first item is a float" in err


# --- audit: PyTorch targets (loss_fn, params, *inputs) --------------------------------------------

TORCH_MODEL_FILE = """
import torch
import torch.nn as nn

def target():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))
    x, y = torch.randn(6, 5), torch.tensor([0, 2, 1, 1, 0, 2])
    return (lambda m, x, y: nn.functional.cross_entropy(m(x), y)), model, x, y
"""


@pytest.fixture(scope="module")
def torch_model_file(tmp_path_factory):
    pytest.importorskip("torch")
    path = tmp_path_factory.mktemp("torch_target") / "torch_model.py"
    path.write_text(TORCH_MODEL_FILE)
    return path


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


def test_semantic_flag_reaches_every_front_end(jax_model_file, torch_model_file, capsys):
    """--semantic is honoured by the framework front-ends too: the JSON then holds the semantic extra."""
    pytest.importorskip("egglog")
    for target in (f"{jax_model_file}:target", f"{torch_model_file}:target"):
        code, out, err = run(["audit", target, "--semantic", "--json", "-", "--no-timings"], capsys)
        assert code == 0, err
        report = json.loads(out)
        assert report["semantic"] is not None and report["merged_equals_joint"] is True


# --- first contact: the front-ends in --help, missing extras, --loop-budget and --group -------------------


def test_help_shows_a_target_of_each_front_end(capsys):
    """Derived from the front-ends' declarations: every front-end's example target, in both helps."""
    from graphaudit.frontends import cli_frontends

    for argv in (["--help"], ["audit", "--help"]):
        code, out, err = run(argv, capsys)
        assert code == 0 and err == ""
        lines = out.splitlines()
        for frontend in cli_frontends():
            line = next((line for line in lines if line.endswith(f"graphaudit audit {frontend.example}")), "")
            assert line.split()[:len(frontend.name.split())] == frontend.name.split(), (frontend.name, out)


def _example_targets():
    from graphaudit.frontends import cli_frontends

    return {frontend.name: frontend for frontend in cli_frontends()}


@pytest.mark.parametrize("name", _example_targets())
def test_each_front_ends_example_is_a_target_it_recognises(name):
    import argparse

    from graphaudit.cli import load_target

    frontend = _example_targets()[name]
    if frontend.module:
        pytest.importorskip(frontend.module)
    args = argparse.Namespace(target=frontend.example, batch=None, depth=None, width=None, measure=False)
    recognised_by, _ = load_target(args)
    assert recognised_by is frontend


def _optional_dependencies() -> dict[str, list[str]]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def _missing_extra_cases():
    cases = {"growth --png": ("matplotlib", "plots", ["growth", "deep_chain", "--depths", "4,8", "--png", "{tmp}/g.png"]),
             "audit --semantic": ("egglog", "egraph", ["audit", "deep_chain", "--depth", "3", "--semantic"])}
    for frontend in _example_targets().values():  # a framework's example target, its framework missing
        if frontend.module:
            cases[frontend.name] = (frontend.module, frontend.extra, ["audit", frontend.example])
    return cases


@pytest.mark.subprocess
@pytest.mark.parametrize("case", _missing_extra_cases())
def test_a_missing_extra_is_one_line_naming_it(case, tmp_path):
    module, extra, argv = _missing_extra_cases()[case]
    requirements = _optional_dependencies()[extra]  # the extra named is one pyproject.toml declares, with the module
    assert module in [re.match(r"[\w.-]+", requirement).group(0).lower() for requirement in requirements]
    without = f"import sys\nsys.modules[{module!r}] = None\nfrom graphaudit.cli import main\nsys.exit(main(sys.argv[1:]))"
    result = subprocess.run([sys.executable, "-c", without, *(a.format(tmp=tmp_path) for a in argv)], cwd=ROOT,
                            capture_output=True, text=True, env=_module_env(), timeout=300)
    assert_one_line_error(result.returncode, result.stdout, result.stderr)
    assert f"pip install 'graphaudit[{extra}]'" in result.stderr and module in result.stderr


def _owners(option: str) -> list[str]:
    return [frontend.name for frontend in _example_targets().values() if option in frontend.options]


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
