"""frontends/torch: capture on fake tensors, the FX import (attrs, results, provenance, in-place ops), run_aten.

Imported graphs are evaluated by graphaudit's interpreter (each node through
``run_aten``) and compared with PyTorch's own eager gradients, in float64.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch_models as tm  # noqa: E402

import graphaudit as ga  # noqa: E402
from graphaudit.frontends.torch import audit, from_fx  # noqa: E402
from graphaudit.frontends.torch.capture import capture  # noqa: E402
from graphaudit.core.ops import get_op  # noqa: E402

SMALL = {
    "seed_mlp": lambda: tm.seed_mlp((6, 5, 4, 3, 2), 3, dtype=torch.float64),
    "transformer": lambda: tm.transformer(8, 2, 16, batch=2, seq=3, classes=3, dtype=torch.float64),
    "convnet": lambda: tm.convnet(channels=3, size=4, batch=2, classes=3, dtype=torch.float64),
    "wgan_gp": lambda: tm.wgan_gp(features=4, hidden=5, batch=3, dtype=torch.float64),
}


@pytest.fixture(autouse=True, scope="module")
def _registry_kept():
    with tm.op_registry_kept():
        yield


def nodes_of(report, form="separate"):
    return ga.topological_order(report.forms[form].outputs)


def feed_of(report, model, *inputs, loss_fn):
    """Each leaf of the report's graphs by name, from the model's state and the inputs (as the audit names them)."""
    state = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    names = list(inspect.signature(loss_fn).parameters)[1:]
    state.update(zip(names, inputs))
    leaves = [n for n in nodes_of(report) + nodes_of(report, "joint") if n.op in ("parameter", "placeholder")]
    return {leaf: state[leaf.name].detach().numpy() for leaf in leaves}


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(set(SMALL) - {"seed_mlp"}))  # seed_mlp: tests/frontends/test_conformance.py
def test_imported_forms_evaluate_to_eager_gradients(model):
    loss_fn, net, *inputs = SMALL[model]()
    report = audit(loss_fn, *inputs, params=net)
    feed = feed_of(report, net, *inputs, loss_fn=loss_fn)
    eager = tm.eager_grads(loss_fn, net, *inputs)
    assert len(report.wrt) == len(eager) == len(list(net.parameters()))
    for form in ("separate", "joint", "separate_merged"):
        values = ga.evaluate(report.forms[form].outputs, feed)
        for name, got, want in zip(report.wrt, values, eager):
            np.testing.assert_allclose(got, want.numpy(), rtol=1e-10, atol=1e-12, err_msg=f"{model} {form} {name}")


def test_contract_attrs_inputs_and_results():
    loss_fn, net, *inputs = SMALL["convnet"]()
    report = audit(loss_fn, *inputs, params=net)
    nodes = nodes_of(report)
    assert not any(n.op == "aten.detach" for n in nodes), "detach is dropped"
    mm = next(n for n in nodes if n.op == "aten.addmm")
    assert mm.attr("overload") == "default" and mm.attr("tensors") == ("self", "mat1", "mat2")
    assert mm.attr("beta") == 1 and mm.attr("alpha") == 1, "defaults are filled in"
    conv_backward = [n for n in nodes if n.op == "aten.convolution_backward"]
    assert conv_backward and all(n.attr("output_mask") is None for n in conv_backward)
    assert {n.attr("output") for n in conv_backward} == {0, 1, 2}
    assert all(n.attr("tensors") == ("grad_output", "input", "weight") for n in conv_backward)
    assert all(n.attr("output") is None for n in nodes if n.op in ("aten.addmm", "aten.t", "aten.relu"))
    # BatchNorm writes its running statistics, which nothing reads again: its results are values
    norms = [n for n in nodes if n.op == "aten.native_batch_norm"]
    assert norms and get_op("aten.native_batch_norm").pure and all(n.call is None for n in norms)


def test_tensor_list_arguments_are_named_by_position():
    def loss_fn(params, x):
        return torch.cat([params["a"], x, params["a"]]).sum()

    report = audit(loss_fn, torch.ones(2, 3), params={"a": torch.ones(1, 3)})
    cat = next(n for n in nodes_of(report) if n.op == "aten.cat")
    assert cat.attr("tensors") == ("tensors[0]", "tensors[1]", "tensors[2]")
    assert [i.name for i in cat.inputs] == ["a", "x", "a"]
    (value,) = ga.evaluate([cat], {"a": np.full((1, 3), 2.0, np.float32), "x": np.zeros((2, 3), np.float32)})
    assert value.shape == (4, 3) and value.sum() == 12.0


def test_provenance_calls_origins_and_module_paths():
    """A 2-layer model: every backward node names its call; its origin is the forward op it differentiates."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    x, y = torch.randn(5, 4), torch.randint(0, 2, (5,))
    report = audit(tm.classifier_loss, x, y, params=net)
    assert report.wrt == ["0.weight", "0.bias", "2.weight", "2.bias"]
    names = report.names
    forward = {names[n] for n in nodes_of(report) if n.call is None and not n.is_leaf}
    assert {"0.t_1", "0.addmm_1", "1.tanh_1", "2.t_1", "2.addmm_1", "_log_softmax_1"} <= forward
    backward = [n for n in nodes_of(report) if n.call is not None]
    assert {n.call.label for n in backward} == {f"grad(cost, [{w}])" for w in report.wrt}
    # the input-gradient product of layer 2 is built by the calls for layer 1's weight and bias
    products = [n for n in backward if n.op == "aten.mm" and names.get(n.origin) == "2.addmm_1"
                and n.shape == (5, 3)]
    assert sorted(n.call.label for n in products) == ["grad(cost, [0.bias])", "grad(cost, [0.weight])"]
    assert all(n.origin is not None and n.origin.call is None for n in backward if n.op != "aten.ones_like")
    # the report reads module paths: the duplicated product is layer 2's
    assert "2.addmm_1" in report.duplicated["by_forward_node"]
    assert report.duplicated["by_call"]["grad(cost, [0.bias])"]["nodes"] > 0


def test_in_place_op_nobody_reads_again_is_a_value():
    def loss_fn(params, x):
        h = x @ params["w"]
        h.add_(1.0)  # nothing reads h as it was: imported as aten.add
        return (h * h).sum()

    w, x = torch.randn(3, 2, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    report = audit(loss_fn, x, params={"w": w})
    ops = {n.op for n in nodes_of(report)}
    assert "aten.add" in ops and "aten.add_" not in ops
    assert get_op("aten.add").pure
    (got,) = ga.evaluate(report.forms["separate"].outputs, {"w": w.numpy(), "x": x.numpy()})
    wr = w.clone().requires_grad_(True)
    (want,) = torch.autograd.grad(loss_fn({"w": wr}, x), [wr])
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-12)
    assert report.merged_equals_joint


def test_a_view_made_before_a_write_reads_the_written_value():
    def loss_fn(params, x):
        h = x @ params["w"]
        flat = h.view(-1)  # a view made before the write, read after it: it sees the doubled values
        h.mul_(2.0)
        return (flat * params["v"]).sum()

    w, v, x = (torch.randn(*shape, dtype=torch.float64) for shape in ((3, 2), (8,), (4, 3)))
    report = audit(loss_fn, x, params={"w": w, "v": v})
    nodes = nodes_of(report)
    assert not any(n.op == "aten.mul_" for n in nodes), "the write arrives as its value"
    (double,) = [n for n in nodes if n.op == "aten.mul" and n.call is None and n.inputs[0].op == "aten.mm"]
    assert get_op("aten.mul").pure
    # the view is made again from the written value: it is what the loss reads
    assert any(n.op == "aten.view" and n.inputs == (double,) for n in nodes)
    assert report.merged_equals_joint
    got = ga.evaluate(report.forms["separate"].outputs, {"w": w.numpy(), "v": v.numpy(), "x": x.numpy()})
    wr, vr = w.clone().requires_grad_(True), v.clone().requires_grad_(True)
    want = torch.autograd.grad(loss_fn({"w": wr, "v": vr}, x), [wr, vr])
    for g, e in zip(got, want):
        np.testing.assert_allclose(g, e.numpy(), rtol=1e-12)


def test_nothing_is_allocated_and_the_model_is_unchanged():
    """Tracing runs on fake tensors: a meta model audits, and a real model's tensors are not touched."""
    loss_fn, net, *inputs = SMALL["convnet"]()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    audit(loss_fn, *inputs, params=net)
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "BatchNorm's running stats are the user's"
    assert all(p.grad is None for p in net.parameters())
    captured = capture(loss_fn, net, tuple(inputs))
    fake_mode = torch._subclasses.fake_tensor.FakeTensor
    assert all(isinstance(n.meta["val"], fake_mode) for n in captured.graph.graph.nodes if n.op == "placeholder")


def test_from_fx_checks_its_leaves():
    loss_fn, net, *inputs = SMALL["seed_mlp"]()
    captured = capture(loss_fn, net, tuple(inputs))
    with pytest.raises(ValueError, match="leaves for a graph with"):
        from_fx(captured.graph, [], [])
    leaves = [ga.placeholder(f"p{i}", (1,)) for i in range(10)]
    with pytest.raises(ValueError, match="leaf p0 is float32"):
        from_fx(captured.graph, leaves, [])


def test_tensor_constants_made_inside_the_loss_become_constants():
    def loss_fn(params, x):
        return ((x @ params["w"]) * torch.tensor([1.0, 2.0])).sum()

    report = audit(loss_fn, torch.ones(3, 2), params={"w": torch.ones(2, 2)})
    assert any(n.op == "constant" and n.shape == (2,) for n in nodes_of(report))
    (got,) = ga.evaluate(report.forms["separate"].outputs, {"w": np.ones((2, 2), np.float32),
                                                            "x": np.ones((3, 2), np.float32)})
    np.testing.assert_array_equal(got, [[3.0, 6.0], [3.0, 6.0]])  # x^T @ (ones * [1, 2]): column sums 3 * c
