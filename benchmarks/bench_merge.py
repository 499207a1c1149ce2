"""Benchmark 2: merge throughput, and graphaudit's merge vs PyTensor's MergeOptimizer on one graph.

Part one merges the separate form (one ga.grad per parameter) of deep chains whose depths are
chosen so that the graphs span ~10k .. 1M operations; throughput = operations / merge time.
Each of its rows runs in a fresh process, as a user's audit would: a graph built in memory
that the previous rows' graphs freed lies scattered, and merging it is slower for that alone.
Part two builds the separate grads of a deep chain in PyTensor, imports them with
``from_pytensor`` and merges that same graph with graphaudit and with PyTensor's
``MergeOptimizer`` in this process (only the merges are timed, not the import, nor
MergeOptimizer's clone).

    python benchmarks/bench_merge.py
    python benchmarks/bench_merge.py --row 445    # one row of part one (chain depth), as JSON
    python benchmarks/bench_merge.py --in-one-process    # part one's rows one after another, here
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import graphaudit as ga
from common import (
    CHAIN_BATCH,
    CHAIN_WIDTH,
    ChainSizes,
    chain_widths,
    count_text,
    in_fresh_process,
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
ROW_TIMEOUT = 300  # seconds a row's process may take before it is reported as timed out


def rate_text(rate: float) -> str:
    return f"{count_text(rate)} nodes/s"


def run_row(depth: int) -> dict:
    """Merge the separate form of the chain of ``depth`` layers in this process."""
    separate = separate_form(ga.models.deep_chain(depth))
    timing = median_time(lambda: ga.merge(separate), repeats=REPEATS, budget=BUDGET)
    return {"nodes": operation_count(separate), "nodes_after": timing.result.nodes_after,
            "seconds": timing.seconds, "runs": timing.runs}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--row", type=int, help="merge one chain's separate form in this process, print it as JSON")
    parser.add_argument("--in-one-process", action="store_true",
                        help="run part one's rows one after another in this process (each in memory the last freed)")
    args = parser.parse_args(argv)
    if args.row is not None:
        print(json.dumps(run_row(args.row)))
        return 0

    title("2. merge throughput: graphaudit merge, and PyTensor's MergeOptimizer on the same imported graph")
    sizes = ChainSizes()
    rows, results = [], []
    for wanted in SIZES:
        depth = sizes.depth_for(wanted)
        result = run_row(depth) if args.in_one_process else in_fresh_process(__file__, str(depth), ROW_TIMEOUT)
        results.append(result)
        name = f"chain L={depth}, graphaudit grads"
        if "error" in result:
            rows.append([name, "-", "-", result["error"], "-", "-", "-"])
            continue
        result["rate"] = result["nodes"] / result["seconds"]
        rows.append([name, count_text(result["nodes"]), count_text(result["nodes_after"]),
                     f"{seconds_text(result['seconds'])} ({result['runs']})", rate_text(result["rate"]), "-", "-"])

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
          f"{BUDGET:.0f} s are spent; graphaudit grads: each row in "
          f"{'this process, after the rows above' if args.in_one_process else 'a fresh process'}; "
          f"MergeOptimizer {MERGE_OPTIMIZER_REPEATS} runs, each on a fresh clone")
    print(f"PyTensor graph: {len(params)} separate pytensor.grad calls built in {seconds_text(build)}, "
          f"imported in {seconds_text(import_seconds)} (neither timed in the merge columns)")
    small, big = results[0], results[-1]  # a row that failed has no "nodes" and no "rate"
    big_size, small_size = count_text(big.get("nodes", SIZES[-1])), count_text(small.get("nodes", SIZES[0]))
    failed = big.get("error") or small.get("error", "")
    target(f"merge throughput at {big_size} nodes", big.get("rate"), ">=", 1_000_000, rate_text, big.get("error", ""))
    target(f"merge linearity, throughput at {big_size} / at {small_size} nodes",
           None if failed else 100 * big["rate"] / small["rate"], ">=", 70, lambda p: f"{p:.0f}%", failed)
    target(f"merge vs PyTensor MergeOptimizer on the same imported graph ({count_text(nodes)} nodes)",
           pt_ratio, ">=", 20, ratio_text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
