"""Benchmark: one trace for every parameter. A PyTorch audit that counts the separate form from the joint trace
(``audit(..., materialize=False)``) against one plain fake ``make_fx`` trace of the forward and the joint call,
and against the audit that traces every separate call.

The model is a deep stack of small residual blocks as transformers have them (LayerNorm, then a two-layer MLP
with GELU; six parameters a block), width 16, batch 4 x 8 tokens, on fake tensors. Times are medians of runs
taken in turn.

    python benchmarks/bench_counting.py [--blocks 20] [--large 170]

Targets (ratios measured in this run): counted audit <= 2x the plain trace on the model with more than 100
parameters; built / counted >= 5x there; the large model (1,000+ parameters) counted in seconds.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.experimental.proxy_tensor import make_fx

from graphaudit.frontends.torch import audit
from graphaudit.frontends.torch.capture import fake_like


class Block(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.up, self.down = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)

    def forward(self, x):
        return x + self.down(nn.functional.gelu(self.up(self.norm(x))))


def stack(blocks: int, width: int = 16) -> tuple:
    model = nn.Sequential(*[Block(width) for _ in range(blocks)])
    x = torch.randn(4, 8, width)

    def loss_fn(model, x):
        return loss_of(model(x))

    return loss_fn, model, x


def loss_of(output):
    return output.square().mean()


def plain_trace(loss_fn, model, x) -> None:
    """What PyTorch itself does to trace the forward and one joint grad call, on fake tensors."""
    names, params = zip(*model.named_parameters())

    def program(values, x):
        loss = loss_of(torch.func.functional_call(model, dict(zip(names, values)), (x,)))
        return torch.autograd.grad(loss, values)

    with FakeTensorMode():
        fakes = [fake_like(p).requires_grad_(True) for p in params]
        fake_x = fake_like(x)
    make_fx(program, tracing_mode="fake")(fakes, fake_x)


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--large", type=int, default=170)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    loss_fn, model, x = stack(args.blocks)
    parameters = len(list(model.parameters()))
    runs = {"plain trace": lambda: plain_trace(loss_fn, model, x),
            "counted audit": lambda: audit(loss_fn, x, params=model, materialize=False),
            "built audit": lambda: audit(loss_fn, x, params=model)}
    seconds = {name: [] for name in runs}
    for _ in range(args.repeats):  # in turn, so that load hits them alike
        for name, run in runs.items():
            seconds[name].append(timed(run, 1))
    median = {name: statistics.median(s) for name, s in seconds.items()}
    counted = audit(loss_fn, x, params=model, materialize=False)
    built = audit(loss_fn, x, params=model)
    assert counted.duplicated == built.duplicated and counted.forms["separate"].cost == built.forms["separate"].cost
    print(f"{args.blocks} blocks, {parameters} parameters (counted == built on every figure)")
    for name, value in median.items():
        print(f"  {name:<14} {value:8.3f} s")
    trace = counted.framework["trace_seconds"]
    print(f"  counted audit: trace {trace:.3f} s, import {counted.framework['import_seconds']:.3f} s, "
          f"merge {counted.forms['joint_merged'].build_seconds:.3f} s, the rest (counting, report) "
          f"{median['counted audit'] - trace - counted.framework['import_seconds'] - counted.forms['joint_merged'].build_seconds:.3f} s")
    over_trace = median["counted audit"] / median["plain trace"]
    built_over_counted = median["built audit"] / median["counted audit"]
    print(f"TARGET counted / plain trace = {over_trace:.2f}x (<= 2): {'met' if over_trace <= 2 else 'MISSED'}")
    print(f"TARGET built / counted = {built_over_counted:.1f}x (>= 5): {'met' if built_over_counted >= 5 else 'MISSED'}")

    loss_fn, model, x = stack(args.large)
    parameters = len(list(model.parameters()))
    start = time.perf_counter()
    report = audit(loss_fn, x, params=model, materialize=False)
    large = time.perf_counter() - start
    start = time.perf_counter()
    plain_trace(loss_fn, model, x)
    plain = time.perf_counter() - start
    print(f"{args.large} blocks, {parameters} parameters: counted audit {large:.2f} s (plain trace {plain:.2f} s); "
          f"separate form {report.forms['separate'].cost.nodes:,} nodes counted, "
          f"{report.duplicated['flops']:,} FLOPs duplicated")
    print(f"TARGET {parameters} parameters counted in seconds (< 30 s): {'met' if large < 30 else 'MISSED'}")


if __name__ == "__main__":
    main()
