"""analysis/joint_counting.py: the separate form counted from the joint form equals the separate form built."""

from __future__ import annotations

import pytest

import graphaudit as ga
from graphaudit.analysis.duplicates import TOP
from graphaudit.analysis.joint_counting import gradient_bits, separate_from_joint
from graphaudit.core.graph import GradCall


def counted(report):
    """The separate form's cost and duplicated work, from the report's joint form alone."""
    labels = [GradCall.label_for([w]) for w in report.wrt]
    return separate_from_joint(report.forms["joint"].outputs, report.merges["joint"], report.names, labels, top=TOP,
                               sources=dict(report.sources))


@pytest.mark.parametrize("model", [
    lambda: ga.models.seed_mlp(batch=4, widths=(6, 5, 4, 3, 2)),
    lambda: ga.models.deep_chain(depth=6, width=3, batch=2),
    lambda: ga.models.residual_mlp(depth=3, width=4, batch=2),
])
def test_counted_from_the_joint_form_equals_the_built_separate_form(model):
    m = model()
    report = ga.audit(m.loss, m.params)
    separate, duplicated = counted(report)
    assert separate == report.forms["separate"].cost
    assert duplicated == report.duplicated  # totals, by op, by call, by forward node, top rows: every figure


def test_each_node_knows_the_gradients_it_serves():
    # loss = sum(tanh(x @ w1) @ w2): dW2 needs the forward only; dW1 needs d(tanh) and so d(matmul_2)
    x = ga.placeholder("x", (3, 4), "float64")
    w1, w2 = ga.parameter("w1", (4, 5), "float64"), ga.parameter("w2", (5, 2), "float64")
    loss = ga.sum(ga.tanh(x @ w1) @ w2)
    joint = ga.grad(loss, [w1, w2])
    result = ga.merge(joint)
    bits = dict(zip(result.source, gradient_bits(result, joint)))
    assert bits[joint[0]] == 0b01 and bits[joint[1]] == 0b10
    backward = [n for n in result.source if n.call is not None and not n.is_leaf]
    both = [n for n in backward if bits[n] == 0b11]  # the seed's adjoint and what both calls read
    assert both and all((bits[i] & bits[n]) == bits[n] for n in backward for i in n.inputs)  # inputs serve more
    report = ga.audit(loss, [w1, w2])
    separate, duplicated = counted(report)
    forward_nodes = sum(1 for n in result.source if n.call is None and not n.is_leaf)
    assert separate.nodes == forward_nodes + sum(bits[n].bit_count() for n in backward)
    assert duplicated["nodes"] == separate.nodes - report.merges["joint"].nodes_after  # copies beyond one a class
