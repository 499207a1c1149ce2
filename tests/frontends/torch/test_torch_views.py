"""frontends/torch: writes into views, in-place ops and strided reads give eager PyTorch's values.

The importer reads the second, functionalized trace (:func:`capture.functional`): every
gradient here is evaluated from the imported separate, joint and merged forms (float64) and
compared with ``torch.autograd.grad`` on the real model. Each test also checks that the first
trace held the writes it is about, so that it would fail if the program stopped making them.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torch_models as tm  # noqa: E402

import graphaudit as ga  # noqa: E402
from graphaudit.frontends.torch import aten, audit, audit_function, from_fx, named_leaves  # noqa: E402
from graphaudit.frontends.torch.capture import capture, functional  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _registry_kept():
    with tm.op_registry_kept():
        yield


def channels_last(module_or_tensor):
    return module_or_tensor.to(memory_format=torch.channels_last)


def classify(model, x, y):
    return F.cross_entropy(model(x), y)


class LayerNorm2d(nn.LayerNorm):
    """ConvNeXt's (timm's) layer norm over channels: permute to channels last, normalise, permute back."""

    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvNeXt(nn.Module):
    """A stem, a ConvNeXt block (depthwise 7x7, permuted layer norm and MLP, layer scale, residual), a pooled head."""

    def __init__(self, c=4, classes=3):
        super().__init__()
        self.stem, self.stem_norm = nn.Conv2d(3, c, 2, stride=2), LayerNorm2d(c)
        self.dwconv, self.norm = nn.Conv2d(c, c, 7, padding=3, groups=c), nn.LayerNorm(c)
        self.pwconv1, self.pwconv2 = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)
        self.gamma = nn.Parameter(torch.full((c,), 0.5))
        self.head_norm, self.head = nn.LayerNorm(c), nn.Linear(c, classes)

    def forward(self, x):
        x = self.stem_norm(self.stem(x))
        h = self.gamma * self.pwconv2(F.gelu(self.pwconv1(self.norm(self.dwconv(x).permute(0, 2, 3, 1)))))
        x = x + h.permute(0, 3, 1, 2)
        return self.head(self.head_norm(F.adaptive_avg_pool2d(x, 1).flatten(1)))


class InPlace(nn.Module):
    """In-place ops, a BatchNorm updating its running statistics, and a write through a view of a tensor read after."""

    def __init__(self):
        super().__init__()
        self.lin1, self.norm, self.lin2 = nn.Linear(5, 6), nn.BatchNorm1d(6), nn.Linear(6, 3)
        self.offset = nn.Parameter(torch.linspace(-1, 1, 6))

    def forward(self, x):
        h = self.lin1(x)
        h.add_(self.offset)
        h = self.norm(h).relu_()
        h = h * 2.0
        h.masked_fill_(h > 1.0, 1.0)
        h[:, :2].mul_(3.0)
        return self.lin2(h)


class StridedCorner(nn.Module):
    """A channels_last convolution's top-left 2x2 window read with ``as_strided`` at the tensor's own strides."""

    def __init__(self):
        super().__init__()
        self.conv, self.head = nn.Conv2d(3, 4, 3), nn.Linear(16, 3)

    def forward(self, x):
        h = self.conv(x)
        return self.head(h.as_strided((h.shape[0], 4, 2, 2), h.stride()).flatten(1))


def pooled_channels_last():
    """The issue's program: a convolution, then ``adaptive_avg_pool2d(h, 1)`` on a channels_last input."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    return channels_last(net.double()), channels_last(x), torch.tensor([0, 2])


def programs():
    torch.manual_seed(1)
    images, labels = torch.randn(2, 3, 8, 8, dtype=torch.float64), torch.tensor([1, 2])
    return {
        "pooled channels_last": pooled_channels_last(),
        "ConvNeXt channels_last": (channels_last(ConvNeXt().double()), channels_last(images), labels),
        "in-place": (InPlace().double(), torch.randn(4, 5, dtype=torch.float64), torch.tensor([0, 2, 1, 0])),
        "as_strided channels_last": (channels_last(StridedCorner().double()),
                                     channels_last(torch.randn(2, 3, 6, 6, dtype=torch.float64)), labels),
    }


# what each program's first trace writes, which the second must not
WRITES = {
    "pooled channels_last": {"aten.as_strided_", "aten.copy_"},
    "ConvNeXt channels_last": {"aten.as_strided_", "aten.copy_"},
    "in-place": {"aten.add_", "aten.relu_", "aten.masked_fill_", "aten.mul_", "aten.copy_"},
    "as_strided channels_last": set(),
}


def op_keys(graph_module) -> set[str]:
    return {aten.op_key(n.target)[0] for n in graph_module.graph.nodes
            if n.op == "call_function" and isinstance(n.target, torch._ops.OpOverload)}


def assert_eager(outputs, feed, eager, what):
    for i, (got, want) in enumerate(zip(ga.evaluate(outputs, feed), eager, strict=True)):
        assert np.abs(want.numpy()).max() > 0, f"{what}: gradient {i} is zero, the check would be empty"
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-10, atol=1e-12, err_msg=f"{what}: gradient {i}")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(WRITES))
def test_imported_forms_evaluate_to_eager_gradients(name):
    net, x, y = programs()[name]
    state = copy.deepcopy(net.state_dict())
    feed = named_leaves(classify, x, y, params=net)
    report = audit(classify, x, y, params=net)
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items()), "audit changed the model"
    captured = capture(classify, net, (x, y))
    assert WRITES[name] <= op_keys(captured.traced)
    assert not any(aten.mutated_arguments(n.target) for n in captured.graph.graph.nodes
                   if isinstance(n.target, torch._ops.OpOverload)), "the imported graph writes nothing"
    eager = torch.autograd.grad(classify(net, x, y), list(net.parameters()))
    for form in ("separate", "joint", "separate_merged"):
        assert_eager(report.forms[form].outputs, feed, eager, f"{name}, {form}")
    assert report.merged_equals_joint


def test_a_write_through_a_view_becomes_a_scatter_into_its_base():
    """autograd's as_strided backward writes the gradient into a zero buffer through one view and reads the
    buffer through another: imported, the reading view is made from the scattered buffer."""
    net, x, y = pooled_channels_last()
    report = audit(classify, x, y, params=net)
    nodes = ga.topological_order(report.forms["joint"].outputs)
    (scatter,) = [n for n in nodes if n.op == "aten.as_strided_scatter"]
    assert scatter.inputs[0].op == "aten.new_zeros" and scatter.inputs[1].op == "aten.copy"
    assert any(n.op == "aten.as_strided" and n.inputs == (scatter,) for n in nodes)


def test_only_strided_reads_carry_layouts():
    net, x, y = programs()["as_strided channels_last"]
    report = audit(classify, x, y, params=net)
    nodes = [n for n in ga.topological_order(report.forms["separate"].outputs) if not n.is_leaf]
    carrying = {n.op for n in nodes if n.attr(aten.ATTR_LAYOUTS) is not None}
    assert carrying == aten.READ_BY_STRIDES
    (forward,) = [n for n in nodes if n.op == "aten.as_strided" and n.inputs[0].op == "aten.convolution"]
    h = net.conv(x)
    assert forward.attr(aten.ATTR_LAYOUTS) == ((h.stride(), 0),) and h.stride() != h.contiguous().stride()


def test_provenance_survives_the_second_trace():
    """The convnet's only writes are its BatchNorms' ``add_`` to ``num_batches_tracked``: the second trace is the
    first node for node, ``add_`` read as ``add``, with the same grad call, seq_nr and module path."""
    loss_fn, net, *inputs = tm.convnet(channels=3, size=4, batch=2, classes=3, dtype=torch.float64)
    captured = capture(loss_fn, net, tuple(inputs))
    assert captured.graph is not captured.traced
    first, second = ([n.meta["val"] for n in g.graph.nodes if n.op == "placeholder"]
                     for g in (captured.traced, captured.graph))
    assert all(isinstance(v, torch._subclasses.fake_tensor.FakeTensor) for v in second)
    assert {v.fake_mode for v in second} == {v.fake_mode for v in first}, "the second trace runs on the first's fakes"

    def provenance(graph_module):
        return [(str(n.target).replace("add_", "add"), n.meta.get("custom"), n.meta.get("seq_nr"))
                for n in graph_module.graph.nodes if n.op == "call_function"]

    assert "aten.add_" in op_keys(captured.traced)
    assert provenance(captured.graph) == provenance(captured.traced)
    assert sum(1 for _, custom, _ in provenance(captured.graph) if custom and "module" in custom) > 10


def test_a_graph_that_writes_nothing_is_traced_once():
    loss_fn, net, *inputs = tm.seed_mlp((6, 5, 4, 3, 2), 3, dtype=torch.float64)
    captured = capture(loss_fn, net, tuple(inputs))
    assert captured.graph is captured.traced


def test_backward_nodes_of_a_write_keep_their_call_and_origin():
    net, x, y = pooled_channels_last()
    report = audit(classify, x, y, params=net)
    scatters = [n for n in ga.topological_order(report.forms["separate"].outputs) if n.op == "aten.as_strided_scatter"]
    # the pool's backward is on the path to the convolution's parameters only: the calls for 0.weight and 0.bias
    assert sorted(n.call.label for n in scatters) == ["grad(cost, [0.bias])", "grad(cost, [0.weight])"]
    assert {report.names[n.origin] for n in scatters} == {"1.as_strided_1"}
    assert report.names[scatters[0].origin.inputs[0]] == "1.mean_1"


def test_stack_traces_survive_the_second_trace():
    class Program(nn.Module):  # make_fx records the frames from a forward down
        def forward(self, x):
            h = x * 2.0
            h[:1].add_(1.0)  # a write through a view: the second trace makes a slice_scatter of it
            return h.sum()

    make_fx = torch.fx.experimental.proxy_tensor.make_fx
    traced = make_fx(Program(), tracing_mode="fake", record_stack_traces=True)(torch.ones(3, 2))
    again = functional(traced)
    recorded = {n.meta.get("stack_trace") for n in traced.graph.nodes if n.op == "call_function"}
    assert "aten.slice_scatter" in op_keys(again) and None not in recorded
    assert all(n.meta.get("stack_trace") in recorded for n in again.graph.nodes if n.op == "call_function")


def test_from_fx_refuses_a_graph_that_writes():
    net, x, y = programs()["in-place"]
    captured = capture(classify, net, (x, y))
    leaves = [ga.placeholder(f"p{i}", tuple(n.meta["val"].shape), aten.numpy_dtype(n.meta["val"].dtype))
              for i, n in enumerate(n for n in captured.traced.graph.nodes if n.op == "placeholder")]
    with pytest.raises(ValueError, match=r"add_ \(aten.add_.Tensor\) writes to its argument self"):
        from_fx(captured.traced, leaves, [])  # the first write is in the forward: no grad call is read


def test_audit_function_reads_the_written_values_too():
    """Any function of the model is traced twice as well: its gradients, as it returns them, are eager's."""
    net, x, y = pooled_channels_last()

    def gradients(model, x, y):
        return torch.autograd.grad(classify(model, x, y), list(model.parameters()))

    report = audit_function(gradients, x, y, params=net)
    feed = named_leaves(gradients, x, y, params=net)
    for form in ("original", "original_merged"):
        assert_eager(report.forms[form].outputs, feed, gradients(net, x, y), form)


# --- named_leaves ----------------------------------------------------------------------------


def test_named_leaves_are_the_imported_leaves():
    net, x, y = programs()["in-place"]

    def loss_fn(model, batch):
        return classify(model, batch["x"], batch["y"])

    batch = {"x": x, "y": y}
    feed = named_leaves(loss_fn, batch, params=net)
    expected = [*dict(net.named_parameters()), *dict(net.named_buffers()), "batch['x']", "batch['y']"]
    assert list(feed) == expected
    report = audit(loss_fn, batch, params=net)
    leaves = {n.name for form in ("separate", "joint") for n in ga.topological_order(report.forms[form].outputs)
              if n.is_leaf and n.op != "constant"}
    assert {"lin1.weight", "norm.running_mean", "batch['x']", "batch['y']"} <= leaves <= set(feed)
    np.testing.assert_array_equal(feed["lin1.weight"], net.lin1.weight.detach().numpy())
    feed["lin1.weight"][0, 0] += 1.0
    assert feed["lin1.weight"][0, 0] != net.lin1.weight[0, 0].item(), "the arrays are copies"


def test_named_leaves_needs_tensors_with_values():
    with torch.device("meta"):
        net = nn.Linear(3, 2)
    with pytest.raises(ValueError, match="named_leaves: weight is a meta tensor"):
        named_leaves(classify, torch.ones(4, 3), torch.zeros(4, dtype=torch.long), params=net)
    with pytest.raises(TypeError, match="named_leaves: w is torch.bfloat16"):
        named_leaves(lambda p, x: (x @ p["w"]).sum(), torch.ones(2, 3), params={"w": torch.ones(3, 2).bfloat16()})
