"""A fourth front-end from outside graphaudit: the toy framework audited through the API and the command line.

The front-end (:mod:`.toy_frontend`) is a table, an importer and a build over the shared driver; the
command line finds it through the ``graphaudit.frontends`` entry-point group, declared here as an
installed package would (a ``.dist-info`` on ``sys.path``): no file of graphaudit names it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from cli.helpers import assert_one_line_error, run
from conftest import central_difference
from frontends.toy import toy_frontend
from frontends.toy import toyframework as toy
from graphaudit.frontends import cli_frontends

N, D0, D1, D2 = 4, 3, 5, 2


def mlp(seed: int = 0):
    """loss = sum(tanh(tanh(x @ w1) @ w2)) in the toy framework, and its arrays."""
    rng = np.random.default_rng(seed)
    arrays = {"x": rng.normal(size=(N, D0)), "w1": rng.normal(size=(D0, D1)), "w2": rng.normal(size=(D1, D2))}
    x, w1, w2 = (toy.leaf(name, value) for name, value in arrays.items())
    loss = toy.apply("sum", toy.apply("tanh", toy.apply("tanh", x @ w1) @ w2))
    return loss, [w1, w2], [x], arrays


def numpy_loss(x, w1, w2):
    return float(np.sum(np.tanh(np.tanh(x @ w1) @ w2)))


def test_the_toy_frameworks_own_gradients_are_right():
    loss, params, _, arrays = mlp()
    for k, g in enumerate(toy.grad(loss, params)):
        expected = central_difference(numpy_loss, list(arrays.values()), 1 + k)
        np.testing.assert_allclose(g.value, expected, rtol=1e-6, atol=1e-8)


def test_audit_counts_the_duplicated_backward_against_a_hand_count():
    loss, params, inputs, _ = mlp()
    report = toy_frontend.audit(loss, params, inputs)
    # grad w.r.t. w1 rebuilds what grad w.r.t. w2 built first: the seed's fill (no FLOPs), 1 - y2*y2
    # (2 FLOPs an element of y2) and its product with the cotangent (1 an element)
    assert report.duplicated["nodes"] == 3 and report.duplicated["flops"] == 3 * N * D2
    assert report.merged_equals_joint is True and report.framework["name"] == "Toy"
    # its forms evaluate to the toy's own gradients: tests/frontends/test_conformance.py
    counted = toy_frontend.audit(loss, params, inputs, materialize=False)
    assert counted.duplicated == report.duplicated


TARGET = """
import numpy as np
from frontends.toy import toyframework as toy

def target():
    rng = np.random.default_rng(0)
    x, w1, w2 = (toy.leaf(n, rng.normal(size=s)) for n, s in (("x", (4, 3)), ("w1", (3, 5)), ("w2", (5, 2))))
    return toy.apply("sum", toy.apply("tanh", toy.apply("tanh", x @ w1) @ w2)), [w1, w2], [x]
"""


@pytest.fixture
def installed_toy(tmp_path, monkeypatch):
    """The toy front-end as an installed package declares itself: an entry point in a .dist-info."""
    info = tmp_path / "graphaudit_toy-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: graphaudit-toy\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[graphaudit.frontends]\ntoy = frontends.toy.toy_frontend\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "toy.py").write_text(TARGET)
    return tmp_path / "toy.py"


def test_the_command_line_finds_the_declared_front_end_and_audits_its_target(installed_toy, capsys):
    names = [frontend.name for frontend in cli_frontends()]
    assert names.index("Toy") == len(names) - 2  # after graphaudit's frameworks, before its own graphs
    code, out, err = run(["audit", f"{installed_toy}:target", "--json", "-", "--no-timings"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["framework"]["name"] == "Toy" and data["duplicated"]["flops"] == 3 * N * D2
    code, out, err = run(["audit", f"{installed_toy}:target", "--measure"], capsys)
    assert_one_line_error(code, out, err)
    assert f"{installed_toy}:target is a Toy target" in err


def test_without_the_declaration_the_toy_is_not_a_front_end():
    assert "Toy" not in [frontend.name for frontend in cli_frontends()]
