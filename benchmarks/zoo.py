"""The model zoo: the PyTorch front-end's audit of 15 architectures, each checked against PyTorch itself.

Per model (``zoo_models.py``: tiny, random init, float64), one row:

- nodes of the separate, joint and merged separate forms, and the FLOPs merging removes;
- ``merged == joint``: the report's ``merged_equals_joint``;
- the imported forms (separate, joint, merged separate) evaluated by ``graphaudit.core.evaluate``
  against eager ``torch.autograd.grad``: the largest relative error over every gradient,
  "equal" within 1e-9 (random draws seeded alike before each run);
- the joint form's matmul FLOPs against ``torch.utils.flop_counter.FlopCounterMode`` on the
  eager joint gradients, op by op, after two allowances computed from the graph (never a
  tolerance): the counter has no formula for the CPU attention kernels (it counts them as 0),
  and it counts a grouped convolution's grad_weight ``groups`` times;
- the ops with no cost rule, listed;
- the audit's time over a plain fake ``make_fx`` trace of the same program (the forward, one
  ``autograd.grad`` per parameter, one joint call).

    python benchmarks/zoo.py [--models bert,resnet] [--markdown FILE] [--json FILE] [--repeats N]

Not run by ``make test`` nor ``run_all.py``: ``make zoo`` runs it (about 4 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import transformers
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.experimental.proxy_tensor import make_fx
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zoo_models  # noqa: E402

import graphaudit as ga  # noqa: E402
from graphaudit.analysis.cost import node_flops  # noqa: E402
from graphaudit.core.describe import si  # noqa: E402
from graphaudit.frontends.common import ATTR_OUTPUT  # noqa: E402
from graphaudit.frontends.torch import audit  # noqa: E402
from graphaudit.frontends.torch import capture as capturing  # noqa: E402
from graphaudit.frontends.torch import named_leaves  # noqa: E402
from graphaudit.core.ops import get_op  # noqa: E402

SEED = 0
EQUAL = 1e-9  # the largest relative error still called "equal" (float64)
FORMS = ("separate", "joint", "separate_merged")  # the imported forms evaluated against eager gradients
# FlopCounterMode has no formula for these (it counts them as 0); graphaudit counts them as flop_registry's
# rules for the CUDA flash kernels do
ATTENTION = ("aten._scaled_dot_product_flash_attention_for_cpu",
             "aten._scaled_dot_product_flash_attention_for_cpu_backward")


def eager_joint(loss_fn, model: torch.nn.Module, inputs: tuple) -> tuple[list[np.ndarray], dict[str, int]]:
    """PyTorch's joint gradients (in the audit's parameter order) and FlopCounterMode's FLOPs by op.

    Run on a copy of the model (a BatchNorm in training mode updates its running statistics),
    random draws from ``SEED``.
    """
    model = copy.deepcopy(model)
    params = [p for p in model.parameters() if p.requires_grad]
    torch.manual_seed(SEED)
    with FlopCounterMode(display=False) as counter:
        grads = torch.autograd.grad(loss_fn(model, *inputs), params)
    by_op = {str(op): flops for op, flops in counter.get_flop_counts()["Global"].items() if flops}
    return [g.detach().numpy() for g in grads], by_op


def plain_trace(loss_fn, model: torch.nn.Module, inputs: tuple) -> None:
    """``make_fx`` on fake tensors of the program the audit traces, without its node meta and hooks."""
    named = capturing.named_tensors(loss_fn, model, inputs)

    def program(params, fixed, values):
        loss = capturing.run_loss(loss_fn, model, named, (params, fixed, values), inputs)
        separate = [torch.autograd.grad(loss, [p], retain_graph=True, allow_unused=True)[0] for p in params]
        return separate + list(torch.autograd.grad(loss, params, allow_unused=True))

    with FakeTensorMode():
        fakes = [[capturing.fake_like(t) for t in group.values()] for group in named[:3]]
    for p in fakes[0]:
        p.requires_grad_(True)
    make_fx(program, tracing_mode="fake")(*fakes)


def relative_error(got: list[np.ndarray], want: list[np.ndarray]) -> float:
    """The largest ``max|got - want| / max|want|`` over the gradients."""
    return max(float(np.max(np.abs(g - w)) / max(np.max(np.abs(w)), np.finfo(np.float64).tiny))
               for g, w in zip(got, want))


def flop_check(joint: list[ga.Node], counted: dict[str, int]) -> dict:
    """The joint form's matmul FLOPs by op against FlopCounterMode's, after its two known differences.

    ``expected`` is what the counter should say if graphaudit's counts are right: graphaudit's
    FLOPs by op, less the attention kernels (the counter counts 0), plus ``groups - 1`` more
    copies of each grouped convolution's grad_weight (the counter multiplies it by every input
    channel, not a group's).
    """
    ours: Counter[str] = Counter()
    attention = grouped = 0
    for node in ga.topological_order(joint):
        if node.is_leaf or not get_op(node.op).is_matmul:
            continue
        flops = node_flops(node)
        ours[node.op] += flops
        if node.op in ATTENTION:
            attention += flops
        elif node.op == "aten.convolution_backward" and node.attr(ATTR_OUTPUT) == 1:
            grouped += (node.attr("groups") - 1) * flops
    expected = {op: flops for op, flops in ours.items() if op not in ATTENTION}
    if grouped:
        expected["aten.convolution_backward"] += grouped
    expected = {op: flops for op, flops in expected.items() if flops}
    return {"graphaudit": sum(ours.values()), "counter": sum(counted.values()), "attention": attention,
            "grouped_grad_weight": grouped, "by_op_equal": expected == counted,
            "by_op": {op: [ours.get(op, 0), counted.get(op, 0)] for op in sorted(set(ours) | set(counted))}}


def timed_in_turn(fns: list, repeats: int) -> tuple[list[float], list]:
    """Median wall times of each of ``fns`` over ``repeats`` rounds (the functions run in turn, so that load
    from other work falls on all of them alike), and each one's last result."""
    times: list[list[float]] = [[] for _ in fns]
    results: list = [None] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            results[i] = None
            gc.collect()  # untimed: the garbage of earlier runs is not this run's
            start = time.perf_counter()
            results[i] = fn()
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times], results


def measure(name: str, repeats: int = 3) -> dict:
    """One model's row (see the module's docstring)."""
    loss_fn, model, *inputs = zoo_models.build(name, SEED)
    inputs = tuple(inputs)
    leaves = named_leaves(loss_fn, *inputs, params=model)
    eager, counted = eager_joint(loss_fn, model, inputs)
    plain_trace(loss_fn, model, inputs)  # untimed: the first trace of an op fills PyTorch's caches
    (trace_seconds, audit_seconds), (_, report) = timed_in_turn(
        [lambda: plain_trace(loss_fn, model, inputs), lambda: audit(loss_fn, *inputs, params=model)], repeats)
    errors = {}
    for form in FORMS:
        torch.manual_seed(SEED)  # the same draws as eager's, when the graph makes them in eager's order
        errors[form] = relative_error(ga.evaluate(report.forms[form].outputs, leaves), eager)
    forms = report.forms
    no_rule = Counter(dict(forms["separate"].cost.no_cost_rule)) + Counter(dict(forms["joint"].cost.no_cost_rule))
    return {
        "model": name,
        "parameters": len(report.wrt),
        "nodes": {form: forms[form].cost.nodes for form in ("separate", "joint", "separate_merged", "joint_merged")},
        "duplicated_flops": report.duplicated["flops"],
        "joint_flops": forms["joint"].cost.flops,
        "merged_equals_joint": report.merged_equals_joint,
        "max_relative_error": errors,
        "matmul_flops": flop_check(forms["joint"].outputs, counted),
        "no_cost_rule": dict(sorted(no_rule.items())),
        "audit_seconds": audit_seconds,
        "trace_seconds": trace_seconds,
    }


# --- the table ------------------------------------------------------------------------------------

HEADERS = ["model", "params", "nodes separate / joint / merged", "duplicated FLOPs", "merged == joint",
           "max rel. error vs eager", "joint matmul FLOPs vs FlopCounterMode", "no cost rule", "audit / make_fx"]
NOTES = {
    "bert": "transformers BERT, sequence classification, padding mask",
    "gpt2": "transformers GPT-2 LM, train() (dropout on), tied embeddings",
    "llama": "transformers LLaMA: RoPE, RMSNorm, SwiGLU, GQA 4/2",
    "mistral": "transformers Mistral: LLaMA + sliding window",
    "t5": "transformers T5 encoder-decoder",
    "vit": "transformers ViT, 8x8 patches",
    "resnet": "ResNet BasicBlocks, BatchNorm in train()*",
    "convnext": "ConvNeXt blocks, channels_last*",
    "mobilenet_v3": "MobileNetV3-small blocks: SE, hardswish*",
    "efficientnet": "EfficientNet-B0 MBConv: SE, SiLU*",
    "unet": "U-Net: max pool, transposed conv, skip*",
    "lstm": "nn.LSTM LM, 2 layers",
    "gru": "nn.GRU LM, 2 layers",
    "multihead_attention": "nn.MultiheadAttention, padding mask",
    "transformer_encoder": "nn.TransformerEncoder, pre-norm",
}


def error_text(errors: dict[str, float]) -> str:
    worst = max(errors.values())
    if worst <= EQUAL:
        return f"equal ({worst:.0e})"
    return "NO: " + ", ".join(f"{form} {error:.2g}" for form, error in errors.items() if error > EQUAL)


def flops_text(check: dict) -> str:
    """``1.2 MFLOP = counter`` or ``= counter + attention 3 k - grouped 5 k``; NO when an op differs."""
    allowances = "".join(f" {sign} {what} {si(check[key], '')}".rstrip() for sign, what, key in
                         (("+", "attention", "attention"), ("-", "grouped grad_weight", "grouped_grad_weight"))
                         if check[key])
    verdict = "=" if check["by_op_equal"] else "!="
    text = f"{si(check['graphaudit'], 'FLOP')} {verdict} counter {si(check['counter'], '')}".rstrip() + allowances
    return text if check["by_op_equal"] else text + " (NO: by op, see the JSON)"


def row_cells(row: dict) -> list[str]:
    nodes = row["nodes"]
    no_rule = ", ".join(f"{op} x{n}" for op, n in row["no_cost_rule"].items()) or "none"
    return [f"{row['model']} ({NOTES[row['model']]})", str(row["parameters"]),
            f"{nodes['separate']:,} / {nodes['joint']:,} / {nodes['separate_merged']:,}",
            si(row["duplicated_flops"], "FLOP"), "yes" if row["merged_equals_joint"] else "NO",
            error_text(row["max_relative_error"]), flops_text(row["matmul_flops"]), no_rule,
            f"{row['audit_seconds'] / row['trace_seconds']:.2f}x ({row['audit_seconds']:.2f} s)"]


def markdown(rows: list[dict], command: str, load: tuple[float, float]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(row_cells(row)) + " |" for row in rows]
    lines += [
        "",
        f"`{command}`; PyTorch {torch.__version__}, transformers {transformers.__version__}; float64, random init "
        f"(seed {SEED}), hidden 32, 2 layers, sequences of 8, 32x32 images, batch 2; load average {load[0]:.1f} at "
        f"the start, {load[1]:.1f} at the end.",
        "\\* CNNs built with torch.nn as torchvision (and timm) define them: timm imports torchvision, whose "
        "registry build cannot load beside torch 2.13.0+cpu.",
        f"Max rel. error: the imported separate, joint and merged separate forms evaluated by graphaudit against "
        f"eager `autograd.grad`, largest `max|diff| / max|grad|` over the gradients; equal within {EQUAL:g}. "
        "FlopCounterMode on the eager joint gradients, compared op by op: it counts the CPU attention kernels as "
        "0 (+ attention: graphaudit's count of them) and a grouped convolution's grad_weight `groups` times "
        "(- grouped grad_weight: the extra copies). audit / make_fx: the audit's time over a plain fake `make_fx` "
        "of the forward, one `autograd.grad` per parameter and the joint call (medians of runs taken in turn), "
        "and the audit's median time.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help=f"comma-separated, from: {','.join(zoo_models.MODELS)} (default: all)")
    parser.add_argument("--markdown", metavar="FILE", help="also write the markdown table to FILE")
    parser.add_argument("--json", metavar="FILE", help="write every row's figures to FILE as JSON")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of the trace and the audit, in turn "
                        "(median; default 3)")
    args = parser.parse_args(argv)
    names = args.models.split(",") if args.models else list(zoo_models.MODELS)
    unknown = [name for name in names if name not in zoo_models.MODELS]
    if unknown:
        parser.error(f"unknown model {unknown[0]!r}; the models are {', '.join(zoo_models.MODELS)}")
    transformers.logging.set_verbosity_error()
    load_at_start = os.getloadavg()[0]
    rows = []
    for name in names:
        start = time.perf_counter()
        rows.append(measure(name, args.repeats))
        print(f"{name}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    command = "python benchmarks/zoo.py" + (f" --models {args.models}" if args.models else "") + (
        f" --repeats {args.repeats}" if args.repeats != 3 else "")
    text = markdown(rows, command, (load_at_start, os.getloadavg()[0]))
    print(text, end="")
    if args.markdown:
        Path(args.markdown).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
