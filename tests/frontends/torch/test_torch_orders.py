"""Derivatives by order: each row is audit_function of that order's program, and a one-layer tanh model's
rows follow the counts derived by hand from PyTorch's derivative formulas."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import torch_models as tm  # noqa: E402

from graphaudit.analysis.orders import parse_orders  # noqa: E402
from graphaudit.frontends.torch import audit_function, derivative_orders  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _registry_kept():
    with tm.op_registry_kept():
        yield


def nested(order):
    """Order ``order`` written out as a PINN writes it."""
    def program(model, x):
        x = x.detach().requires_grad_(True)
        y = model(x)
        for _ in range(order):
            y = torch.autograd.grad(y.sum(), x, create_graph=True)[0]
        return y
    return program


def test_each_row_is_audit_function_of_its_orders_program():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 6), torch.nn.Tanh(), torch.nn.Linear(6, 1)).double()
    x = torch.randn(4, 2, dtype=torch.float64)
    rows = derivative_orders(lambda m, x: m(x), x, params=model, max_order=3).to_dict()["orders"]
    assert [row["order"] for row in rows] == [1, 2, 3]
    for row in rows:
        report = audit_function(nested(row["order"]), x, params=model)
        original, merged = report.forms["original"].cost, report.forms["original_merged"].cost
        assert (row["nodes"], row["flops"], row["merged_nodes"], row["merged_flops"]) == (
            original.nodes, original.flops, merged.nodes, merged.flops)
    for previous, row in zip(rows, rows[1:]):
        assert row["growth"] == row["flops"] / previous["flops"]
        assert row["merged_growth"] == row["merged_flops"] / previous["merged_flops"]
    assert rows[0]["growth"] is None and rows[0]["merged_growth"] is None


@pytest.mark.parametrize("n", [5, 7])
def test_one_layer_tanh_growth_follows_the_hand_count(n):
    """u = tanh(x w + b), x of shape (n, 1), w and b of shape 1: every value is n long, so each op costs
    n times its per-element FLOPs (graphaudit's rules: addmm and mm 2, tanh_backward(g, y) = g (1 - y^2) 3,
    tanh, sum, mul, add 1; views and ones_like 0).

    order 1: the forward addmm 2n, tanh n; sum(u) n; tanh's backward tanh_backward 3n; addmm's
             backward w.r.t. x, mm 2n                                                         = 9n
    order 2 adds: sum n; back through order 1's mm, mm 2n; through tanh_backward w.r.t. y
             (its seed g is ones, free of x): g' * g * (-2 y), three muls 3n; through tanh,
             tanh_backward 3n; through addmm, mm 2n                                          = 11n -> 20n
    order 3 adds: sum n; back through order 2's last mm, mm 2n; through its tanh_backward w.r.t.
             its seed (which now depends on x) tanh_backward 3n; the y-terms of both
             tanh_backward nodes and of the three muls, six muls and an add 7n; through tanh,
             tanh_backward 3n; through addmm, mm 2n                                          = 18n -> 38n
    Merging finds one repeat of n FLOPs: order 3 rebuilds order 2's -2 y (a mul of y alone) = 37n.
    """
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(1, 1), torch.nn.Tanh()).double()
    x = torch.randn(n, 1, dtype=torch.float64)
    rows = derivative_orders(lambda m, x: m(x), x, params=model, max_order=3).to_dict()["orders"]
    assert [row["flops"] for row in rows] == [9 * n, 20 * n, 38 * n]
    assert [row["merged_flops"] for row in rows] == [9 * n, 20 * n, 37 * n]
    assert [row["growth"] for row in rows] == [None, 20 / 9, 38 / 20]
    assert [row["merged_growth"] for row in rows] == [None, 20 / 9, 37 / 20]


def test_orders_refuse_bad_input_in_one_line():
    model = torch.nn.Linear(1, 1)
    with pytest.raises(ValueError, match="max_order must be an int >= 1, got 0"):
        derivative_orders(lambda m, x: m(x), torch.ones(2, 1), params=model, max_order=0)
    with pytest.raises(TypeError, match="x must be a floating-point tensor, got list"):
        derivative_orders(lambda m, x: m(x), [1.0], params=model)
    assert parse_orders("1..6") == 6 and parse_orders("3") == 3
    with pytest.raises(ValueError, match="orders must run from 1 up"):
        parse_orders("2..4")
