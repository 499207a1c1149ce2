"""Parameters the loss does not reach: audited without them, listed in the report, never an exception.

A PINN's residual is built from derivatives of the network's output w.r.t. its inputs: the last
layer's bias shifts the output by a constant and has no gradient there.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from graphaudit.frontends.torch import audit, named_leaves  # noqa: E402

import graphaudit as ga  # noqa: E402


def pinn():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(1, 6), nn.Tanh(), nn.Linear(6, 1)).double()
    x = torch.linspace(0, 1, 5, dtype=torch.float64).reshape(5, 1)

    def residual(model, x):
        x = x.clone().requires_grad_(True)
        u = model(x)
        (u_x,) = torch.autograd.grad(u.sum(), x, create_graph=True)
        return (u_x ** 2).mean()

    return residual, net, x


def test_the_last_bias_is_listed_and_the_other_gradients_are_torchs_own():
    residual, net, x = pinn()
    report = audit(residual, x, params=net)
    assert report.framework["no_gradient"] == ["2.bias"] and report.wrt == ["0.weight", "0.bias", "2.weight"]
    assert "parameters the loss does not reach (no gradient; read as constants, not audited): 2.bias" in str(report)
    own = torch.autograd.grad(residual(net, x), [p for name, p in net.named_parameters() if name != "2.bias"])
    leaves = named_leaves(residual, x, params=net)
    feed = {leaf: leaves[leaf.name] for leaf in
            ga.core.graph.topological_order(report.forms["joint"].outputs) if leaf.is_leaf and leaf.name in leaves}
    for form in ("separate", "joint", "separate_merged"):
        for value, expected in zip(ga.evaluate(report.forms[form].outputs, feed), own):
            assert abs(value - expected.numpy()).max() < 1e-12


def test_a_dict_with_an_unreached_tensor_works_too_and_a_loss_reaching_nothing_is_refused():
    w, b = torch.ones(3, dtype=torch.float64), torch.ones(1, dtype=torch.float64)
    report = audit(lambda p, x: (p["w"] * x).sum() * 0 + (p["w"] ** 2).sum(), torch.ones(3, dtype=torch.float64),
                   params={"w": w, "b": b})
    assert report.framework["no_gradient"] == ["b"] and report.wrt == ["w"]
    with pytest.raises(ValueError, match="the loss does not depend on any parameter"):
        audit(lambda p, x: x.sum() * p["b"].detach().sum(), torch.ones(3), params={"b": torch.ones(1)})
