"""Benchmark 5: the PyTorch front-end's audit against PyTorch's own tracing of the separate grads.

The examples' seed MLP (``nn.Linear`` and ``nn.Sigmoid`` layers, ``log_softmax`` and the mean
NLL), their ``nn.TransformerEncoderLayer(64, 4, 128, batch_first=True)`` with a linear head
(batch 8, sequence 16), and deep chains (the seed MLP's builder with the chains' widths),
all built on the ``meta`` device: nothing is allocated, and the audit traces on fake CPU
tensors. PyTorch's side is ``make_fx(tracing_mode="fake")`` of the forward and one
``torch.autograd.grad`` per parameter, on fake CPU tensors; ``graphaudit.frontends.torch.audit``
traces the same program and the joint call in one ``make_fx``, imports the FX graph, merges
and costs it. "graphaudit's own" is, per run, the audit's time minus the tracing it reports,
then the median of those.

    python benchmarks/bench_torch.py

Not run by ``run_all.py``: about 1.5 minutes on a 2-core machine, most of it the L=64 chain
(PyTorch's tracing of its 130 separate grads alone takes over 10 s a run).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.experimental.proxy_tensor import make_fx

from common import (
    CHAIN_BATCH,
    SEED_BATCH,
    SEED_WIDTHS,
    Timing,
    chain_widths,
    count_text,
    median_time,
    ratio_text,
    seconds_text,
    table,
    title,
)
from graphaudit.frontends.torch import audit
from graphaudit.frontends.torch.capture import fake_like
from graphaudit.frontends.torch.compile_check import programs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import torch_seed_mlp  # noqa: E402  the examples' models: the same networks, written once
import torch_transformer  # noqa: E402

DEPTHS = (16, 64)
REPEATS, BUDGET = 20, 3.0  # per measurement: at most REPEATS runs, fewer once BUDGET seconds are spent


def trace_separate(loss_fn, model: torch.nn.Module, inputs: tuple) -> None:
    """make_fx of the forward and one autograd.grad per parameter, on fake CPU tensors."""
    program = programs(loss_fn, model, inputs)
    with FakeTensorMode():
        fakes = [[fake_like(t) for t in group] for group in (program.values, program.fixed, inputs)]
    make_fx(program.fns["separate"], tracing_mode="fake")(fakes[0], fakes[1], *fakes[2])


def time_audit(loss_fn, model: torch.nn.Module, inputs: tuple) -> tuple[Timing, float]:
    """The audit's timing, and the median over its runs of graphaudit's own time (run time minus its make_fx)."""
    own_times = []

    def audited():
        start = time.perf_counter()
        report = audit(loss_fn, *inputs, params=model)
        own_times.append(time.perf_counter() - start - report.framework["trace_seconds"])
        return report

    return median_time(audited, repeats=REPEATS, budget=BUDGET), statistics.median(own_times)


def main() -> int:
    title("5. PyTorch front-end: graphaudit.frontends.torch.audit vs make_fx of all separate grads")
    cases = [("seed MLP", *torch_seed_mlp.build(SEED_WIDTHS, SEED_BATCH, device="meta"))]
    with torch.device("meta"):
        cases.append(("transformer layer", *torch_transformer.build()))
    cases += [(f"chain L={depth}", *torch_seed_mlp.build(chain_widths(depth), CHAIN_BATCH, device="meta"))
              for depth in DEPTHS]
    trace_separate(cases[0][1], cases[0][2], tuple(cases[0][3:]))  # warm-up, untimed: imports and caches

    rows = []
    for name, loss_fn, model, *inputs in cases:
        inputs = tuple(inputs)
        torch_timing = median_time(lambda: trace_separate(loss_fn, model, inputs), repeats=REPEATS, budget=BUDGET)
        ga_timing, own = time_audit(loss_fn, model, inputs)
        report = ga_timing.result
        torch_nodes = report.framework["fx_nodes"]["separate"]["nodes"]
        rows.append([name, report.framework["parameters"], count_text(torch_nodes),
                     count_text(report.forms["separate"].cost.nodes), str(torch_timing), str(ga_timing),
                     ratio_text(ga_timing.seconds / torch_timing.seconds), seconds_text(own),
                     ratio_text(own / torch_timing.seconds)])
        del torch_timing, ga_timing, report

    table(["model", "params", "separate FX aten calls", "imported nodes", "make_fx, separate", "graphaudit audit",
           "audit/make_fx", "graphaudit's own", "own/make_fx"], rows)
    print(f"times are medians, (n) = runs: at most {REPEATS}, fewer once {BUDGET:.0f} s are spent; graphaudit's "
          f"own = median over runs of audit time - its make_fx time (forward, separate and joint calls in one "
          f"trace); PyTorch {torch.__version__}")
    print("NOTE issue 16 sets no target for the PyTorch front-end's speed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
