"""Scientific ML in PyTorch: the user's own grad calls named by their lines, what they repeat against
hand counts, the merged programs against PyTorch's own derivatives, parameters with no gradient."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch_models as tm  # noqa: E402  (puts examples/ on the path)
import torch_sciml as sciml  # noqa: E402

import graphaudit as ga  # noqa: E402
from graphaudit.frontends.torch import audit, audit_function, named_leaves  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _registry_kept():
    with tm.op_registry_kept():
        yield


def line_of(marker: str) -> str:
    """``examples/torch_sciml.py:N``: the line of the example that holds ``marker``."""
    lines = inspect.getsource(sciml).splitlines()
    found = [number for number, text in enumerate(lines, start=1) if marker in text]
    assert len(found) == 1, marker
    return f"examples/torch_sciml.py:{found[0]}"


def call_key(where: str) -> str:
    return f"torch.autograd.grad at {where}"


def assert_merged_is_eager(report, function, model, *inputs) -> None:
    """The merged program, run by numpy on the real tensors, gives what eager PyTorch gives (float64)."""
    expected = function(model, *inputs)
    expected = [expected] if isinstance(expected, torch.Tensor) else list(expected)
    feed = named_leaves(function, *inputs, params=model)
    for got, want in zip(ga.evaluate(report.merged.outputs, feed), expected, strict=True):
        np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.fixture(autouse=True)
def _in_the_repository(monkeypatch):
    monkeypatch.chdir(Path(sciml.__file__).resolve().parents[1])  # source lines are shown relative to the working directory


def test_pinn_calls_are_named_by_their_lines_and_the_u_x_call_repeats_the_backward_of_u():
    """u = W3 tanh(W2 tanh(W1 [x t])): the u_x call runs again the backward of u.sum() that the u_t call
    ran: per point, the input-gradient products through W3 (1 x H), W2 (H x H) and W1 (H x 2)."""
    model, (x, t) = sciml.pinn(), sciml.points()
    n, h = x.shape[0], sciml.WIDTH
    report = audit_function(sciml.heat_residual, x, t, params=model)
    u_t, u_x, u_xx = (line_of(f"# the {name} call") for name in ("u_t", "u_x", "u_xx"))
    assert [c["where"] for c in report.framework["user_calls"]] == [u_t, u_x, u_xx]
    duplicated = report.duplicated
    assert duplicated["matmul_flops"] == 2 * n * 1 * h + 2 * n * h * h + 2 * n * h * 2
    assert duplicated["by_call"][call_key(u_x)]["matmul_flops"] == duplicated["matmul_flops"]
    joint, plain = report.to_dict()["advice"]
    assert [f"{s['file']}:{s['line']}" for s in joint["where"]] == [u_t, u_x]
    assert joint["saves_flops"] == duplicated["by_call"][call_key(u_x)]["flops"]
    assert f"over the inputs of both calls ({u_t}, {u_x})" in report.to_text()
    assert_merged_is_eager(report, sciml.heat_residual, model, x, t)


def test_pinn_loss_audit_lists_the_last_bias_as_without_gradient():
    """The residual holds derivatives of u only: u's last bias adds a constant, which they lose."""
    model, (x, t) = sciml.pinn(), sciml.points()
    report = audit(sciml.pinn_loss, x, t, params=model)
    data = report.to_dict()
    assert data["framework"]["no_gradient"] == ["4.bias"]
    assert data["wrt"] == [name for name, _ in model.named_parameters() if name != "4.bias"]
    assert "does not reach (no gradient; read as constants, not audited): 4.bias" in report.to_text()
    assert report.merged_equals_joint
    feed = named_leaves(sciml.pinn_loss, x, t, params=model)
    params = [p for name, p in model.named_parameters() if name != "4.bias"]
    expected = torch.autograd.grad(sciml.pinn_loss(model, x, t), params)
    for got, want in zip(ga.evaluate(report.forms["separate"].outputs, feed), expected, strict=True):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-10, atol=1e-12)


def test_a_params_dict_naming_some_of_a_modules_tensors_traces_the_rest_as_constants():
    model, (x, t) = sciml.pinn(), sciml.points()
    chosen = {"0.weight": model[0].weight, "2.weight": model[2].weight}

    def loss(params, x, t):
        return (torch.func.functional_call(model, params, (torch.cat([x, t], 1),)) ** 2).mean()

    report = audit(loss, x, t, params=chosen)
    assert report.wrt == ["0.weight", "2.weight"] and report.merged_equals_joint
    expected = torch.autograd.grad(loss(chosen, x, t), list(chosen.values()))
    feed = named_leaves(loss, x, t, params=chosen)
    for got, want in zip(ga.evaluate(report.forms["joint"].outputs, feed), expected, strict=True):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-10, atol=1e-12)


def test_a_params_dict_of_a_training_batch_norm_model_leaves_its_written_buffers_constants():
    """The BatchNorm's buffers are read from the module (constants of the trace) and written by it:
    the writes are lifted like an input's, and the gradients are still PyTorch's."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Tanh(),
                                torch.nn.Linear(4, 1)).double().train()
    chosen = {name: p for name, p in model.named_parameters()}
    x = torch.randn(5, 3, dtype=torch.float64)
    statistics = {name: b.clone() for name, b in model.named_buffers()}

    def loss(params, x):
        return (torch.func.functional_call(model, params, (x,)) ** 2).mean()

    report = audit(loss, x, params=chosen)
    assert report.merged_equals_joint
    assert all(torch.equal(b, statistics[name]) for name, b in model.named_buffers())  # traced on fakes
    feed = named_leaves(loss, x, params=chosen)
    expected = torch.autograd.grad(loss(chosen, x), list(chosen.values()))
    for got, want in zip(ga.evaluate(report.forms["joint"].outputs, feed), expected, strict=True):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-10, atol=1e-12)


def test_forces_and_stress_two_calls_repeat_what_one_call_does_once():
    """E = sum over the N^2 ordered pairs of V(|r_i - r_j|^2), V = W2 tanh(W1 s + b1) + b2 of width H.
    Both calls run E's backward down to the squared distances: the products through W2 (1 x H) and
    W1 (H x 1) for each pair, 2 N^2 H FLOPs each; below, positions @ cell splits into two products
    of which each call needs its own."""
    model, (positions, cell) = sciml.potential(), sciml.atoms()
    n, h = positions.shape[0], sciml.WIDTH
    two = audit_function(sciml.forces_and_stress, positions, cell, params=model)
    one = audit_function(sciml.forces_and_stress_joint, positions, cell, params=model)
    forces, stress = line_of("# the forces call"), line_of("# the stress call")
    assert [c["where"] for c in two.framework["user_calls"]] == [forces, stress]
    assert two.duplicated["matmul_flops"] == 2 * (2 * n * n * h)
    assert list(two.duplicated["by_call"]) == [call_key(stress)]
    advice = two.to_dict()["advice"][0]
    original, merged = two.forms["original"].cost, two.forms["original_merged"].cost
    assert advice["saves_flops"] == original.flops - one.forms["original"].cost.flops == two.duplicated["flops"]
    assert advice["saves_nodes"] == original.nodes - one.forms["original"].cost.nodes
    assert merged.flops == one.forms["original"].cost.flops and one.duplicated["nodes"] == 0
    assert_merged_is_eager(two, sciml.forces_and_stress, model, positions, cell)
    assert_merged_is_eager(one, sciml.forces_and_stress_joint, model, positions, cell)


def test_maml_meta_gradient_differentiates_through_the_inner_call_and_repeats_no_flop():
    """The meta call's backward runs through the inner call's backward graph (second order), which it
    does not rebuild: it only takes the weights' transposes again (views, 0 FLOP)."""
    model, batch = sciml.pinn(), sciml.meta_batch()
    report = audit_function(sciml.maml_step, *batch, params=model)
    inner, meta = line_of("# the inner step's call"), line_of("# the meta-gradient's call")
    assert [c["where"] for c in report.framework["user_calls"]] == [inner, meta]
    assert report.duplicated["flops"] == 0 and set(report.duplicated["by_op"]) == {"aten.t"}
    assert len(report.to_dict()["advice"]) == 1  # the calls differentiate different losses: no joint-call advice
    assert_merged_is_eager(report, sciml.maml_step, model, *batch)


def test_laplacian_loop_repeats_the_seed_free_part_of_tanh_double_backward():
    """Each per-dimension call differentiates tanh_backward(g, y) = g (1 - y^2) again; its rule's term
    -2 y g for each hidden layer (two products of n x H elementwise) does not depend on the seed, so
    the D-th call rebuilds what the first built: (D - 1) x 2 layers x 2 x n H FLOPs."""
    model, (x, t) = sciml.pinn(), sciml.points()
    xt = torch.cat([x, t], dim=1)
    n, d, h = xt.shape[0], xt.shape[1], sciml.WIDTH
    loop = audit_function(sciml.laplacian_loop, xt, params=model)
    per_dimension = line_of("laplacian = laplacian + torch.autograd.grad")
    assert [c["where"] for c in loop.framework["user_calls"]][1:] == [per_dimension, per_dimension + "#2"]
    assert loop.duplicated["flops"] == (d - 1) * 2 * 2 * n * h
    assert loop.duplicated["by_call"][call_key(per_dimension + "#2")]["flops"] == loop.duplicated["flops"]
    assert_merged_is_eager(loop, sciml.laplacian_loop, model, xt)
    hessian = audit_function(sciml.laplacian_hessian, xt, params=model)
    assert hessian.framework["user_calls"] == []  # torch.func's own grad calls are not the user's
    assert_merged_is_eager(hessian, sciml.laplacian_loop, model, xt)


def test_a_derivative_cache_keyed_on_identity_misses_on_a_slice():
    """u_t comes from the cached Jacobian w.r.t. xt; u_x is asked w.r.t. the slice x = xt[:, 0:1], a new
    key: the cache's second call runs u's backward again (the same products as the PINN's)."""
    model, (x, t) = sciml.pinn(), sciml.points()
    xt = torch.cat([x, t], dim=1)
    n, h = xt.shape[0], sciml.WIDTH
    report = audit_function(sciml.cached_residual, xt, params=model)
    cache = line_of("# the cache's call")
    assert [c["where"] for c in report.framework["user_calls"]] == [cache, cache + "#2", cache + "#3"]
    assert report.duplicated["by_call"][call_key(cache + "#2")]["matmul_flops"] == (
        2 * n * 1 * h + 2 * n * h * h + 2 * n * h * 2)
    joint = report.to_dict()["advice"][0]
    assert f"({cache}, {cache}#2)" in joint["rewrite"] and len(joint["where"]) == 1  # one line, two passes
    assert_merged_is_eager(report, sciml.cached_residual, model, xt)


def test_the_example_runs_and_its_targets_load(capsys):
    loss_fn, model, *inputs = sciml.target()
    assert loss_fn is sciml.pinn_loss and isinstance(model, torch.nn.Module) and len(inputs) == 2
    u, model, xt = sciml.orders()
    assert torch.equal(u(model, xt), model(xt))
