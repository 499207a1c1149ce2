"""frontends/torch/audit.py: counts against hand derivations, merged forms, memory, the section, bad input, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

torch = pytest.importorskip("torch")

import torch_models as tm  # noqa: E402

from graphaudit.frontends import MissingFrameworkError  # noqa: E402
from graphaudit.cli.options import analysis_options  # noqa: E402
from graphaudit.cli.targets import audit_target  # noqa: E402
from graphaudit.cli.usage import UsageError  # noqa: E402
from graphaudit.frontends.common import TargetError  # noqa: E402
from graphaudit.frontends.torch import CLI, TorchSection, audit  # noqa: E402
from graphaudit.frontends.torch.target import TorchTarget  # noqa: E402

HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True, scope="module")
def _registry_kept():
    with tm.op_registry_kept():
        yield


def input_gradient_flops(widths, batch):
    """Duplicated matmul FLOPs of the seed MLP's separate form, by hand.

    Layer j (1-based, weights widths[j-1] x widths[j]) has the input-gradient product
    dZ_j @ W_j: 2 * batch * widths[j] * widths[j-1] FLOPs. The calls for the 2(j-1)
    parameters of the layers below it each build it; the joint form needs it once.
    The weight-gradient products are built by one call each, so none is duplicated.
    """
    layers = len(widths) - 1
    return sum((2 * (j - 1) - 1) * 2 * batch * widths[j] * widths[j - 1] for j in range(2, layers + 1))


@pytest.mark.parametrize("widths, batch", [((6, 5, 4, 3, 2), 3), ((7, 9, 5, 4, 3), 5)])
def test_seed_mlp_duplicated_matmul_flops_equal_the_hand_count(widths, batch):
    loss_fn, net, *inputs = tm.seed_mlp(widths, batch)
    report = audit(loss_fn, *inputs, params=net)
    assert report.duplicated["matmul_flops"] == input_gradient_flops(widths, batch)
    assert report.merged_equals_joint
    # products in the FX graph: L forward addmm; joint backward L weight-gradient and L-1 input-gradient
    # products; separate backward: the calls for W_j and b_j build the L-j input-gradient products above
    # layer j, W_j's call also its weight gradient: sum_j (1 + 2(L-j)) = L^2
    layers = len(widths) - 1
    fx = report.framework["fx_nodes"]
    assert fx["joint"]["matmuls"] == layers + (2 * layers - 1)
    assert fx["separate"]["matmuls"] == layers + layers**2


@pytest.mark.slow
@pytest.mark.parametrize("model", ["seed_mlp", "transformer", "convnet", "wgan_gp"])
def test_merged_separate_equals_merged_joint(model):
    builds = {
        "seed_mlp": lambda: tm.seed_mlp((8, 6, 5, 4, 3), 4),
        "transformer": lambda: tm.transformer(16, 2, 32, batch=2, seq=4, classes=3),
        "convnet": lambda: tm.convnet(channels=4, size=8, batch=2),
        "wgan_gp": lambda: tm.wgan_gp(features=6, hidden=8, batch=4),
    }
    loss_fn, net, *inputs = builds[model]()
    report = audit(loss_fn, *inputs, params=net)
    assert report.merged_equals_joint
    separate, joint = report.forms["separate"].cost, report.forms["joint"].cost
    assert separate.matmul_flops > joint.matmul_flops == report.forms["separate_merged"].cost.matmul_flops
    assert report.duplicated["matmul_flops"] == separate.matmul_flops - joint.matmul_flops


FRESH_PROCESS = f"""
import json, resource, sys
sys.path.insert(0, {str(HERE)!r})
import torch_models as tm
from graphaudit.frontends.torch import audit
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
loss_fn, net, *inputs = tm.transformer(8, 2, 16, batch=2, seq=3, classes=3)
small = audit(loss_fn, *inputs, params=net)  # also imports and warms up what the audit uses
loss_fn, net, *inputs = tm.seed_mlp(device="meta")
before = peak()
seed = audit(loss_fn, *inputs, params=net)
print(json.dumps({{"grown": peak() - before, "matmul_flops": seed.duplicated["matmul_flops"],
                  "report": small.to_json(timings=False), "dot": small.to_dot()}}))
"""


@pytest.fixture(scope="module")
def fresh_processes():
    """Two fresh processes, PYTHONHASHSEED 1 and 2, side by side (each spends seconds importing torch):
    each audits a small transformer, then the full-size seed MLP built on the meta device."""
    runs = [subprocess.Popen([sys.executable, "-c", FRESH_PROCESS], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                             env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)})
            for seed in ("1", "2")]
    outputs = [run.communicate()[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0]
    return [json.loads(out.strip().splitlines()[-1]) for out in outputs]


@pytest.mark.slow
@pytest.mark.subprocess
def test_full_size_seed_mlp_audits_without_allocating_its_weights(fresh_processes):
    """Peak RSS grows far less than the weights would take: fakes are traced, nothing is allocated."""
    widths, batch = tm.SEED_WIDTHS, 128
    weight_bytes = 4 * sum(a * b + b for a, b in zip(widths, widths[1:]))
    for result in fresh_processes:
        assert result["grown"] < weight_bytes / 20
        assert result["matmul_flops"] == input_gradient_flops(widths, batch)


@pytest.mark.slow
@pytest.mark.subprocess
def test_same_report_whatever_the_hash_seed(fresh_processes):
    first, second = fresh_processes
    assert first["report"] == second["report"] and first["dot"] == second["dot"]
    assert "encoder.self_attn" in first["report"]


def test_section_measure_and_text():
    loss_fn, net, *inputs = tm.seed_mlp((6, 5, 4, 3, 2), 3)
    report = audit(loss_fn, *inputs, params=net, measure=True, repeats=2)
    section = report.framework
    assert isinstance(section, TorchSection) and section["name"] == "PyTorch"
    assert section["version"] == torch.__version__ and section["parameters"] == 8
    measured = report.measured
    assert "measured" not in section and measured["repeats"] == 2 and measured["max_abs_difference"] < 1e-6
    assert list(measured["seconds"]) == ["separate", "joint", "separate backward", "joint backward"]
    assert all(seconds > 0 for seconds in measured["seconds"].values())
    assert measured["versus"] == {"separate": "joint", "separate backward": "joint backward"}
    text = report.to_text()
    assert "eager step (forward and grads; backward alone) (median of 2)" in text and "8 autograd.grad calls" in text
    assert set(json.loads(report.to_json(timings=False))["measured"]["seconds"].values()) == {None}


def test_compile_check_goes_in_the_section(monkeypatch):
    """The audit hands compile_check the user's program and prints its rows and verdict."""
    seen = {}

    def fake_check(loss_fn, params, *inputs):
        seen.update(loss_fn=loss_fn, params=params, inputs=inputs)
        counts = {"nodes": 3, "dots": 2, "seconds": None}
        return {"title": "check", "rows": [{"graph": "g", "separate": counts, "joint": counts}], "verdict": "V!"}

    checker = pytest.importorskip("graphaudit.frontends.torch.compile_check")
    monkeypatch.setattr(checker, "compile_check", fake_check)
    loss_fn, net, *inputs = tm.seed_mlp((4, 3, 3, 3, 2), 2)
    text = audit(loss_fn, *inputs, params=net, compile_check=True).to_text()
    assert seen["params"] is net and seen["inputs"] == tuple(inputs)
    assert "V!" in text and "3 / 2" in text


def test_measure_needs_real_tensors():
    loss_fn, net, *inputs = tm.seed_mlp((4, 3, 3, 3, 2), 2, device="meta")
    with pytest.raises(ValueError, match=r"measure=True runs the program on real tensors, but 0.weight is a meta"):
        audit(loss_fn, *inputs, params=net, measure=True)


def test_bad_input_is_named_in_one_line(monkeypatch):
    net = torch.nn.Linear(3, 2)
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"must return a scalar, got a tensor of shape \(4, 2\)"):
        audit(lambda m, x: m(x), x, params=net)
    two = torch.nn.ModuleDict({"used": torch.nn.Linear(3, 2), "idle": torch.nn.Linear(3, 2)})
    idle = audit(lambda m, x: m["used"](x).sum(), x, params=two)  # not an error: listed, as a PINN's last bias
    assert idle.framework["no_gradient"] == ["idle.weight", "idle.bias"] and idle.wrt == ["used.weight", "used.bias"]
    with pytest.raises(ValueError, match="ReLU has no parameters that require grad"):
        audit(lambda m, x: m(x).sum(), x, params=torch.nn.ReLU())
    with pytest.raises(TypeError, match="params must be an nn.Module or a dict of named tensors, got list"):
        audit(lambda m, x: x.sum(), x, params=[net.weight])
    with pytest.raises(TypeError, match="cannot differentiate n: its dtype is torch.int64"):
        audit(lambda p, x: x.sum(), x, params={"n": torch.ones(2, dtype=torch.int64)})
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingFrameworkError, match="graphaudit\\[torch\\]"):
        audit(lambda m, x: x.sum(), x, params=net)


def test_an_op_without_a_cost_rule_is_kept_and_listed():
    def loss_fn(params, x):
        return torch.special.i0e(x @ params["w"]).sum()

    report = audit(loss_fn, torch.randn(3, 2), params={"w": torch.randn(2, 2)})
    unknown = dict(report.forms["separate"].cost.no_cost_rule)
    assert unknown.get("aten.special_i0e") == 1
    assert "no cost rule, FLOPs not counted" in report.to_text() and "aten.special_i0e" in report.to_text()


def test_cli_recognises_torch_targets_only():
    loss_fn, net, *inputs = tm.seed_mlp((4, 3, 3, 3, 2), 2)
    target = CLI.recognise((loss_fn, net, *inputs), "m.py:target")
    assert target.params is net and target.inputs == tuple(inputs)
    assert CLI.recognise((loss_fn, {"w": torch.ones(2)}), "m.py:target").params["w"].shape == (2,)
    assert CLI.recognise("text", "m.py:target") is None
    with pytest.raises(TargetError, match=r"params\['b'\] is an int, not a torch tensor"):
        CLI.recognise((loss_fn, {"w": torch.ones(2), "b": 1}), "m.py:target")
    with pytest.raises(TargetError, match="loss_fn is a str, not a function"):
        CLI.recognise(("loss", net), "m.py:target")
    with pytest.raises(TargetError, match=r"returned \(Sequential model, loss_fn, \.\.\.\): its first item is a "
                                          r"model where the loss function belongs; return \(loss_fn, params"):
        CLI.recognise((net, loss_fn, *inputs), "m.py:target")
    options = analysis_options()
    assert audit_target(CLI, target, options, "m.py:target").merged_equals_joint
    bad = TorchTarget(lambda m, x: m(x), net, (torch.ones(2, 9),), "m.py:target")
    with pytest.raises(UsageError, match="auditing m.py:target with PyTorch failed: RuntimeError"):
        audit_target(CLI, bad, options, "m.py:target")


@pytest.mark.subprocess
def test_recognise_imports_no_torch():
    script = ("import sys; from graphaudit.frontends.torch import CLI; "
              "print(CLI.recognise((len, {'w': 1}), 't'), 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.split() == ["None", "False"]
