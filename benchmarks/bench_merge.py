"""Benchmark 2: merge throughput, and graphaudit's merge vs PyTensor's MergeOptimizer on one graph.

Part one merges the separate form (one ga.grad per parameter) of deep chains whose depths are
chosen so that the graphs span ~10k .. 1M operations; throughput = operations / merge time.
Part two builds the separate grads of a deep chain in PyTensor, imports them with
``from_pytensor`` and merges that same graph with graphaudit and with PyTensor's
``MergeOptimizer`` (only the merges are timed, not the import, nor MergeOptimizer's clone).

    python benchmarks/bench_merge.py
"""

from __future__ import annotations

import statistics
import time

import graphaudit as ga
from common import (
    CHAIN_BATCH,
    CHAIN_WIDTH,
    ChainSizes,
    chain_widths,
    count_text,
    median_time,
    operation_count,
    pytensor_mlp,
    pytensor_separate,
    ratio_text,
    seconds_text,
    separate_form,
    table,
    target,
    title,
)

SIZES = (10_000, 30_000, 100_000, 300_000, 1_000_000)  # operations in the separate form, at least
PYTENSOR_DEPTH = 64
REPEATS, BUDGET = 10, 5.0  # per measurement: at most REPEATS runs, fewer once BUDGET seconds are spent
MERGE_OPTIMIZER_REPEATS = 3


def rate_text(rate: float) -> str:
    return f"{count_text(rate)} nodes/s"


def main() -> int:
    title("2. merge throughput: graphaudit merge, and PyTensor's MergeOptimizer on the same imported graph")
    sizes = ChainSizes()
    rows, rates = [], []
    for wanted in SIZES:
        depth = sizes.depth_for(wanted)
        separate = separate_form(ga.models.deep_chain(depth))
        nodes = operation_count(separate)
        timing = median_time(lambda: ga.merge(separate), repeats=REPEATS, budget=BUDGET)
        rates.append((nodes, nodes / timing.seconds))
        rows.append([f"chain L={depth}, graphaudit grads", count_text(nodes), count_text(timing.result.nodes_after),
                     str(timing), rate_text(nodes / timing.seconds), "-", "-"])
        del separate, timing

    from graphaudit.frontends.pytensor import from_pytensor, merge_optimizer

    x, y, params, loss = pytensor_mlp(chain_widths(PYTENSOR_DEPTH))
    start = time.perf_counter()
    grads = pytensor_separate(loss, params)
    build = time.perf_counter() - start
    start = time.perf_counter()
    imported = from_pytensor(grads, shapes={x: (CHAIN_BATCH, CHAIN_WIDTH), y: (CHAIN_BATCH,)}).outputs
    import_seconds = time.perf_counter() - start
    nodes = operation_count(imported)
    ga_timing = median_time(lambda: ga.merge(imported), repeats=REPEATS, budget=BUDGET)
    runs = [merge_optimizer(grads) for _ in range(MERGE_OPTIMIZER_REPEATS)]
    pt_seconds = statistics.median(run["seconds"] for run in runs)
    pt_ratio = pt_seconds / ga_timing.seconds
    rows.append([f"chain L={PYTENSOR_DEPTH}, PyTensor grads imported", count_text(nodes),
                 f"{count_text(ga_timing.result.nodes_after)} (PyTensor {count_text(runs[0]['nodes'])})",
                 str(ga_timing), rate_text(nodes / ga_timing.seconds),
                 f"{seconds_text(pt_seconds)} ({len(runs)}), {rate_text(nodes / pt_seconds)}", ratio_text(pt_ratio)])

    table(["graph (separate form)", "nodes", "after merge", "graphaudit merge", "graphaudit throughput",
           "PyTensor MergeOptimizer", "PyTensor/ga"], rows)
    print(f"nodes = operations (leaves not counted); times are medians, (n) = runs: at most {REPEATS}, fewer once "
          f"{BUDGET:.0f} s are spent; MergeOptimizer {MERGE_OPTIMIZER_REPEATS} runs, each on a fresh clone")
    print(f"PyTensor graph: {len(params)} separate pytensor.grad calls built in {seconds_text(build)}, "
          f"imported in {seconds_text(import_seconds)} (neither timed in the merge columns)")
    (small_nodes, small_rate), (big_nodes, big_rate) = rates[0], rates[-1]
    target(f"merge throughput at {count_text(big_nodes)} nodes", big_rate, ">=", 1_000_000, rate_text)
    target(f"merge linearity, throughput at {count_text(big_nodes)} / at {count_text(small_nodes)} nodes",
           100 * big_rate / small_rate, ">=", 70, lambda p: f"{p:.0f}%")
    target(f"merge vs PyTensor MergeOptimizer on the same imported graph ({count_text(nodes)} nodes)",
           pt_ratio, ">=", 20, ratio_text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
