"""Benchmark 3: the whole ``ga.audit(cost, params)``: time and peak memory against graph size.

``ga.audit`` builds both forms (one grad per parameter, and one joint call), merges them,
costs them and makes the Report. Every row runs in a fresh process: the time is the median
of repeated audits, the memory the process's peak resident set (``ru_maxrss``) after its
first audit, so it includes the interpreter, numpy and the model (column "RSS before").
Deep chains' depths are chosen so that their separate forms span 10k .. 2M operations, with
L=128 among them; the growth exponent is the least-squares slope of log time against log
nodes (1.0 = linear). The last row is the counting mode, ``materialize=False``, on a
1,000-layer chain, when ``ga.audit`` has that keyword.

    python benchmarks/bench_audit.py
    python benchmarks/bench_audit.py --row chain:128    # one row, as JSON (what the table runs)
"""

from __future__ import annotations

import argparse
import inspect
import json
import resource

import graphaudit as ga
from common import (
    ChainSizes,
    bytes_text,
    count_text,
    in_fresh_process,
    loglog_slope,
    median_time,
    seconds_text,
    table,
    target,
    title,
)

SIZES = (10_000, 30_000, 100_000, 300_000, 1_000_000, 2_000_000)  # operations in the separate form, at least
COUNTING_DEPTH = 1000
REPEATS, BUDGET = 30, 5.0  # per row: at most REPEATS audits, fewer once BUDGET seconds are spent
ROW_TIMEOUT = 300  # seconds a row's process may take before it is reported as timed out
GB = 2**30


def counting_mode_available() -> bool:
    return "materialize" in inspect.signature(ga.audit).parameters


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def run_row(row: str) -> dict:
    """Audit one model in this process: ``seed``, ``chain:L`` or ``count:L`` (``materialize=False``)."""
    kind, _, depth = row.partition(":")
    model = ga.models.seed_mlp() if kind == "seed" else ga.models.deep_chain(int(depth))
    options = {"materialize": False} if kind == "count" else {}
    found = {"rss_before": peak_rss()}

    def after_first(report) -> None:
        found.update(nodes=report.forms["separate"].cost.nodes, rss_peak=peak_rss())

    timing = median_time(lambda: ga.audit(model.loss, model.params, **options), repeats=REPEATS, budget=BUDGET,
                         after_first=after_first)
    return {**found, "seconds": timing.seconds, "runs": timing.runs}


def measure(row: str) -> dict:
    """:func:`run_row` in a fresh process; on failure or timeout, ``{"error": why}``."""
    return in_fresh_process(__file__, row, ROW_TIMEOUT)


def table_row(name: str, result: dict) -> list[str]:
    if "error" in result:
        return [name, "-", result["error"], "-", "-"]
    return [name, count_text(result["nodes"]), f"{seconds_text(result['seconds'])} ({result['runs']})",
            bytes_text(result["rss_before"]), bytes_text(result["rss_peak"])]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--row", help="run one row in this process and print it as JSON")
    args = parser.parse_args(argv)
    if args.row:
        print(json.dumps(run_row(args.row)))
        return 0

    title("3. whole ga.audit(): time and peak memory vs separate-form size")
    sizes = ChainSizes()
    results = {"seed MLP": measure("seed")}
    sweep = []
    for depth in sorted({sizes.depth_for(wanted) for wanted in SIZES} | {128}):
        results[f"chain L={depth}"] = measure(f"chain:{depth}")
        sweep.append(results[f"chain L={depth}"])
    counting = counting_mode_available()
    counting_name = f"chain L={COUNTING_DEPTH}, materialize=False"
    if counting:
        results[counting_name] = measure(f"count:{COUNTING_DEPTH}")

    table(["model", "separate-form nodes", "audit time", "RSS before", "peak RSS"],
          [table_row(name, result) for name, result in results.items()])
    print(f"times are medians, (n) = runs: at most {REPEATS}, fewer once {BUDGET:.0f} s are spent; "
          f"each row in a fresh process")
    fitted = [r for r in sweep if "error" not in r]
    if len(fitted) >= 2:
        exponent = loglog_slope([r["nodes"] for r in fitted], [r["seconds"] for r in fitted])
        print(f"growth exponent of audit time vs nodes, {count_text(fitted[0]['nodes'])} .. "
              f"{count_text(fitted[-1]['nodes'])} nodes (least squares on log-log): {exponent:.2f} (1.0 = linear)")
    if not counting:
        print("counting mode not available: ga.audit has no 'materialize' keyword")

    biggest = sweep[-1]
    size = count_text(biggest["nodes"]) if "nodes" in biggest else count_text(SIZES[-1])
    counting_result = results.get(counting_name, {"error": "counting mode not available"})
    for name, result, key, limit, fmt in (
        ("audit seed MLP, median time", results["seed MLP"], "seconds", 0.020, seconds_text),
        ("audit chain L=128, median time", results["chain L=128"], "seconds", 1.0, seconds_text),
        (f"audit {size}-node separate form, time", biggest, "seconds", 10.0, seconds_text),
        (f"audit {size}-node separate form, peak RSS", biggest, "rss_peak", 3 * GB, bytes_text),
        (f"audit counting mode, {COUNTING_DEPTH}-layer chain, time", counting_result, "seconds", 5.0, seconds_text),
    ):
        target(name, result.get(key), "<", limit, fmt, result.get("error", ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
