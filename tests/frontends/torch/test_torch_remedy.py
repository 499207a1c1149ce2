"""deduplicate: the merged graph run instead of the user's function. Its results against eager
PyTorch's (float64), on the example arguments and on new values; the matmul kernels it executes
against the merged graph's count and, for separate grad calls, against the joint call's."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import torch_models as tm  # noqa: E402  (puts examples/ on the path)
import torch_remedy as remedy  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from graphaudit.frontends.torch import deduplicate  # noqa: E402
from graphaudit.frontends.torch.aten import op_key  # noqa: E402
from graphaudit.frontends.torch.ops import TABLE  # noqa: E402

STEPS = remedy.steps()


@pytest.fixture(autouse=True, scope="module")
def _registry_kept():
    with tm.op_registry_kept():
        yield


class MatmulKernels(TorchDispatchMode):
    """Counts the matmul and convolution kernels a run executes (what the op table calls matmul)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if TABLE.row(op_key(func)[0]).kind == "matmul":
            self.count += 1
        return func(*args, **(kwargs or {}))


def executed_matmuls(fn, *args) -> int:
    with MatmulKernels() as kernels:
        fn(*args)
    return kernels.count


def new_values(args):
    """Arguments of the same shapes and dtypes with other values (integer labels kept)."""
    generator = torch.Generator().manual_seed(7)
    return torch.utils._pytree.tree_map(
        lambda t: (torch.randn(t.shape, generator=generator, dtype=t.dtype).requires_grad_(t.requires_grad)
                   if t.is_floating_point() else t), args)


def assert_same_results(got, want):
    got, want = torch.utils._pytree.tree_leaves(got), torch.utils._pytree.tree_leaves(want)
    assert len(got) == len(want)
    for have, expected in zip(got, want):
        if expected is None:
            assert have is None
        else:
            torch.testing.assert_close(have, expected.detach(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(STEPS))
def test_results_equal_eager_pytorch_on_the_examples_and_on_new_values(name):
    step, args = STEPS[name]
    fast = deduplicate(step, *args)
    assert_same_results(fast(*args), step(*args))
    other = new_values(args)
    assert_same_results(fast(*other), step(*other))


@pytest.mark.parametrize("name", list(STEPS))
def test_it_executes_the_merged_graphs_matmuls(name):
    step, args = STEPS[name]
    fast = deduplicate(step, *args)
    merged = fast.report.merges["original"]
    merged_matmuls = sum(1 for node in merged.order if not node.is_leaf and TABLE.row(node.op).kind == "matmul")
    assert executed_matmuls(fast, *args) == merged_matmuls == fast.matmuls
    assert merged_matmuls <= executed_matmuls(step, *args)


def test_separate_calls_deduplicated_execute_what_the_joint_call_executes():
    step, (params, x, y) = STEPS["seed MLP, one call per parameter"]
    model = remedy.mlp((32, 24, 16, 8, 4), torch.nn.Sigmoid)
    joint = remedy.seed_joint_step(model)
    fast = deduplicate(step, params, x, y)
    layers = len(params) // 2
    # forward: one addmm per layer; joint backward: a weight grad per layer, an input grad per layer but the first
    assert executed_matmuls(joint, params, x, y) == layers + layers + (layers - 1)
    assert executed_matmuls(fast, params, x, y) == executed_matmuls(joint, params, x, y)
    assert executed_matmuls(step, params, x, y) > executed_matmuls(joint, params, x, y)
    assert_same_results(fast(params, x, y), joint(params, x, y))


def test_a_changed_shape_dtype_or_constant_is_refused_in_one_line():
    step, (params, x, y) = STEPS["seed MLP, one call per parameter"]
    fast = deduplicate(step, params, x, y)
    with pytest.raises(ValueError, match=r"^deduplicate: x is float64\[3, 32\] on cpu, traced as float64\[16, 32\]"):
        fast(params, x[:3], y[:3])
    with pytest.raises(ValueError, match=r"^deduplicate: x is float32"):
        fast(params, x.float(), y)
    with pytest.raises(ValueError, match="^deduplicate: called with arguments shaped"):
        fast(params, x)


def test_the_users_tensors_are_not_mutated_and_it_returns_plain_tensors():
    step, args = STEPS["PINN (heat), u_t and u_xx nested"]
    before = [t.detach().clone() for t in torch.utils._pytree.tree_leaves(args)]
    fast = deduplicate(step, *args)
    results = fast(*args)
    after = torch.utils._pytree.tree_leaves(args)
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    assert results[-1] is None  # the last bias: the residual's derivatives never reach it, as in eager
    assert all(r.grad_fn is None and not r.requires_grad for r in results if r is not None)


def test_random_draws_stay_random_and_are_fns_under_one_seed():
    torch.manual_seed(0)
    w = torch.randn(6, 6, dtype=torch.float64, requires_grad=True)
    x = torch.randn(4, 6, dtype=torch.float64)

    def step(w, x):
        h = torch.nn.functional.dropout(torch.tanh(x @ w), p=0.5, training=True)
        loss = (h ** 2).sum()
        return torch.autograd.grad(loss, w, retain_graph=True)[0], torch.autograd.grad(loss, w)[0]

    fast = deduplicate(step, w, x)
    first, second = fast(w, x)
    torch.testing.assert_close(first, second, rtol=0, atol=0)  # one draw, read by both calls
    assert not torch.equal(fast(w, x)[0], first)  # a new draw per call
    torch.manual_seed(3)
    want = step(w, x)
    torch.manual_seed(3)
    assert_same_results(fast(w, x), want)


def test_bad_input_is_one_line():
    with pytest.raises(TypeError, match="^deduplicate: fn must be a function"):
        deduplicate(3, torch.ones(2))
    with pytest.raises(TypeError, match="^deduplicate: fn must return tensors"):
        deduplicate(lambda w: "loss", torch.ones(2, requires_grad=True))


@pytest.mark.slow
@pytest.mark.subprocess
def test_compiled_by_inductor_it_equals_eager():
    step, args = STEPS["PINN (heat), u_t and u_xx nested"]
    fast = deduplicate(step, *args, compile=True)
    assert_same_results_close(fast(*new_values(args)), step(*new_values(args)))


def assert_same_results_close(got, want):
    for have, expected in zip(torch.utils._pytree.tree_leaves(got), torch.utils._pytree.tree_leaves(want)):
        if expected is not None:
            torch.testing.assert_close(have, expected.detach(), rtol=1e-9, atol=1e-10)


def test_the_example_prints_each_steps_calls_before_and_after(capsys):
    assert remedy.main([]) == 0
    printed = capsys.readouterr().out.splitlines()
    for (name, (step, args)), line in zip(STEPS.items(), printed):
        calls = deduplicate(step, *args).report.framework["fx_nodes"]
        assert line.startswith(f"{name}: {calls['original']['nodes']} aten calls -> {calls['deduplicated']['nodes']}, "
                               f"matmuls {calls['original']['matmuls']} -> {calls['deduplicated']['matmuls']}")


def test_writes_and_views_batch_norm_in_place_relu_channels_last():
    """A timm-style conv block: BatchNorm in training (it writes its running statistics; its schema
    hides two of the writes), in-place ReLUs, a channels_last input restrided by the pool, flatten."""
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=True),
                          nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(4, 3)).double()
    params = remedy.parameters(model)
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    y = torch.tensor([0, 2])

    def step(params, buffers, x, y):
        loss = nn.functional.cross_entropy(torch.func.functional_call(model, {**params, **buffers}, (x,)), y)
        return [torch.autograd.grad(loss, p, retain_graph=True)[0] for p in params.values()]

    with pytest.warns(UserWarning, match=r"fn writes to buffers\['1.num_batches_tracked'\], "
                                         r"buffers\['1.running_mean'\], buffers\['1.running_var'\]"):
        fast = deduplicate(step, params, buffers, x, y)
    kept = {name: b.clone() for name, b in buffers.items()}
    got = fast(params, buffers, x, y)
    assert all(torch.equal(buffers[name], kept[name]) for name in buffers)  # the merged graph writes nothing
    assert_same_results(got, step(params, {name: b.clone() for name, b in buffers.items()}, x, y))
    assert executed_matmuls(fast, params, buffers, x, y) == fast.matmuls < executed_matmuls(step, params, kept, x, y)


def test_a_module_fn_closes_over_is_read_by_reference_so_an_in_place_step_is_seen():
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 3).double()

    def input_gradient(x):
        x = x.detach().requires_grad_(True)
        return torch.autograd.grad(torch.tanh(layer(x)).sum(), x)[0]

    x = torch.randn(5, 4, dtype=torch.float64)
    fast = deduplicate(input_gradient, x)
    with torch.no_grad():
        layer.weight.mul_(2.0)  # what an optimizer's step does
    assert_same_results(fast(x), input_gradient(x))


def test_the_reports_advice_names_deduplicate_as_what_runs_the_merged_graph():
    step, args = STEPS["PINN (heat), u_t and u_xx nested"]
    advice = deduplicate(step, *args).report.to_dict()["advice"]
    assert "graphaudit.frontends.torch.deduplicate(fn, *args)" in advice[-1]["rewrite"]
    assert advice[-1]["saves_flops"] == deduplicate(step, *args).report.duplicated["flops"] > 0
