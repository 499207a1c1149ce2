"""Shared helpers for the core-engine tests: central finite differences and numpy references.

The repository root is put on ``sys.path`` so that ``pytest`` works without installing
the package (``python -m pytest`` already does this).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

EPS = 1e-6


def central_difference(f, arrays, which, eps=EPS):
    """d f(*arrays) / d arrays[which] by central differences; ``f`` returns a float.

    Works on float64 copies; the caller's arrays are never touched.
    """
    arrays = [np.array(a, copy=True) for a in arrays]
    x = arrays[which]
    grad = np.zeros(x.shape, dtype=np.float64)
    flat = x.reshape(-1)  # a view: writing it perturbs arrays[which]
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + eps
        plus = f(*arrays)
        flat[i] = saved - eps
        minus = f(*arrays)
        flat[i] = saved
        grad.reshape(-1)[i] = (plus - minus) / (2 * eps)
    return grad


# --- numpy references for the shared models (independent of graphaudit) --------------------


def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_nll(logits, labels):
    """-mean(log(softmax(logits))[arange(n), labels]), written directly in numpy."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    return -np.mean(np.log(p[np.arange(logits.shape[0]), labels]))


def np_mlp_loss(x, y, params, activation=np_sigmoid):
    """The loss of graphaudit.models.mlp: params = [w1, b1, w2, b2, ...]."""
    h = x
    pairs = list(zip(params[0::2], params[1::2]))
    for layer, (w, b) in enumerate(pairs, start=1):
        h = h @ w + b
        if layer < len(pairs):
            h = activation(h)
    return np_nll(h, y)


def np_residual_loss(x, y, params):
    """The loss of graphaudit.models.residual_mlp: params = [w1, b1, ..., w_out, b_out]."""
    h = x
    blocks = list(zip(params[0:-2:2], params[1:-2:2]))
    for w, b in blocks:
        h = h + np.tanh(h @ w + b)
    return np_nll(h @ params[-2] + params[-1], y)


# --- hypothesis profiles: derandomised and fixed in every run; `pytest --slow` digs deeper --------

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "default", max_examples=200, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "slow", max_examples=2000, derandomize=False, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("default")


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", help="run the property tests with 2000 random examples each")


def pytest_configure(config):
    if config.getoption("--slow"):
        settings.load_profile("slow")


# --- the tiers' markers, kept honest (registered in pyproject.toml; `make test-fast` leaves these out) ----
#
# The marks are put by hand, on the tests. `subprocess` and `browser` are also checked here: a Python
# interpreter, the CLI or Playwright's driver (which drives Chromium) is started through
# `subprocess.Popen`, so a test that starts one without its marker fails, in whichever tier it runs.
# (This cannot add the marks at collection: what a test starts is known only once it has run.)

_started: list[str] = []  # what the running test (its setup included) started, by program name
_popen_init = subprocess.Popen.__init__


def _recording_popen_init(self, args, *rest, **kwargs):
    words = args.split() if isinstance(args, (str, bytes)) else [args] if isinstance(args, os.PathLike) else list(args)
    _started.append(os.fsdecode(words[0]) if words else "")
    _popen_init(self, args, *rest, **kwargs)


def _marker_for(program: str) -> str | None:
    """The marker a test needs for starting ``program``: a Python, the CLI, or Playwright's driver."""
    name = os.path.basename(program)
    if name.startswith("python") or name == "graphaudit" or os.path.realpath(program) == os.path.realpath(sys.executable):
        return "subprocess"
    if "playwright" in program:
        return "browser"
    return None


def pytest_sessionstart(session):
    subprocess.Popen.__init__ = _recording_popen_init


def pytest_sessionfinish(session):
    subprocess.Popen.__init__ = _popen_init


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    _started.clear()


@pytest.hookimpl(trylast=True)  # after the test has run (a test that raised has failed already)
def pytest_runtest_call(item):
    unmarked = {program: marker for program in _started
                if (marker := _marker_for(program)) and not item.get_closest_marker(marker)}
    if unmarked:
        programs = ", ".join(sorted(map(os.path.basename, unmarked)))
        marks = " and ".join(f"@pytest.mark.{marker}" for marker in sorted(set(unmarked.values())))
        pytest.fail(f"{item.nodeid} starts {programs}: mark it {marks}", pytrace=False)
