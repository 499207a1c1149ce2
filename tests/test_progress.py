"""The progress bar: drawn for a person at a terminal, silent in pipes, logs and with --quiet."""

import io
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

import graphaudit as ga
from graphaudit import models, progress
from graphaudit.cli import main

ROOT = Path(__file__).resolve().parent.parent


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_separate_grad_calls_draw_a_bar_on_a_terminal():
    model = models.deep_chain(depth=3, width=4, batch=2)
    stream = Terminal()
    with progress.showing(progress.Progress(stream, delay=0)):
        ga.audit(model.loss, model.params)
    text = stream.getvalue()
    n = len(model.params)
    assert f"separate grad calls [{'#' * progress.WIDTH}] {n} of {n}" in text
    assert text.endswith("\n")


def test_nothing_is_drawn_off_a_terminal_or_before_the_delay():
    model = models.deep_chain(depth=3, width=4, batch=2)
    for stream, delay in ((io.StringIO(), 0), (Terminal(), 60)):
        with progress.showing(progress.Progress(stream, delay=delay)):
            ga.audit(model.loss, model.params)
        assert stream.getvalue() == ""
    progress.step("no bar active", 1, 2)  # a no-op


def test_quiet_cli_writes_nothing_to_stderr(capsys):
    assert main(["audit", "deep_chain", "--depth", "3", "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_a_shorter_line_blanks_the_longer_one_and_long_names_are_cut(monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")
    name = "params['encoder']['layers'][11]['attention']['query']['kernel']"
    stream = Terminal()
    bar = progress.Progress(stream, delay=0)
    bar.update("traces", 1, 2, name)
    first = stream.getvalue()
    bar.update("traces", 2, 2, "w")
    second = stream.getvalue()[len(first):]
    assert len(second) == len(first) and "] 2 of 2: w  " in second  # padded with blanks to the longer line
    shown = first.split("] 1 of 2: ", 1)[1].rsplit("  ", 1)[0]
    assert shown == name[: progress.ITEM_WIDTH - 1] + "…"


def test_the_line_fits_the_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    stream = Terminal()
    progress.Progress(stream, delay=0).update("jax.grad traces", 3, 8, "params['dense']['kernel']")
    assert stream.getvalue().startswith("\r") and len(stream.getvalue()) == 1 + 39


# --- a framework's grad calls, at a real terminal ----------------------------------------------------

AT_TERMINAL = "import sys\nfrom graphaudit import progress\nfrom graphaudit.cli import main\n" \
              "progress.DELAY = 0\nsys.exit(main(sys.argv[1:]))\n"  # the CLI as it is, with no delay before the bar


def at_terminal(argv):
    """``graphaudit ARGV`` with stderr on a pseudo-terminal: (exit code, stdout, what the terminal showed)."""
    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "300"}
    process = subprocess.Popen([sys.executable, "-c", AT_TERMINAL, *map(str, argv)], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    shown = []
    while True:  # read as it comes, so that the terminal's buffer never fills
        if select.select([master], [], [], 0.2)[0]:
            try:
                data = os.read(master, 65536)
            except OSError:  # the other end closed
                break
            if not data:
                break
            shown.append(data)
        elif process.poll() is not None:
            break
    out = process.stdout.read().decode()
    process.wait(timeout=120)
    process.stdout.close()
    os.close(master)
    return process.returncode, out, b"".join(shown).decode()


JAX_TARGET = """
import jax.numpy as jnp
import numpy as np

def target():
    w1, w2, x = (np.ones(s, np.float32) for s in [(3, 5), (5, 2), (4, 3)])
    return (lambda w1, w2, x: jnp.sum(jnp.tanh(jnp.tanh(x @ w1) @ w2))), (w1, w2, x), (0, 1)
"""

PYTENSOR_TARGET = """
import pytensor.tensor as pt

def target():
    x = pt.matrix("x", shape=(4, 3))
    w1, w2, w3 = pt.matrix("w1", shape=(3, 5)), pt.matrix("w2", shape=(5, 2)), pt.vector("w3", shape=(2,))
    return pt.sum(pt.tanh(pt.tanh(x @ w1) @ w2) * w3), [w1, w2, w3]
"""

TORCH_TARGET = """
import torch
import torch.nn as nn

def target():
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))
    return (lambda m, x: m(x).pow(2).sum()), model, torch.ones(6, 5)
"""

REPEATS = 1
# front-end: (module, target file text or an example, grad calls the bar counts, the parameter of the last)
FRAMEWORK_TARGETS = {
    "JAX": ("jax", JAX_TARGET, 2, "w2"),  # one jax.grad trace per differentiated argument
    # every pytensor.grad call: REPEATS timed builds of each form and one warm-up build; the joint form is one call
    "PyTensor": ("pytensor", PYTENSOR_TARGET, (REPEATS + 1) * (3 + 1), "w3"),
    # the same for PyMC: three value variables (mu, tau_log__, theta_tilde)
    "PyMC": ("pymc", ROOT / "examples" / "pymc_eight_schools.py", (REPEATS + 1) * (3 + 1), "theta_tilde"),
    "PyTorch": ("torch", TORCH_TARGET, 4, "2.bias"),  # two Linear layers' weights and biases
}


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("frontend", FRAMEWORK_TARGETS)
def test_a_framework_audit_at_a_terminal_shows_each_grad_call(frontend, tmp_path):
    module, source, calls, name = FRAMEWORK_TARGETS[frontend]
    pytest.importorskip(module)
    if isinstance(source, Path):
        target = f"{source}:model"
    else:
        (tmp_path / "model.py").write_text(source)
        target = f"{tmp_path / 'model.py'}:target"
    repeats = ["--repeats", str(REPEATS)] if frontend in ("PyTensor", "PyMC") else []
    code, out, shown = at_terminal(["audit", target, *repeats])
    assert code == 0, shown
    assert "duplicated work in the separate form" in out  # the report, on stdout
    assert f"] 1 of {calls}: " in shown and f"] {calls} of {calls}: {name} " in shown, shown
    assert shown.endswith("\n")  # the bar's line is ended before anything else is printed


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_cli_draws_no_bar_off_a_terminal(tmp_path):
    pytest.importorskip("jax")
    (tmp_path / "model.py").write_text(JAX_TARGET)
    done = subprocess.run([sys.executable, "-c", AT_TERMINAL, "audit", f"{tmp_path / 'model.py'}:target"], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == "", done.stderr
