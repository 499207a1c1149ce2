"""Benchmark: does running a merged graph pay in JAX? The LSTM of ``examples/jax_lstm.py`` (``lax.scan``), its
gradients four ways under one ``jax.jit`` each:

- ``joint``: one ``jax.grad`` of the loss;
- ``separate``: one ``jax.grad`` per parameter leaf, all returned from one jitted function (XLA's CSE does not
  cross the scans' loop bodies: each separate backward scan stays);
- ``joint unrolled`` and ``separate unrolled``: the same with ``lax.scan(..., unroll=True)``: no loop left, so
  XLA's CSE sees the whole program, as it would see a merged, unrolled jaxpr of graphaudit's.

For each: the ``dot`` instructions of the optimised HLO, the ``while`` loops, the minimum time of the repeats
(``block_until_ready``), and the largest difference from the joint gradients.

    python benchmarks/bench_remedy_jax.py [--steps 24 --batch 8 --inputs 16 --hidden 32 --repeats 30]

What it decides: graphaudit's own evaluator of merged jaxprs would pay only if the unrolled separate
gradients kept more dots than the unrolled joint ones (XLA failing to merge what graphaudit merges) or
ran slower than the joint scan. They do not keep more (XLA merges them all once unrolled), and the joint
scan is the fastest: for JAX the remedy is the advice graphaudit already gives, one joint ``jax.grad``.
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import jax_lstm  # noqa: E402


def separate(loss):
    """One ``jax.grad`` per leaf of ``params``, each of the loss as a function of that leaf alone."""
    def gradients(params, xs, ys):
        return {key: jax.grad(lambda leaf: loss({**params, key: leaf}, xs, ys))(params[key]) for key in sorted(params)}
    return gradients


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--inputs", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    loss, (params, xs, ys), _ = jax_lstm.build(args.steps, args.batch, args.inputs, args.hidden)
    unrolled_loss = functools.partial(loss, unroll=True)
    variants = {"joint": jax.grad(loss), "separate": separate(loss),
                "joint unrolled": jax.grad(unrolled_loss), "separate unrolled": separate(unrolled_loss)}
    compiled = {name: jax.jit(fn) for name, fn in variants.items()}
    reference = compiled["joint"](params, xs, ys)
    print(f"JAX {jax.__version__} ({jax.default_backend()}), LSTM: {args.steps} steps, batch {args.batch}, "
          f"{args.inputs} inputs, {args.hidden} hidden; float32; minimum of {args.repeats} runs in turn\n")
    print(f"{'gradients':<20}{'dots':>6}{'whiles':>8}{'time':>11}{'/ joint':>9}{'max |diff|':>12}")
    times = {name: [] for name in compiled}
    for fn in compiled.values():
        jax.block_until_ready(fn(params, xs, ys))
    order = list(compiled)
    for round_ in range(args.repeats):
        for name in order if round_ % 2 == 0 else reversed(order):
            start = time.perf_counter()
            jax.block_until_ready(compiled[name](params, xs, ys))
            times[name].append(time.perf_counter() - start)
    for name, fn in compiled.items():
        hlo = fn.lower(params, xs, ys).compile().as_text()
        dots = len(re.findall(r"= \S+ dot\(", hlo))
        got = fn(params, xs, ys)
        difference = max(float(jnp.max(jnp.abs(got[key] - reference[key]))) for key in reference)
        print(f"{name:<20}{dots:>6}{hlo.count(' while('):>8}{min(times[name]) * 1e3:>9.3f}ms"
              f"{min(times[name]) / min(times['joint']):>8.2f}x{difference:>12.1e}")


if __name__ == "__main__":
    main()
