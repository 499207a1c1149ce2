"""Benchmark 4: the JAX front-end's audit against JAX's own tracing of the separate grads.

The seed MLP and deep chains written as a JAX user writes them: one positional argument per
parameter, sigmoid layers, softmax, mean NLL; arguments are ``jax.ShapeDtypeStruct`` (nothing
is allocated). JAX's side is ``jax.make_jaxpr(jax.grad(loss, argnums=i))`` for every
parameter i; ``graphaudit.frontends.jax.audit`` traces the same grads (and the joint one),
imports the jaxprs, merges and costs them. "graphaudit's own" is, per run, the audit's time
minus the tracing it reports (the import, merges, costs and report), then the median of those.

    python benchmarks/bench_jax.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from graphaudit.frontends.jax import audit
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from jax_seed_mlp import mlp_loss  # the example's loss: the same network, written once

DEPTHS = (16, 64)
REPEATS, BUDGET = 20, 3.0  # per measurement: at most REPEATS runs, fewer once BUDGET seconds are spent


def loss(*args):
    """``loss(w1, b1, w2, b2, ..., x, y)``: examples/jax_seed_mlp.py's network, one argument per parameter."""
    *params, x, y = args
    return mlp_loss(params, x, y)


def arguments(widths, batch) -> list:
    shapes = []
    for fan_in, fan_out in zip(widths, widths[1:]):
        shapes += [(fan_in, fan_out), (fan_out,)]
    args = [jax.ShapeDtypeStruct(s, jnp.float32) for s in shapes]
    return args + [jax.ShapeDtypeStruct((batch, widths[0]), jnp.float32), jax.ShapeDtypeStruct((batch,), jnp.int32)]


def trace_separate(args: list) -> None:
    for i in range(len(args) - 2):
        jax.make_jaxpr(jax.grad(loss, argnums=i))(*args)


def time_audit(args: list, argnums: tuple[int, ...]) -> tuple[Timing, float]:
    """The audit's timing, and the median over its runs of graphaudit's own time.

    Own time is a run's time minus the ``jax.make_jaxpr`` time (separate and joint) that
    the run's report gives.
    """
    own_times = []

    def audited():
        start = time.perf_counter()
        report = audit(loss, *args, argnums=argnums)
        traced = report.forms["separate"].build_seconds + report.forms["joint"].build_seconds
        own_times.append(time.perf_counter() - start - traced)
        return report

    return median_time(audited, repeats=REPEATS, budget=BUDGET), statistics.median(own_times)


def main() -> int:
    title("4. JAX front-end: graphaudit.frontends.jax.audit vs jax.make_jaxpr of all separate grads")
    cases = [("seed MLP", arguments(SEED_WIDTHS, SEED_BATCH))]
    cases += [(f"chain L={d}", arguments(chain_widths(d), CHAIN_BATCH)) for d in DEPTHS]
    trace_separate(cases[0][1])  # warm-up, untimed: imports and JAX's caches

    rows = []
    for name, args in cases:
        argnums = tuple(range(len(args) - 2))
        jax_timing = median_time(lambda: trace_separate(args), repeats=REPEATS, budget=BUDGET)
        ga_timing, own = time_audit(args, argnums)
        report = ga_timing.result
        rows.append([name, len(argnums), count_text(report.framework["jaxpr_equations"]["separate"]),
                     count_text(report.forms["separate"].cost.nodes), str(jax_timing), str(ga_timing),
                     ratio_text(ga_timing.seconds / jax_timing.seconds), seconds_text(own),
                     ratio_text(own / jax_timing.seconds)])
        del jax_timing, ga_timing, report

    table(["model", "params", "separate jaxpr eqns", "imported nodes", "JAX make_jaxpr, separate",
           "graphaudit audit", "audit/JAX", "graphaudit's own", "own/JAX"], rows)
    print(f"times are medians, (n) = runs: at most {REPEATS}, fewer once {BUDGET:.0f} s are spent; "
          f"graphaudit's own = median over runs of audit time - its make_jaxpr time; JAX {jax.__version__}")
    print("NOTE issue 8 sets no target for the JAX front-end; compare with the make_jaxpr times it quotes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
