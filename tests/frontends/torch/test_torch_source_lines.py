"""PyTorch reports name the user's lines (from each FX node's stack_trace) and advise in PyTorch's words."""

from __future__ import annotations

import importlib.util

import pytest

torch = pytest.importorskip("torch")

import torch_models as tm  # noqa: E402

from graphaudit.frontends.torch import audit  # noqa: E402

PROGRAM = '''\
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(6, 5)
        self.second = nn.Linear(5, 4)

    def forward(self, x):
        h = torch.tanh(self.first(x))  # line 12
        return self.second(h)  # line 13


def loss_fn(model, x):
    return model(x).square().mean()  # line 17


NET = Net()


def dict_loss(params, x):
    out = torch.func.functional_call(NET, params, (x,))  # line 24
    return (out - 1).pow(2).sum()  # line 25
'''


@pytest.fixture(autouse=True, scope="module")
def _registry_kept():
    with tm.op_registry_kept():
        yield


def load(tmp_path):
    path = tmp_path / "user_net.py"
    path.write_text(PROGRAM)
    spec = importlib.util.spec_from_file_location("user_net", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, path


@pytest.mark.parametrize("materialize", [True, False])
def test_rows_name_the_users_lines_and_the_advice_saves_the_duplicated_work(tmp_path, monkeypatch, materialize):
    monkeypatch.chdir(tmp_path)
    module, path = load(tmp_path)
    torch.manual_seed(0)
    report = audit(module.loss_fn, torch.randn(3, 6), params=module.Net(), materialize=materialize)
    data = report.to_dict()
    lines = {row["source"]["line"] for row in data["duplicated"]["top"] if row["source"] is not None}
    files = {row["source"]["file"] for row in data["duplicated"]["top"] if row["source"] is not None}
    assert files == {"user_net.py"}
    assert lines <= {12, 13, 17} and 13 in lines  # the second layer's input gradient is what the calls repeat
    rows = data["duplicated"]["by_forward_node"]
    # ops a module's forward runs carry the line in it; the loss's own ops (square, mean) carry the loss's line
    by_line = {row["source"]["line"]: row for row in rows.values() if row["source"] is not None}
    assert {12, 13, 17} <= set(by_line)
    assert by_line[13]["calls"] > 1
    (advice,) = data["advice"]
    assert advice["saves_flops"] == data["duplicated"]["flops"] > 0
    assert advice["saves_nodes"] == data["duplicated"]["nodes"]
    assert "torch.autograd.grad" in advice["rewrite"]
    assert "user_net.py:13" in report.to_text()


def forward_lines(report):
    """``{op: {line}}`` of the forward nodes of the report's joint form, from the sources the import gave."""
    found = {}
    for node, source in report.sources.items():
        if node.call is None and not node.is_leaf:
            found.setdefault(node.op, set()).add(source.line)
    return found


def line_holding(path, text):
    (number,) = [i for i, line in enumerate(path.read_text().splitlines(), start=1) if text in line]
    return number


def test_a_loss_fns_own_ops_carry_its_lines_with_a_module_and_with_a_params_dict(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module, path = load(tmp_path)
    torch.manual_seed(0)
    x = torch.randn(3, 6)
    with_module = forward_lines(audit(module.loss_fn, x, params=module.Net()))
    loss_line = line_holding(path, ".square().mean()")
    assert with_module["aten.pow"] == with_module["aten.mean"] == {loss_line}
    assert with_module["aten.tanh"] == {line_holding(path, "torch.tanh(self.first(x))")}
    params = {name: p.detach().clone().requires_grad_(True) for name, p in module.NET.named_parameters()}
    with_dict = forward_lines(audit(module.dict_loss, x, params=params))
    assert with_dict["aten.pow"] == with_dict["aten.sum"] == with_dict["aten.sub"] == {line_holding(path, ".pow(2)")}
    assert with_dict["aten.tanh"] == {line_holding(path, "torch.tanh(self.first(x))")}
    # a layer of torch's own (nn.Linear) is not the user's code: its ops carry the line that called it
    assert with_dict["aten.addmm"] == {line_holding(path, "torch.tanh(self.first(x))"),
                                      line_holding(path, "return self.second(h)")}
