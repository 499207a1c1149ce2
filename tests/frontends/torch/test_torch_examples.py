"""The PyTorch examples run small, and print the counts their models' structure implies."""

from __future__ import annotations

import re

import pytest

torch = pytest.importorskip("torch")

import torch_models as tm  # noqa: E402
import torch_per_sample  # noqa: E402  (torch_models puts examples/ on the path)

from graphaudit.frontends.torch import audit_function  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _registry_kept():
    with tm.op_registry_kept():
        yield


def figure(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in the output"
    return match.group(1)


def test_seed_mlp_prints_the_hand_count(capsys):
    widths, batch = (6, 5, 4, 3, 2), 3
    assert tm.torch_seed_mlp.main(["--batch", str(batch), "--widths", ",".join(map(str, widths))]) == 0
    out = capsys.readouterr().out
    # duplicated: layer j's input-gradient product, built by the 2(j-1) calls below it, needed once
    count = sum((2 * (j - 1) - 1) * 2 * batch * widths[j] * widths[j - 1] for j in range(2, len(widths)))
    assert f"({count:g} FLOP in matmuls)" in out
    assert "merge(separate) == merge(joint): yes" in out and "8 separate grad calls" in out


@pytest.mark.slow
@pytest.mark.parametrize("example, args, parameters", [
    ("torch_transformer", ["--d-model", "8", "--heads", "2", "--ff", "16", "--batch", "2", "--seq", "3"], 14),
    ("torch_convnet", ["--channels", "3", "--size", "4", "--batch", "2"], 10),
    ("torch_wgan_gp", ["--features", "4", "--hidden", "5", "--batch", "3"], 6),
])
def test_examples_merge_to_the_joint_form(example, args, parameters, capsys):
    assert getattr(tm, example).main(args) == 0
    out = capsys.readouterr().out
    assert f"{parameters} separate grad calls vs one joint call" in out
    assert "merge(separate) == merge(joint): yes" in out
    separate, merged = (int(figure(rf"{form}\s+(\d+)", out)) for form in ("separate", "separate merged"))
    assert merged == int(figure(r"joint merged\s+(\d+)", out)) < separate


def test_per_sample_loop_and_vmap_products_equal_the_hand_count(capsys):
    """Two layers (w0 -> w1 -> w2), batch B. The loop runs the forward once, 2B(w0 w1 + w1 w2), then per
    sample the whole batch's backward: dW2 and dH1 (2B w1 w2 each) and dW1 (2B w0 w1), all batch-sized
    whatever the sample; no two calls share a product. vmap(grad) re-runs the forward inside, then one
    sample's backward per sample: the same three products at batch size once."""
    widths, batch = (5, 4, 3), 4
    w0, w1, w2 = widths
    model, x, y = torch_per_sample.build(widths, batch)
    loop = audit_function(torch_per_sample.per_sample_loop, x, y, params=model)
    vmapped = audit_function(torch_per_sample.per_sample_vmap, x, y, params=model)
    forward = 2 * batch * (w0 * w1 + w1 * w2)
    backward = 2 * batch * (2 * w1 * w2 + w0 * w1)
    assert loop.merged.cost.matmul_flops == forward + batch * backward
    assert loop.duplicated["matmul_flops"] == 0
    assert vmapped.merged.cost.matmul_flops == forward + backward
    assert torch_per_sample.main(["--batch", str(batch), "--widths", ",".join(map(str, widths))]) == 0
    ratio = float(figure(r"loop / vmap matmul FLOPs = ([\d.]+)x", capsys.readouterr().out))
    assert ratio == pytest.approx((forward + batch * backward) / (forward + backward), abs=0.005)
