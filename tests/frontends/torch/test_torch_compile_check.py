"""compile_check: what PyTorch's FX CSE and torch.compile keep of the separate grads of the seed MLP, made tiny.

The expected counts are derived from the layer count L: the joint form runs L forward
products, L weight-gradient products and one input-gradient product per layer above the
first; the separate form rebuilds each input-gradient product once per parameter below it.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")

import torch.nn as nn  # noqa: E402

from graphaudit.frontends.common import FrameworkSection  # noqa: E402
from graphaudit.frontends.torch.compile_check import (  # noqa: E402
    CSE_PASS,
    EAGER,
    FX_CSE,
    INDUCTOR_DEFAULT,
    INDUCTOR_TRACED,
    TRACED,
    code_counts,
    compile_check,
    programs,
    verdict,
)

import torch_models as tm  # noqa: E402

WIDTHS = (7, 6, 5, 4, 3)
LAYERS = len(WIDTHS) - 1


def joint_products(layers: int) -> int:
    """Forward, weight-gradient and input-gradient products of the joint form."""
    return layers + layers + (layers - 1)


def separate_products(layers: int) -> int:
    """Layer j's weight and bias calls each rebuild the input-gradient products of the layers above it."""
    return layers + sum(1 + 2 * (layers - j) for j in range(1, layers + 1))


@pytest.fixture(scope="module")
def check():
    return compile_check(*tm.seed_mlp(WIDTHS, 4))


@pytest.mark.slow
@pytest.mark.subprocess
def test_inductor_keeps_every_duplicated_product_with_trace_autograd_ops(check):
    rows = {row["graph"]: row for row in check["rows"]}
    traced = rows[INDUCTOR_TRACED]
    assert traced["joint"]["dots"] == joint_products(LAYERS)
    assert traced["separate"]["graphs"] == traced["joint"]["graphs"] == 1  # nothing ran outside the code
    assert traced["separate"]["dots"] == separate_products(LAYERS) > joint_products(LAYERS)
    for form in ("separate", "joint"):  # what make_fx traced and eager runs is what inductor launches
        assert rows[TRACED][form]["dots"] == traced[form]["dots"] == rows[EAGER][form]["dots"]


@pytest.mark.slow
@pytest.mark.subprocess
def test_by_default_each_separate_call_runs_the_whole_compiled_backward(check):
    default = {row["graph"]: row for row in check["rows"]}[INDUCTOR_DEFAULT]
    backward = joint_products(LAYERS) - LAYERS
    assert default["joint"]["dots"] == joint_products(LAYERS)
    assert default["separate"]["dots"] == LAYERS + 2 * LAYERS * backward


@pytest.mark.slow
@pytest.mark.subprocess
def test_fx_cse_recovers_the_seed_mlp(check):
    rows = {row["graph"]: row for row in check["rows"]}
    for label in (FX_CSE, CSE_PASS):
        separate, joint = rows[label]["separate"], rows[label]["joint"]
        assert (separate["nodes"], separate["dots"]) == (joint["nodes"], joint["dots"]) == (
            rows[TRACED]["joint"]["nodes"], joint_products(LAYERS))
    assert rows[TRACED]["separate"]["nodes"] > rows[TRACED]["joint"]["nodes"]


@pytest.mark.slow
@pytest.mark.subprocess
def test_verdict_and_section_lines(check):
    assert check["verdict"].startswith("torch.compile does not remove the duplicated work")
    assert "FX CSE recovers it" in check["verdict"]
    lines = FrameworkSection({"compile_check": check}).compile_check_lines()
    assert len(lines) == 3 + len(check["rows"]) and all(r["graph"] in "\n".join(lines) for r in check["rows"])


def test_programs_are_the_users_gradients_with_a_dict_of_tensors():
    _, model, x, y = tm.seed_mlp(WIDTHS, 4)
    params = dict(model.named_parameters())

    def loss(p, x, y):
        return torch.func.functional_call(model, p, (x,)).log_softmax(1).gather(1, y[:, None]).mean()

    program = programs(loss, params, (x, y))
    expected = torch.autograd.grad(loss(params, x, y), program.values)
    for form in ("separate", "joint"):
        grads = program.fns[form](program.values, program.fixed, x, y)
        assert all(torch.equal(a, b) for a, b in zip(grads, expected)), form


def test_programs_leave_the_users_buffers_alone():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    before = {name: b.clone() for name, b in model.named_buffers()}
    program = programs(lambda m, x: m(x).square().mean(), model, (torch.randn(5, 3),))
    program.fns["separate"](program.values, program.fixed, torch.randn(5, 3))
    assert all(torch.equal(b, before[name]) for name, b in model.named_buffers())
    assert not torch.equal(program.fixed[0], before["1.running_mean"])  # the step updated its own copy


def test_verdict_says_how_the_compiler_failed():
    counted = {"separate": {"nodes": 9, "dots": 5}, "joint": {"nodes": 6, "dots": 3}}
    failed = {"separate": {"nodes": "failed", "dots": "-", "error": "RuntimeError: no double backward"},
              "joint": {"nodes": 6, "dots": 3}}
    rows = {INDUCTOR_TRACED: failed, INDUCTOR_DEFAULT: counted, FX_CSE: counted}
    assert verdict(rows).startswith("torch.compile does not remove the duplicated work")
    assert "fails (RuntimeError: no double backward)" in verdict(rows)
    assert verdict({**rows, INDUCTOR_DEFAULT: failed}).startswith("torch.compile cannot compile these grads")


def test_code_counts_read_extern_and_fallback_kernels_not_fused_ones():
    code = '''
cpp_fused_sum_0 = async_compile.cpp_pybinding(['float*'], r"""
    extern "C" void kernel(float* out_ptr0) {}
""")

class Runner:
    def call(self, args):
        buf0 = empty_strided_cpu((4, 3), (3, 1), torch.float32)
        extern_kernels.addmm(arg1_1, arg2_1, arg0_1, alpha=1, beta=1, out=buf0)
        cpp_fused_convolution_backward_sum_0(buf0, buf1)
        buf2 = torch.ops.aten.convolution_backward.default(buf0, arg3_1, arg4_1, [3], [1], [0], [1], False)
        extern_kernels.mm(buf0, arg2_1, out=buf3)
        return (buf3, )

def benchmark_compiled_module(times=10, repeat=10):
    extern_kernels.mm(a, b)
'''
    assert code_counts([code, code]) == {"nodes": 8, "dots": 6, "graphs": 2}
