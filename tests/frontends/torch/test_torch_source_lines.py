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
    # ops a module's forward runs carry the user's line; the loss's own ops (line 17, called from graphaudit's
    # wrapper) do not yet: make_fx's recorded trace stops at the wrapper
    by_line = {row["source"]["line"]: row for row in rows.values() if row["source"] is not None}
    assert {12, 13} <= set(by_line)
    assert by_line[13]["calls"] > 1
    (advice,) = data["advice"]
    assert advice["saves_flops"] == data["duplicated"]["flops"] > 0
    assert advice["saves_nodes"] == data["duplicated"]["nodes"]
    assert "torch.autograd.grad" in advice["rewrite"]
    assert "user_net.py:13" in report.to_text()
