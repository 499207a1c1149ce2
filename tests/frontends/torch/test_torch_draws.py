"""Random draws in PyTorch programs: one draw, whatever merging rebuilds over it; purity decided per call.

``x @ w`` on a 3-D ``x`` views ``x`` once per product. The views are equal, so merging each
gradient form keeps one and rebuilds everything that read the other, the forward's random
draw (dropout's mask; the CPU attention kernel, which PyTorch tags as random) included. Both
merged forms then hold a copy of the ONE draw the program made, and must still be equal.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import torch_models as tm  # noqa: E402

import graphaudit as ga  # noqa: E402
from graphaudit.frontends.torch import audit, audit_function  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _registry_kept():
    with tm.op_registry_kept():
        yield


def dropout_program():
    """``tanh(x @ a + x @ b)`` on a 3-D ``x``, then dropout in training."""
    torch.manual_seed(0)
    params = {name: torch.randn(4, 5, dtype=torch.float64, requires_grad=True) for name in ("a", "b")}

    def loss_fn(p, x):
        return F.dropout(torch.tanh(x @ p["a"] + x @ p["b"]), 0.5, training=True).sum()

    return loss_fn, params, torch.randn(2, 3, 4, dtype=torch.float64)


def attention_program():
    """``q, k, v = x @ wq, x @ wk, x @ wv`` on a 3-D ``x``, into causal attention over two heads."""
    torch.manual_seed(0)
    params = {name: torch.randn(8, 8, dtype=torch.float64, requires_grad=True) for name in ("wq", "wk", "wv")}

    def loss_fn(p, x):
        q, k, v = [(x @ p[w]).view(2, 5, 2, 4).transpose(1, 2) for w in ("wq", "wk", "wv")]
        return F.scaled_dot_product_attention(q, k, v, is_causal=True).sum()

    return loss_fn, params, torch.randn(2, 5, 8, dtype=torch.float64)


def ops_of(outputs):
    return [node.op for node in ga.topological_order(outputs)]


@pytest.mark.parametrize("program", [dropout_program, attention_program])
def test_audit_says_yes(program):
    loss_fn, params, x = program()
    report = audit(loss_fn, x, params=params)
    assert report.merged_equals_joint
    separate, joint = report.forms["separate_merged"], report.forms["joint_merged"]
    assert separate.cost.nodes == joint.cost.nodes and separate.cost.flops == joint.cost.flops


def test_the_merged_forms_make_the_one_draw_of_dropout():
    loss_fn, params, x = dropout_program()
    report = audit(loss_fn, x, params=params)

    def draws(form):
        return [n for n in ga.topological_order(report.forms[form].outputs)
                if not n.is_leaf and not ga.core.ops.get_op(n.op).is_pure(n)]

    (drawn,) = draws("separate")  # the forward's one draw, read by every call
    for form in ("separate_merged", "joint_merged"):
        (copy,) = draws(form)
        assert copy.draw is drawn.draw


def test_attention_without_dropout_is_pure_and_with_dropout_is_not():
    loss_fn, params, x = attention_program()
    report = audit(loss_fn, x, params=params)
    forward = [n for n in ga.topological_order(report.forms["joint"].outputs) if n.op.endswith("_for_cpu")]
    assert forward and all(ga.core.ops.get_op(n.op).is_pure(n) for n in forward)
    with_dropout = [ga.Node(n.op, n.inputs, [(k, 0.1 if k == "dropout_p" else v) for k, v in n.attrs], n.shape,
                            n.dtype) for n in forward]  # the same calls, as if dropout_p were 0.1
    assert not any(ga.core.ops.get_op(n.op).is_pure(n) for n in with_dropout)


@pytest.mark.parametrize("program", [dropout_program, attention_program])
def test_audit_function_merges_separate_calls_into_the_joint_ones(program):
    loss_fn, params, x = program()

    def separate_and_joint(p, x):
        loss = loss_fn(p, x)
        separate = [torch.autograd.grad(loss, [p[name]], retain_graph=True)[0] for name in p]
        return separate + list(torch.autograd.grad(loss, list(p.values())))

    report = audit_function(separate_and_joint, x, params=params)
    merged = report.merges["original"].outputs
    half = len(merged) // 2
    assert all(s is j for s, j in zip(merged[:half], merged[half:]))
