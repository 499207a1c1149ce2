"""PyTensor reports name the user's lines: forward variables by ``tag.trace``, gradient variables by the
forward op whose ``L_op`` made them (tagged while graphaudit builds the grads).

Hand derivation as in the JAX test: in a chain of ``layers`` tanh layers, the rule of layer
``j``'s tanh runs in the separate calls for ``w_1 .. w_j``, so its row says ``j`` calls, and
the cost's square runs in all of them.
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

pytensor = pytest.importorskip("pytensor")
pt = pytest.importorskip("pytensor.tensor")
gp = pytest.importorskip("graphaudit.frontends.pytensor")

from pytensor.graph.traversal import ancestors  # noqa: E402

from graphaudit.core.graph import topological_order  # noqa: E402
from graphaudit.frontends.pytensor.sources import ORIGIN_TAG, grad_origins  # noqa: E402

PROGRAM = '''\
import numpy as np
import pytensor
import pytensor.tensor as pt


def build(layers):
    x = pt.matrix("x")
    ws = [pytensor.shared(np.full((4, 4), 0.1 * (i + 1)), name=f"w{i + 1}") for i in range(layers)]
    h = x
    for w in ws:
        h = pt.tanh(h @ w)  # line 11
    cost = (h ** 2).sum()  # line 12
    return cost, ws
'''
LAYER, COST = 11, 12


def load(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "user_pt.py"
    path.write_text(PROGRAM)
    spec = importlib.util.spec_from_file_location("user_pt", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rows_name_the_users_lines(tmp_path, monkeypatch):
    layers = 4
    cost, ws = load(tmp_path, monkeypatch).build(layers)
    report = gp.audit(cost, ws, shapes={"x": (3, 4)}, repeats=1)
    data = report.to_dict()
    top = data["duplicated"]["top"]
    assert all(row["source"] is not None for row in top)
    assert {row["source"]["file"] for row in top} == {"user_pt.py"}
    assert {row["source"]["line"] for row in top} == {LAYER, COST}
    rows = data["duplicated"]["by_forward_node"]
    for j in range(2, layers + 1):
        assert rows[f"Elemwise{{tanh}}_{j}"]["calls"] == j
        assert rows[f"Elemwise{{tanh}}_{j}"]["source"]["line"] == LAYER
    assert rows[f"Blockwise{{Dot}}_{layers}"]["calls"] == layers
    assert rows["Elemwise{pow}_1"]["calls"] == layers and rows["Elemwise{pow}_1"]["source"]["line"] == COST
    (advice,) = data["advice"]
    assert advice["saves_flops"] == data["duplicated"]["flops"] > 0
    assert "pytensor.grad" in advice["rewrite"]
    assert "at user_pt.py:11" in report.to_text() and "at user_pt.py:12" in report.to_text()


def test_a_gradient_the_user_built_has_no_origin(tmp_path, monkeypatch):
    """Outside graphaudit's grad builds nothing is tagged: no origin, and so no line, rather than a wrong one."""
    cost, ws = load(tmp_path, monkeypatch).build(2)
    grads = pytensor.grad(cost, ws)
    assert all(not hasattr(g.tag, ORIGIN_TAG) for g in grads)
    imported = gp.from_pytensor(grads, shapes={"x": (3, 4)})
    assert all(n.origin is None for n in topological_order(imported.outputs))


def test_the_tagging_is_undone_even_on_failure(tmp_path, monkeypatch):
    utils = sys.modules["pytensor.graph.utils"]
    before = utils.add_tag_trace
    cost, ws = load(tmp_path, monkeypatch).build(1)
    with pytest.raises(ValueError), grad_origins():
        (grad,) = pytensor.grad(cost, ws)
        raise ValueError("a failure inside the block")
    assert utils.add_tag_trace is before
    forward = {v.owner for v in ancestors([cost]) if v.owner is not None}
    tagged = {getattr(v.tag, ORIGIN_TAG, None) for v in ancestors([grad])} - {None}
    assert tagged and tagged <= forward  # each gradient variable names an op of the cost's graph
