"""The example scripts run, with small arguments, and print the right counts."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT

import graphaudit as ga

EXAMPLES = ROOT / "examples"


def run(script, *args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, str(EXAMPLES / script), *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def op_counts(outputs):
    ops = [n for n in ga.topological_order(outputs) if not n.is_leaf]
    return len(ops), sum(n.is_backward for n in ops)


def printed_row(stdout, form):
    match = re.search(rf"^{form}\s+(\d+)\s+(\d+)\s+(\d+)\s+[\d.]+ms$", stdout, re.MULTILINE)
    assert match, stdout
    return tuple(int(g) for g in match.groups())


CASES = [
    ("seed_mlp.py", ["--batch", 4, "--widths", "6,5,4,3,2", "--check", "full", "--reps", 2],
     lambda: ga.models.seed_mlp(batch=4, widths=(6, 5, 4, 3, 2))),
    ("seed_mlp.py", ["--batch", 4, "--widths", "40,30,20,10", "--check", "small", "--check-width", 5, "--reps", 2],
     lambda: ga.models.seed_mlp(batch=4, widths=(40, 30, 20, 10))),
    ("deep_chain.py", ["--depth", 3, "--width", 4, "--batch", 2, "--reps", 2],
     lambda: ga.models.deep_chain(depth=3, width=4, batch=2)),
    ("residual_mlp.py", ["--depth", 2, "--width", 4, "--batch", 2, "--reps", 2, "--dtype", "float64"],
     lambda: ga.models.residual_mlp(depth=2, width=4, batch=2, dtype="float64")),
]


@pytest.mark.subprocess
@pytest.mark.parametrize("script, args, build", CASES, ids=["seed-full", "seed-small", "deep_chain", "residual"])
def test_example_runs_and_prints_the_counts(script, args, build):
    result = run(script, *args)
    assert result.returncode == 0, result.stderr
    model = build()
    joint = ga.grad(model.loss, model.params)
    separate = [ga.grad(model.loss, p) for p in model.params]
    assert printed_row(result.stdout, "joint") == (1, *op_counts(joint))
    assert printed_row(result.stdout, "separate") == (len(model.params), *op_counts(separate))
    assert f"{len(model.params)} parameters" in result.stdout
    assert re.search(r"numerical check.*: joint and separate gradients (bit-identical|agree)", result.stdout)
    for param, g in zip(model.params, separate):
        assert re.search(rf"\b{param.name}:{op_counts([g])[1]}\b", result.stdout), param.name


@pytest.mark.subprocess
def test_seed_example_builds_the_seed_sizes_and_can_skip_the_check():
    result = run("seed_mlp.py", "--check", "none", "--reps", 1)
    assert result.returncode == 0, result.stderr
    assert "widths 16384-5000-3000-512-40" in result.stdout and "batch 128" in result.stdout
    assert "numerical check: skipped" in result.stdout


def load(script, monkeypatch):
    """The example as a module (in-process: cheaper than a subprocess for argument checks)."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    for name in [n for n in sys.modules if n == "seed_mlp"]:  # deep_chain imports it; reload fresh
        monkeypatch.delitem(sys.modules, name)
    spec = importlib.util.spec_from_file_location(f"example_{script[:-3]}", EXAMPLES / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script", ["seed_mlp.py", "deep_chain.py", "residual_mlp.py"])
def test_example_help_and_bad_arguments(script, monkeypatch, capsys):
    module = load(script, monkeypatch)
    with pytest.raises(SystemExit) as helped:
        module.main(["--help"])
    out = capsys.readouterr().out
    assert helped.value.code == 0 and "--batch" in out and "--reps" in out
    if script == "seed_mlp.py":
        assert "--check" in out and "--check-width" in out
    with pytest.raises(SystemExit) as bad:
        module.main(["--batch", "0"])
    assert bad.value.code == 2 and "positive" in capsys.readouterr().err
