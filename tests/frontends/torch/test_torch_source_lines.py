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


def load(tmp_path, name="user_net", text=PROGRAM):
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(name, path)
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


def test_a_loss_fns_own_ops_carry_its_lines_with_a_module_and_with_a_params_dict(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module, _ = load(tmp_path)
    torch.manual_seed(0)
    x = torch.randn(3, 6)
    with_module = forward_lines(audit(module.loss_fn, x, params=module.Net()))
    loss_line = line_of(PROGRAM, ".square().mean()")
    assert with_module["aten.pow"] == with_module["aten.mean"] == {loss_line}
    assert with_module["aten.tanh"] == {line_of(PROGRAM, "torch.tanh(self.first(x))")}
    params = {name: p.detach().clone().requires_grad_(True) for name, p in module.NET.named_parameters()}
    with_dict = forward_lines(audit(module.dict_loss, x, params=params))
    assert with_dict["aten.pow"] == with_dict["aten.sum"] == with_dict["aten.sub"] == {line_of(PROGRAM, ".pow(2)")}
    assert with_dict["aten.tanh"] == {line_of(PROGRAM, "torch.tanh(self.first(x))")}
    # a layer of torch's own (nn.Linear) is not the user's code: its ops carry the line that called it
    assert with_dict["aten.addmm"] == {line_of(PROGRAM, "torch.tanh(self.first(x))"),
                                      line_of(PROGRAM, "return self.second(h)")}


LOSSES = '''\
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(6, 5)
        self.second = nn.Linear(5, 4)

    def forward(self, x):
        return self.second(torch.tanh(self.first(x)))


def squared_error(prediction, y):
    return (prediction - y) ** 2


def module_loss(model, x, y):
    return squared_error(model(x), y).mean()


def dict_loss(params, x, y):
    hidden = torch.tanh(x @ params["w1"])
    return ((hidden @ params["w2"] - y) ** 2).mean()
'''


def line_of(text, fragment):
    """The 1-based number of the one line of ``text`` that holds ``fragment``."""
    (line,) = [i for i, code in enumerate(text.splitlines(), 1) if fragment in code]
    return line


def load_losses(tmp_path):
    return load(tmp_path, "user_losses", LOSSES)[0]


def lines_by_op(report):
    """``{op: {line, ...}}`` of the report's forward nodes that have a line."""
    found = {}
    for node, source in report.sources.items():
        assert source.file == "user_losses.py"
        found.setdefault(node.op, set()).add(source.line)
    return found


def test_a_loss_functions_own_ops_and_its_helpers_name_their_lines_beside_the_modules(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = load_losses(tmp_path)
    torch.manual_seed(0)
    x, y = torch.randn(3, 6), torch.randn(3, 4)
    report = audit(module.module_loss, x, y, params=module.Net())
    by_op = lines_by_op(report)
    mean, layers = line_of(LOSSES, "squared_error(model(x), y).mean()"), line_of(LOSSES, "return self.second(")
    # the helper's ops its own line (the innermost user frame), the loss function's mean its line,
    # the module's ops still their forward's line
    assert by_op["aten.sub"] == by_op["aten.pow"] == {line_of(LOSSES, "(prediction - y) ** 2")}
    assert by_op["aten.mean"] == {mean}
    assert by_op["aten.tanh"] == by_op["aten.addmm"] == {layers}
    # each separate call repeats the mean's backward: its rows name the loss function's line
    data = report.to_dict()["duplicated"]
    mean_rows = [row for row in data["by_forward_node"].values() if row["op"] == "aten.mean"]
    assert mean_rows and all(row["calls"] == 2 * 2 for row in mean_rows)  # two layers, a weight and a bias each
    assert {row["source"]["line"] for row in mean_rows} == {mean}
    top_lines = {row["source"]["line"] for row in data["top"] if row["source"] is not None}
    assert {mean, layers} <= top_lines
    assert f"user_losses.py:{mean}" in report.to_text()


def test_a_params_dicts_loss_names_its_lines(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = load_losses(tmp_path)
    torch.manual_seed(0)
    params = {"w1": torch.randn(6, 5, requires_grad=True), "w2": torch.randn(5, 4, requires_grad=True)}
    report = audit(module.dict_loss, torch.randn(3, 6), torch.randn(3, 4), params=params)
    by_op = lines_by_op(report)
    hidden, loss = line_of(LOSSES, "hidden = torch.tanh("), line_of(LOSSES, "- y) ** 2).mean()")
    assert by_op["aten.tanh"] == {hidden}
    assert by_op["aten.mm"] == {hidden, loss}
    assert by_op["aten.sub"] == by_op["aten.pow"] == by_op["aten.mean"] == {loss}
    assert set(report.sources) == set(report.names)  # every forward node has its line
    rows = report.to_dict()["duplicated"]["by_forward_node"].values()
    assert {row["source"]["line"] for row in rows if row["op"] == "aten.mean"} == {loss}
