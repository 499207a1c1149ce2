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


@pytest.mark.parametrize("name", MODELS)
def test_every_traced_op_has_a_row_with_a_cost_rule(name):
    ops = traced_ops(name)
    assert MODELS[name] <= ops, "the model no longer brings the ops it is here for"
    assert sorted(ops - set(TABLE.rows)) == []
    assert [op for op in sorted(ops) if TABLE.rows[op].cost is None] == []
