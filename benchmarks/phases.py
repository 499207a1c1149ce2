"""Where the time of ``ga.audit`` goes: its phases, one by one, on a deep chain's separate form.

Not a target figure (no peer, one run each): the profile behind ``bench_audit.py``'s numbers,
in seconds and in microseconds per separate-form node, with the collector paused as in ``audit``.

    python benchmarks/phases.py --depth 128
    python benchmarks/phases.py --depth 630     # ~2M nodes, ~15 s
"""

from __future__ import annotations

import argparse
import time

from common import count_text, seconds_text, table

import graphaudit as ga
from graphaudit.analysis.cost import MergedNodeCosts, merge_costs
from graphaudit.core.describe import forward_names
from graphaudit.analysis.duplicates import duplicated_work
from graphaudit.core.graph import paused_gc


def phase_seconds(model: ga.models.Model) -> dict[str, float]:
    """The seconds of each phase of an audit of ``model``, run one by one as ``audit`` runs them."""
    seconds: dict[str, float] = {}

    def timed(name, work, *arguments, **options):
        start = time.perf_counter()
        result = work(*arguments, **options)
        seconds[name] = time.perf_counter() - start
        return result

    def cost_classes(result: ga.MergeResult) -> MergedNodeCosts:
        per_class = MergedNodeCosts(result)
        merge_costs(result, per_class)  # the separate and merged forms' totals, as audit makes them
        return per_class

    with paused_gc():
        separate = timed("separate_grads (build the separate form)", ga.separate_grads, model.loss, model.params)
        timed("grad (build the joint form)", ga.grad, model.loss, model.params)
        result = timed("merge the separate form", ga.merge, separate)
        costs = timed("cost its classes (MergedNodeCosts, merge_costs)", cost_classes, result)
        names = forward_names(ga.topological_order([model.loss]))
        timed("duplicated work and its breakdowns", duplicated_work, result, names, costs=costs)
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depth", type=int, default=128, help="hidden layers of the deep chain (default 128)")
    args = parser.parse_args(argv)
    model = ga.models.deep_chain(args.depth)
    seconds = phase_seconds(model)  # its graphs are gone when it returns
    start = time.perf_counter()
    ga.audit(model.loss, model.params)
    seconds["the whole ga.audit, for comparison"] = time.perf_counter() - start

    nodes = ga.audit(model.loss, model.params, materialize=False).forms["separate"].cost.nodes
    table(["phase", "time", "µs per separate-form node"],
          [[name, seconds_text(s), f"{s / nodes * 1e6:.2f}"] for name, s in seconds.items()])
    print(f"deep chain L={args.depth}: {count_text(nodes)} operations in the separate form; one run of each phase")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
