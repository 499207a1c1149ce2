"""The model zoo's small models (``benchmarks/zoo_models.py``) as tests: values, costs, merged == joint.

Each model is audited once; its imported forms are evaluated by graphaudit against eager
``autograd.grad`` in float64, every op must have a cost rule, the joint form's products must be
FlopCounterMode's op by op (after its two known differences, computed from the graph), and
the merged separate form must be the merged joint form.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch_models as tm  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import zoo  # noqa: E402

import graphaudit as ga  # noqa: E402
from graphaudit.frontends.torch import audit, named_leaves  # noqa: E402

# fast models, and what each brings: BatchNorm in training mode, hardswish and squeeze-excite, max pooling and a
# transposed convolution, an in-place transpose_, dropout in training mode, attention with a padding mask
MODELS = ["resnet", "mobilenet_v3", "unet", "gru", "gpt2", "multihead_attention", "convnext"]
_reports: dict[str, tuple] = {}


@pytest.fixture(autouse=True, scope="module")
def _registry_kept():
    with tm.op_registry_kept():
        yield
    _reports.clear()


def audited(name: str) -> tuple:
    """The zoo model ``name``'s audit report, named leaves, and eager joint gradients with their FLOP counts."""
    if name not in _reports:
        loss_fn, model, *inputs = zoo.zoo_models.build(name, zoo.SEED)
        inputs = tuple(inputs)
        leaves = named_leaves(loss_fn, *inputs, params=model)
        eager, counted = zoo.eager_joint(loss_fn, model, inputs)
        _reports[name] = audit(loss_fn, *inputs, params=model), leaves, eager, counted
    return _reports[name]


# slow, each test that reads audited(): whichever runs first audits the model
@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_imported_forms_evaluate_to_eager_gradients(name):
    """Random draws (GPT-2's dropout) are seeded alike before eager's run and graphaudit's."""
    report, leaves, eager, _ = audited(name)
    assert len(report.wrt) == len(eager) > 0
    for form in zoo.FORMS:
        torch.manual_seed(zoo.SEED)
        values = ga.evaluate(report.forms[form].outputs, leaves)
        assert zoo.relative_error(values, eager) <= zoo.EQUAL, form


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_every_op_has_a_cost_rule(name):
    report = audited(name)[0]
    assert [form.cost.no_cost_rule for form in report.forms.values()] == [()] * len(report.forms)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_joint_products_are_flop_counters_op_by_op(name):
    """graphaudit's joint FLOPs by op = FlopCounterMode's, less the CPU attention kernels it counts as 0, plus
    the ``groups - 1`` extra copies of a grouped grad_weight it counts."""
    report, _, _, counted = audited(name)
    check = zoo.flop_check(report.forms["joint"].outputs, counted)
    assert check["by_op_equal"], check["by_op"]
    assert check["counter"] == check["graphaudit"] - check["attention"] + check["grouped_grad_weight"] > 0
    allowances = {"multihead_attention": "attention", "mobilenet_v3": "grouped_grad_weight",
                  "convnext": "grouped_grad_weight"}
    for key in ("attention", "grouped_grad_weight"):
        assert (check[key] > 0) == (allowances.get(name) == key), key


def test_a_grouped_grad_weight_is_counted_groups_times_by_flop_counter():
    """The allowance by hand: one depthwise convolution (groups = channels = 6, 3x3 kernel, 2x6x8x8 input,
    padding 1); its grad_weight is one multiply-add per output element and kernel element of its group:
    ``2 * (2*6*8*8) * (1*3*3)``; the counter multiplies by all 6 input channels instead of 1."""
    conv = torch.nn.Conv2d(6, 6, 3, padding=1, groups=6, bias=False).double()
    x = torch.randn(2, 6, 8, 8, dtype=torch.float64)
    with torch.utils.flop_counter.FlopCounterMode(display=False) as counter:
        torch.autograd.grad(conv(x).square().sum(), [conv.weight])
    with tm.op_registry_kept():  # the report's imported ops are read while they are registered
        report = audit(lambda model, x: model(x).square().sum(), x, params=conv)
        check = zoo.flop_check(report.forms["joint"].outputs, {str(k): v for k, v in
                                                               counter.get_flop_counts()["Global"].items()})
    grad_weight = 2 * (2 * 6 * 8 * 8) * (1 * 3 * 3)
    assert check["grouped_grad_weight"] == (6 - 1) * grad_weight
    assert check["by_op"]["aten.convolution_backward"] == [grad_weight, 6 * grad_weight]
    assert check["by_op_equal"]


@pytest.mark.slow
@pytest.mark.parametrize("name", [*MODELS, "bert"])
def test_merged_separate_form_is_the_merged_joint_form(name):
    assert audited(name)[0].merged_equals_joint is True
