"""Every aten op that the zoo's models trace has a row with a cost rule in the torch op table.

A few of the zoo's fast models (``benchmarks/zoo_models.py``) are traced as an audit traces them
(the forward, one grad call per parameter, the joint call, functionalized); every ``OpOverload`` in
the FX graph the importer reads must have a row in ``TABLE.rows``, data-only ops included (their rows say 0 FLOPs). The zoo itself
(``make zoo``) lists, per model, the ops that have none.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
import zoo_models  # noqa: E402

from graphaudit.frontends.torch.aten import op_key  # noqa: E402
from graphaudit.frontends.torch.capture import capture  # noqa: E402
from graphaudit.frontends.torch.ops import TABLE  # noqa: E402

# what each brings: BERT's padding mask (bitwise_and), GPT-2's causal mask (tril) and dropout, MobileNetV3's
# hardswish and hardsigmoid, LLaMA's RoPE, RMSNorm and grouped-query attention, nn.LSTM's cells
# (as imported: functionalized, so an in-place op arrives as its out-of-place op, ``bernoulli`` for ``bernoulli_``)
MODELS = {"bert": {"aten.bitwise_and"}, "gpt2": {"aten.tril", "aten.bernoulli"},
          "mobilenet_v3": {"aten.hardswish", "aten.hardswish_backward", "aten.hardsigmoid",
                           "aten.hardsigmoid_backward"},
          "llama": {"aten.rsqrt", "aten.silu"}, "lstm": {"aten.sigmoid", "aten.tanh"}}


def traced_ops(name: str) -> set[str]:
    loss_fn, model, *inputs = zoo_models.build(name)
    graph = capture(loss_fn, model, tuple(inputs)).graph.graph
    return {op_key(n.target)[0] for n in graph.nodes
            if n.op == "call_function" and isinstance(n.target, torch._ops.OpOverload)}


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_every_traced_op_has_a_row_with_a_cost_rule(name):
    ops = traced_ops(name)
    assert MODELS[name] <= ops, "the model no longer brings the ops it is here for"
    assert sorted(ops - set(TABLE.rows)) == []
    assert [op for op in sorted(ops) if TABLE.rows[op].cost is None] == []


def test_writes_into_views_arrive_as_costed_copies():
    """T5's ``_shift_right``: a ``copy_`` into a slice and a ``fill_`` into a select. Functionalized, they are
    ``slice_scatter``/``select_scatter`` and ``fill``: data movement, no FLOPs, their output's bytes."""
    from graphaudit.analysis.cost import node_bytes, node_flops
    from graphaudit.core.graph import topological_order
    from graphaudit.frontends.torch import audit

    embed = torch.nn.Embedding(5, 3).double()

    def loss_fn(model, ids):
        shifted = ids.new_zeros(ids.shape)
        shifted[:, 1:] = ids[:, :-1].clone()
        shifted[:, 0] = 4
        return model(shifted).square().sum()

    report = audit(loss_fn, torch.tensor([[1, 2, 3], [0, 1, 2]]), params=embed)
    assert [form.cost.no_cost_rule for form in report.forms.values()] == [()] * len(report.forms)
    written = [n for n in topological_order(report.forms["joint"].outputs)
               if n.op in ("aten.fill", "aten.slice_scatter", "aten.select_scatter")]
    assert {n.op for n in written} >= {"aten.fill", "aten.slice_scatter"}
    for node in written:
        assert node_flops(node) == 0 and node_bytes(node) == node.size * node.dtype.itemsize
