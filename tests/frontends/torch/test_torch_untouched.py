"""Tracing never writes to the user's tensors: a BatchNorm's buffers read from the module (the params
dict names only parameters) keep their values through audit, audit_function and deduplicate."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from graphaudit.frontends.torch import audit, audit_function, deduplicate  # noqa: E402
from graphaudit.frontends.torch.untouched import untouched  # noqa: E402


def model_and_loss():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Tanh(),
                                torch.nn.Linear(4, 1)).double().train()
    params = {name: p.detach().clone().requires_grad_(True) for name, p in model.named_parameters()}

    def loss(params, x):
        return (torch.func.functional_call(model, params, (x,)) ** 2).mean()

    return model, params, loss, torch.randn(5, 3, dtype=torch.float64)


def buffers_of(model):
    return {name: b.clone() for name, b in model.named_buffers()}


def assert_unchanged(model, before):
    for name, b in model.named_buffers():
        assert torch.equal(b, before[name]), name


def test_audit_audit_function_and_deduplicate_leave_the_modules_buffers_as_they_were():
    model, params, loss, x = model_and_loss()
    before = buffers_of(model)
    audit(loss, x, params=params)
    assert_unchanged(model, before)
    audit_function(lambda params, x: torch.autograd.grad(loss(params, x), list(params.values())), x, params=params)
    assert_unchanged(model, before)
    with pytest.warns(UserWarning, match="fn writes to 3 tensors it reads from elsewhere"):
        fast = deduplicate(lambda params, x: torch.autograd.grad(loss(params, x), list(params.values())), params, x)
    assert_unchanged(model, before)  # neither the trace nor the check against fn left fn's writes behind
    fast(params, x)
    assert_unchanged(model, before)  # running the merged graph writes nothing


def test_the_mode_restores_what_a_fake_mode_writes_for_real():
    fake_tensor = pytest.importorskip("torch._subclasses.fake_tensor")
    counter = torch.tensor(0)
    with fake_tensor.FakeTensorMode(allow_non_fake_inputs=True):
        with untouched():
            counter.add_(1)  # every input is real: the fake mode runs it for real
    assert counter.item() == 0
    with fake_tensor.FakeTensorMode(allow_non_fake_inputs=True):
        counter.add_(1)
    assert counter.item() == 1  # what happens without the mode: why it exists
