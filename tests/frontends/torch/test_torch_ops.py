"""The aten table: per-node FLOPs against torch's own flop_registry, bytes of views and copies, and coverage.

Nodes are built here as the importer builds them (``aten.schema_values`` splits a call into
tensor inputs, named in the ``tensors`` attr, and attrs; one node per result of a
multi-result op, with ``output_mask`` dropped), from a call run on small real tensors.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode, flop_registry  # noqa: E402

from graphaudit.analysis.cost import node_bytes, node_flops  # noqa: E402
from graphaudit.core.describe import operand_text  # noqa: E402
from graphaudit.frontends.common import hashable_param, imported_node  # noqa: E402
from graphaudit.frontends.torch import aten as aten_calls  # noqa: E402
from graphaudit.frontends.torch import audit  # noqa: E402
from graphaudit.frontends.torch.capture import capture  # noqa: E402
from graphaudit.frontends.torch.ops import TABLE, tensor_input  # noqa: E402
from graphaudit.core.graph import placeholder  # noqa: E402
from graphaudit.core.ops import get_op  # noqa: E402

import torch_models as tm  # noqa: E402

aten = torch.ops.aten


@pytest.fixture(autouse=True, scope="module")
def _registry_kept():
    """The nodes built here register their ops as pure; later modules' audits must find the registry unchanged
    (an in-place op or an attention kernel with dropout is impure there)."""
    with tm.op_registry_kept():
        yield


def imported(target, *args, **kwargs) -> list:
    """The nodes the importer makes of ``target(*args, **kwargs)`` (one per result), and the call's result."""
    inputs, labels, attrs = [], [], [("overload", target._overloadname)]
    for name, value in aten_calls.schema_values(target, args, kwargs):
        tensors = [(name, value)] if isinstance(value, torch.Tensor) else []
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, torch.Tensor) for v in value):
            tensors = [(f"{name}[{i}]", v) for i, v in enumerate(value)]
        for label, tensor in tensors:
            inputs.append(placeholder(label, tuple(tensor.shape), str(tensor.dtype).removeprefix("torch.")))
            labels.append(label)
        if not tensors and not (value is None and "Tensor" in _argument_type(target, name)):
            attrs.append((name, hashable_param(value)))
    attrs.append(("tensors", tuple(labels)))
    op = TABLE.op_name(aten_calls.op_key(target)[0])
    result = target(*args, **kwargs)
    results = list(result) if aten_calls.is_multi_output(target) else [result]
    nodes = [imported_node(op, inputs, attrs, tuple(r.shape), aten_calls.numpy_dtype(r.dtype), call=None,
                           output=i if len(results) > 1 else None) for i, r in enumerate(results)]
    return nodes, result


def _argument_type(target, name: str) -> str:
    return next(str(a.type) for a in target._schema.arguments if a.name == name)


def registry_flops(target, *args, **kwargs) -> int:
    """What ``torch.utils.flop_counter`` counts for the call."""
    return flop_registry[target.overloadpacket](*args, **kwargs, out_val=target(*args, **kwargs))


def r(*shape):
    return torch.randn(*shape, dtype=torch.float64)


# --- products and convolutions ---------------------------------------------------------------


@pytest.mark.parametrize("target, args", [
    (aten.mm.default, (r(5, 7), r(7, 3))),
    (aten.addmm.default, (r(3), r(5, 7), r(7, 3))),
    (aten.bmm.default, (r(4, 5, 7), r(4, 7, 3))),
    (aten.baddbmm.default, (r(4, 5, 3), r(4, 5, 7), r(4, 7, 3))),
], ids=["mm", "addmm", "bmm", "baddbmm"])
def test_products_count_as_flop_registry(target, args):
    (node,), _ = imported(target, *args)
    assert get_op(node.op).is_matmul
    assert node_flops(node) == registry_flops(target, *args) > 0


CONVOLUTIONS = {  # input, weight, bias, stride, padding, dilation, transposed, output_padding, groups
    "plain": (r(2, 3, 9, 9), r(8, 3, 3, 3), r(8), [1, 1], [1, 1], [1, 1], False, [0, 0], 1),
    "strided": (r(2, 4, 11, 10), r(6, 2, 3, 2), None, [2, 1], [0, 1], [2, 1], False, [0, 0], 2),
    "transposed": (r(2, 4, 5, 5), r(4, 3, 3, 3), r(3), [2, 2], [1, 1], [1, 1], True, [1, 1], 1),
    "conv1d": (r(3, 2, 17), r(5, 2, 4), r(5), [3], [2], [1], False, [0], 1),
}


@pytest.mark.parametrize("name", CONVOLUTIONS)
def test_convolution_counts_as_flop_registry(name):
    args = CONVOLUTIONS[name]
    (node,), _ = imported(aten.convolution.default, *args)
    assert get_op(node.op).is_matmul
    assert node_flops(node) == registry_flops(aten.convolution.default, *args) > 0


@pytest.mark.parametrize("name", CONVOLUTIONS)
def test_convolution_backward_costs_each_result_as_flop_registry_asks_for_it(name):
    x, w, bias, *conv = CONVOLUTIONS[name]
    out = aten.convolution.default(x, w, bias, *conv)
    grad_out = torch.randn_like(out)
    bias_sizes = [w.shape[1] if conv[3] else w.shape[0]]
    nodes, results = imported(aten.convolution_backward.default, grad_out, x, w, bias_sizes, *conv, [True] * 3)
    assert [n.shape for n in nodes] == [tuple(t.shape) for t in results]
    for i, node in enumerate(nodes):
        asked = [j == i for j in range(3)]
        expected = registry_flops(aten.convolution_backward.default, grad_out, x, w, bias_sizes, *conv, asked)
        if i == 1:  # the registry's grad_weight reads all input channels, not a group's: groups times too many
            expected //= conv[-1]
            assert node_flops(node) == node_flops(imported(aten.convolution.default, x, w, bias, *conv)[0][0])
        assert node_flops(node) == expected and (expected > 0) == (i < 2), f"result {i}"  # grad_bias: a sum


# --- attention -------------------------------------------------------------------------------

FLASH, FLASH_BACKWARD = (aten._scaled_dot_product_flash_attention_for_cpu,
                         aten._scaled_dot_product_flash_attention_for_cpu_backward.default)
# flop_registry has no rule for the CPU kernel; the CUDA flash kernel's takes the same q, k, v
SDPA_RULE, SDPA_BACKWARD_RULE = (flop_registry[aten._scaled_dot_product_flash_attention],
                                 flop_registry[aten._scaled_dot_product_flash_attention_backward])


@pytest.mark.parametrize("shapes", [((2, 4, 16, 8), (2, 4, 16, 8)), ((3, 2, 5, 16), (3, 2, 11, 16))],
                         ids=["self", "cross"])
def test_attention_kernels_count_as_flop_registry(shapes):
    q_shape, kv_shape = shapes
    q, k, v = r(*q_shape), r(*kv_shape), r(*kv_shape)
    (out, logsumexp), (value, lse) = imported(FLASH.default, q, k, v)
    assert node_flops(out) == SDPA_RULE(q, k, v, out_val=value) > 0
    assert node_flops(logsumexp) == 0
    grad_out = torch.randn_like(value)
    nodes, grads = imported(FLASH_BACKWARD, grad_out, q, k, v, value, lse, 0.0, False)
    assert [tensor_input(nodes[0], name) is not None for name in ("query", "key", "value")] == [True] * 3
    assert sum(map(node_flops, nodes)) == SDPA_BACKWARD_RULE(grad_out, q, k, v, out_val=grads) > 0
    assert all(node_flops(n) > 0 for n in nodes)


def test_products_read_as_their_operands():
    (addmm,), _ = imported(aten.addmm.default, r(3), r(5, 7), r(7, 3))
    assert operand_text(addmm) == "5x7 @ 7x3 + 3"
    x, w, bias, *conv = CONVOLUTIONS["plain"]
    grad_out = torch.randn_like(aten.convolution.default(x, w, bias, *conv))
    nodes, _ = imported(aten.convolution_backward.default, grad_out, x, w, [8], *conv, [True] * 3)
    assert operand_text(nodes[1]) == "grad_weight of conv 2x3x9x9 * 8x3x3x3"


# --- kernels with several results --------------------------------------------------------------


def test_forward_kernels_by_products_cost_nothing():
    x, weight, bias = r(4, 6), r(6), r(6)
    norm, _ = imported(aten.native_layer_norm.default, x, [6], weight, bias, 1e-5)
    pooled, _ = imported(aten.max_pool2d_with_indices.default, r(2, 3, 6, 6), [2, 2], [2, 2])
    loss, _ = imported(aten.nll_loss_forward.default, x, torch.tensor([0, 5, 2, 2]), None, 1, -100)
    for kernel in (norm, pooled, loss):
        assert node_flops(kernel[0]) > 0 and [node_flops(n) for n in kernel[1:]] == [0] * (len(kernel) - 1)


def test_norm_backward_results_cost_what_each_takes():
    """grad_input walks the normalisation back; grad_weight only multiplies by xhat and sums; grad_bias sums."""
    x, weight, bias = r(4, 6), r(6), r(6)
    _, (y, mean, rstd) = imported(aten.native_layer_norm.default, x, [6], weight, bias, 1e-5)
    nodes, _ = imported(aten.native_layer_norm_backward.default, torch.randn_like(y), x, [6], mean, rstd, weight,
                        bias, [True] * 3)
    grad_input, grad_weight, grad_bias = map(node_flops, nodes)
    assert grad_input > grad_weight > grad_bias == x.numel()


# --- rows with no flop_registry formula: hand counts, one FLOP per operation of the kernel's formula ------------


def test_activations_and_masks_cost_one_flop_per_output_element():
    """hardswish and hardsigmoid count as gelu and silu do: one FLOP per element, whatever the formula."""
    x, mask = r(3, 5), torch.rand(3, 5) > 0.5
    calls = [(aten.hardswish.default, (x,)), (aten.hardsigmoid.default, (x,)), (aten.hardswish_.default, (x.clone(),)),
             (aten.bitwise_and.Tensor, (mask, ~mask))]
    for target, args in calls:
        (node,), result = imported(target, *args)
        assert node_flops(node) == result.numel() == 15, target


def test_piecewise_activation_backwards_cost_their_formula():
    """The kernels' formulas, written out and checked against them: hardsigmoid's backward ``where(-3 < x < 3,
    g / 6, 0)`` is a divide and a select (2 per element: a select counts one with its range test, as
    threshold_backward's and leaky_relu_backward's do); hardswish's ``where(x < -3, 0, where(x <= 3,
    g * (x / 3 + 0.5), g))`` a divide, an add, a multiply and a select (4)."""
    x, g = r(4, 6) * 4, r(4, 6)  # values on all three pieces
    inside = (x > -3) & (x < 3)
    formulas = {
        aten.hardsigmoid_backward.default: (torch.where(inside, g / 6, 0.0), 2),
        aten.hardswish_backward.default: (torch.where(x < -3, 0.0, torch.where(x <= 3, g * (x / 3 + 0.5), g)), 4),
    }
    for target, (formula, operations) in formulas.items():
        (node,), result = imported(target, g, x)
        torch.testing.assert_close(result, formula, rtol=1e-7, atol=0)  # the kernels' constants: float32
        assert node_flops(node) == operations * x.numel(), target


def test_per_pixel_nll_loss_costs_one_flop_per_target_element():
    """nll_loss2d (cross-entropy over an image's pixels) counts as nll_loss: one per picked log-probability."""
    log_probs, target = F.log_softmax(r(2, 5, 3, 4), 1), torch.randint(0, 5, (2, 3, 4))
    forward, (loss, total_weight) = imported(aten.nll_loss2d_forward.default, log_probs, target, None, 1, -100)
    assert [node_flops(n) for n in forward] == [target.numel(), 0]
    (backward,), _ = imported(aten.nll_loss2d_backward.default, torch.ones((), dtype=torch.float64), log_probs, target,
                              None, 1, -100, total_weight)
    assert node_flops(backward) == target.numel() == 24


def test_causal_masks_fills_and_inplace_views_do_no_arithmetic():
    """tril and triu (GPT-2's causal mask) are masked copies, fill_ a source: each writes its output, 0 FLOPs;
    transpose_ and as_strided_ (nn.GRU, channels_last layouts) change strides only: no bytes either."""
    for target, args in [(aten.tril.default, (x,)), (aten.triu.default, (x, 1)), (aten.fill_.Scalar, (x.clone(), 2.0))]:
        (node,), result = imported(target, *args)
        assert node_flops(node) == 0 and node_bytes(node) == result.numel() * result.element_size() == 4 * 6 * 8
    for target, args in [(aten.transpose_.default, (x.clone(), 0, 1)),
                         (aten.as_strided_.default, (x.clone(), [6, 4], [1, 6]))]:
        (node,), _ = imported(target, *args)
        assert node_flops(node) == 0 and node_bytes(node) == 0


def test_every_row_names_an_aten_op():
    assert [key for key in TABLE.rows if not hasattr(aten, key.removeprefix("aten."))] == []


# --- bytes: views write none, copies their output --------------------------------------------

x = r(4, 6)
VIEW_CALLS = [
    (aten.view.default, (x, [6, 4])), (aten.t.default, (x,)), (aten.transpose.int, (x, 0, 1)),
    (aten.permute.default, (x, [1, 0])), (aten.expand.default, (r(1, 6), [4, 6])),
    (aten.unsqueeze.default, (x, 1)), (aten.squeeze.dim, (r(4, 1), 1)), (aten.select.int, (x, 0, 2)),
    (aten.slice.Tensor, (x, 1, 0, 3)), (aten._unsafe_view.default, (x, [24])), (aten.alias.default, (x,)),
    (aten.as_strided.default, (x, [2, 2], [6, 1])), (aten.diagonal.default, (x,)),
    (aten.split.Tensor, (x, 2)), (aten.unbind.int, (x,)),
]
COPY_CALLS = [
    (aten.clone.default, (x,)), (aten._to_copy.default, (x,), {"dtype": torch.float32}),
    (aten.cat.default, ([x, x], 1)), (aten.index_select.default, (x, 0, torch.tensor([3, 1, 3]))),
    (aten.gather.default, (x, 1, torch.tensor([[0], [5], [2], [1]]))),
    (aten.embedding.default, (x, torch.tensor([[0, 3], [2, 2]]))),
]


@pytest.mark.parametrize("call", VIEW_CALLS, ids=lambda c: str(c[0]) if hasattr(c, "__len__") else "")
def test_views_write_no_bytes(call):
    nodes, _ = imported(call[0], *call[1])
    assert all(node_bytes(n) == 0 and node_flops(n) == 0 for n in nodes)


@pytest.mark.parametrize("call", COPY_CALLS, ids=lambda c: str(c[0]) if hasattr(c, "__len__") else "")
def test_copies_write_their_output(call):
    (node,), result = imported(call[0], *call[1], **(call[2] if len(call) > 2 else {}))
    assert node_bytes(node) == result.numel() * result.element_size() > 0
    assert node_flops(node) == 0


# --- every op of the models' traced graphs has a row -----------------------------------------


class DropoutTransformer(nn.Module):
    """An encoder layer with dropout: attention takes the math path (bmm, softmax) instead of the CPU flash kernel."""

    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.1, batch_first=True)
        self.head = nn.Linear(16, 5)

    def forward(self, x):
        return self.head(self.layer(x).mean(1))


class Recurrent(nn.Module):
    """An embedding, LSTM and GRU cells over a short sequence, layer norm and dropout."""

    def __init__(self):
        super().__init__()
        self.embed, self.lstm, self.gru = nn.Embedding(11, 6), nn.LSTMCell(6, 7), nn.GRUCell(7, 7)
        self.norm, self.drop, self.out = nn.LayerNorm(7), nn.Dropout(0.1), nn.Linear(7, 11)

    def forward(self, tokens):
        h = c = g = torch.zeros(tokens.shape[0], 7)
        for t in range(tokens.shape[1]):
            h, c = self.lstm(self.embed(tokens[:, t]), (h, c))
            g = self.gru(h, g)
        return self.out(self.drop(self.norm(g)))


def classify(model, x, y):
    return F.cross_entropy(model(x), y)


def model_programs():
    """The examples' models, small, and a few more for the ops they bring: (name, loss_fn, model, *inputs)."""
    torch.manual_seed(0)
    labels = torch.randint(0, 5, (4,))
    pooling = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AvgPool2d(2), nn.Conv2d(4, 6, 1), nn.AdaptiveAvgPool2d(2),
                            nn.Flatten(), nn.Linear(24, 5))
    activations = nn.Sequential(nn.Linear(6, 6), nn.GELU(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6), nn.SiLU(),
                                nn.Linear(6, 6), nn.LeakyReLU(0.1), nn.Linear(6, 5))
    return [
        ("seed MLP", *tm.seed_mlp((12, 10, 8, 6, 5), 4)),
        ("transformer", *tm.transformer(16, 4, 32, 2, 5, 5)),
        ("convnet", *tm.convnet(4, 8, 4, 5)),
        ("WGAN-GP", *tm.wgan_gp(6, 8, 4)),
        ("transformer, dropout", classify, DropoutTransformer(), torch.randn(2, 5, 16), labels[:2]),
        ("pooling", classify, pooling, torch.randn(4, 3, 11, 11), labels),
        ("recurrent", classify, Recurrent(), torch.randint(0, 11, (4, 3)), labels),
        ("activations", classify, activations, torch.randn(4, 6), labels),
    ]


def traced_ops(loss_fn, model, *inputs) -> set[str]:
    """The graphaudit op names of the aten calls in the traced forward, separate and joint grads."""
    graph = capture(loss_fn, model, inputs).graph.graph
    return {aten_calls.op_key(n.target)[0] for n in graph.nodes
            if n.op == "call_function" and isinstance(n.target, torch._ops.OpOverload)}


@pytest.mark.slow
def test_every_op_of_the_models_has_a_row():
    missing = {}
    for name, *program in model_programs():
        for op in traced_ops(*program) - set(TABLE.rows):
            missing.setdefault(op, []).append(name)
    assert not missing, f"aten ops with no row in the table: {missing}"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["seed MLP", "convnet", "transformer, dropout", "pooling", "recurrent",
                                  "activations"])
def test_joint_matmul_flops_are_flop_counters_on_the_eager_grads(name):
    """The imported joint form's products are what FlopCounterMode counts as eager PyTorch runs it (models
    whose attention takes the math path: the counter counts the CPU flash kernel as nothing)."""
    _, loss_fn, model, *inputs = next(program for program in model_programs() if program[0] == name)
    with tm.op_registry_kept():
        report = audit(loss_fn, *inputs, params=model)
    with FlopCounterMode(display=False) as counter:
        torch.autograd.grad(loss_fn(model, *inputs), list(model.parameters()))
    assert report.forms["joint"].cost.matmul_flops == counter.get_total_flops() > 0
    assert not report.forms["separate"].cost.no_cost_rule


def test_every_row_has_a_cost_rule_and_no_numpy_code():
    assert all(row.cost is not None and row.impl is None for row in TABLE.rows.values())
    assert TABLE.fallback_impl is aten_calls.run_aten

