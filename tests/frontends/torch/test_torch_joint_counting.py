"""analysis/joint_counting.py on PyTorch programs: one grad call per parameter runs exactly the part of the
joint backward its gradient depends on, so the separate form counted from the joint trace equals the one traced."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import torch_models as tm  # noqa: E402

from graphaudit.analysis.duplicates import TOP  # noqa: E402
from graphaudit.analysis.joint_counting import separate_from_joint  # noqa: E402
from graphaudit.core.graph import GradCall  # noqa: E402
from graphaudit.frontends.torch import audit  # noqa: E402

BUILDS = {
    "seed_mlp": lambda: tm.seed_mlp((8, 6, 5, 4, 3), 4),
    "transformer": lambda: tm.transformer(16, 2, 32, batch=2, seq=4, classes=3),
    "convnet": lambda: tm.convnet(channels=4, size=8, batch=2),
    "wgan_gp": lambda: tm.wgan_gp(features=6, hidden=8, batch=4),
}


def zoo(name):
    pytest.importorskip("transformers")
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
    import zoo_models

    return zoo_models.build(name)


@pytest.fixture(autouse=True, scope="module")
def _registry_kept():
    with tm.op_registry_kept():
        yield


@pytest.mark.slow
@pytest.mark.parametrize("name", [*BUILDS, "gpt2", "convnext", "gru", "mobilenet_v3"])
def test_counted_from_the_joint_trace_equals_the_separate_trace(name):
    loss_fn, model, *inputs = BUILDS[name]() if name in BUILDS else zoo(name)
    report = audit(loss_fn, *inputs, params=model)
    labels = [GradCall.label_for([w]) for w in report.wrt]
    separate, duplicated = separate_from_joint(report.forms["joint"].outputs, report.merges["joint"], report.names,
                                               labels, top=TOP,
                                               sources=report.sources)
    assert separate == report.forms["separate"].cost
    assert duplicated == report.duplicated


@pytest.mark.slow
@pytest.mark.parametrize("name", ["seed_mlp", "transformer", "convnet", "gpt2"])
def test_a_counted_audit_traces_the_joint_call_only_and_gives_the_built_figures(name):
    loss_fn, model, *inputs = BUILDS[name]() if name in BUILDS else zoo(name)
    built = audit(loss_fn, *inputs, params=model)
    counted = audit(loss_fn, *inputs, params=model, materialize=False)
    assert not counted.materialized and counted.forms["separate"].outputs is None
    for form in ("separate", "joint", "separate_merged", "joint_merged"):
        assert counted.forms[form].cost == built.forms[form].cost, form
    assert counted.duplicated == built.duplicated
    assert counted.joint_duplicates == built.joint_duplicates
    fx = counted.framework["fx_nodes"]
    assert set(fx) == {"joint"} and fx["joint"] == built.framework["fx_nodes"]["joint"]  # no separate call traced
    assert "counted from it, not traced" in counted.to_text()


def test_the_command_lines_count_flag_reaches_the_torch_audit():
    from graphaudit.frontends.torch import CLI

    loss_fn, model, *inputs = BUILDS["seed_mlp"]()
    target = CLI.recognise((loss_fn, model, *inputs), "m.py:target")
    from graphaudit.cli.options import analysis_options
    from graphaudit.cli.targets import audit_target

    options = {**analysis_options(), "count": True}
    assert "count" in CLI.options and audit_target(CLI, target, options, "m.py:target").materialized is False


def test_the_report_suggests_counting_when_there_are_many_parameters():
    from graphaudit.frontends.torch.section import MANY_PARAMETERS

    def loss_fn(model, x):
        return model(x).square().sum()

    x = torch.randn(2, 3)
    for layers, suggested in ((MANY_PARAMETERS // 2, True), (MANY_PARAMETERS // 2 - 1, False)):
        model = torch.nn.Sequential(*[torch.nn.Linear(3, 3) for _ in range(layers)])  # two parameters a layer
        assert ("materialize=False" in audit(loss_fn, x, params=model).to_text()) is suggested
        assert "materialize=False, CLI" not in audit(loss_fn, x, params=model, materialize=False).to_text()
