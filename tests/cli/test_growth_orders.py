"""``graphaudit growth TARGET --orders 1..K``: derivatives by order from the command line."""

from __future__ import annotations

import importlib.util
import json

import pytest

from tests.cli.helpers import ROOT, assert_one_line_error, run

torch = pytest.importorskip("torch")

from graphaudit.frontends.torch import derivative_orders  # noqa: E402


def test_orders_of_the_pinn_example_are_the_librarys(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, _ = run(["growth", "examples/torch_sciml.py:orders", "--orders", "1..3", "--json",
                        tmp_path / "orders.json"], capsys)
    assert code == 0, out
    spec = importlib.util.spec_from_file_location("torch_sciml_example", ROOT / "examples" / "torch_sciml.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    u, model, xt = example.orders()
    expected = derivative_orders(u, xt, params=model, max_order=3)
    assert json.loads((tmp_path / "orders.json").read_text())["orders"] == expected.to_dict()["orders"]
    assert expected.to_text() in out


def test_orders_refuse_what_they_cannot_read(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert_one_line_error(*run(["growth", "examples/torch_sciml.py:orders", "--orders", "2..4"], capsys))
    assert_one_line_error(*run(["growth", "examples/torch_sciml.py:target", "--orders", "1..2"], capsys))
    assert_one_line_error(*run(["growth", "examples/torch_sciml.py:orders", "--orders", "1..2", "--png", "o.png"],
                               capsys))
