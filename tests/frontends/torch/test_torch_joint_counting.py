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
                                               labels, top=TOP)
    assert separate == report.forms["separate"].cost
    assert duplicated == report.duplicated
