"""deduplicate on models we did not write (``benchmarks/zoo_models.py``: transformers from tiny configs,
CNNs built block by block as torchvision and timm build them, nn.LSTM): one ``torch.autograd.grad`` per
parameter, deduplicated, gives eager PyTorch's gradients and executes the joint call's matmul and
convolution kernels (convolution_backward's results asked for by separate calls come from one call)."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import torch_models  # noqa: E402,F401  (puts examples/ on the path)
import torch_remedy as remedy  # noqa: E402
import zoo_models  # noqa: E402
from test_torch_remedy import assert_same_results, executed_matmuls  # noqa: E402

from graphaudit.frontends.torch import deduplicate  # noqa: E402


def steps(name: str):
    """``(separate, joint, params, buffers, inputs, model)`` of a zoo model (``torch_remedy.zoo_steps``)."""
    loss_fn, model, *inputs = zoo_models.build(name)
    params = {key: p.detach().clone().requires_grad_(True) for key, p in model.named_parameters()}
    buffers = {key: b.clone() for key, b in model.named_buffers()}
    return (*remedy.zoo_steps(loss_fn, model), params, buffers, inputs, model)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gpt2", "resnet", "gru", "mobilenet_v3"])
def test_separate_calls_deduplicated_are_the_joint_calls_kernels_with_eagers_gradients(name):
    separate, joint, params, buffers, inputs, model = steps(name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fast = deduplicate(separate, params, buffers, *inputs)
    written = [str(w.message) for w in caught if str(w.message).startswith("deduplicate: fn writes")]
    training_batch_norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                            and m.training and m.track_running_stats]
    assert bool(written) == bool(training_batch_norms)  # a BatchNorm in training writes its statistics
    copies = {name: b.clone() for name, b in buffers.items()}
    torch.manual_seed(11)  # GPT-2 trains with dropout on: one seed, the same draws
    got = fast(params, buffers, *inputs)
    torch.manual_seed(11)
    assert_same_results(got, separate(params, copies, *inputs))
    kernels = executed_matmuls(fast, params, buffers, *inputs)
    assert kernels == executed_matmuls(joint, params, copies, *inputs) < executed_matmuls(separate, params, copies,
                                                                                           *inputs)
