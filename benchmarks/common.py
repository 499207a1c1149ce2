"""What the benchmarks share: timing, tables, target lines, fits, graph sizes, the PyTensor model.

Run a benchmark by hand (``python benchmarks/bench_grad.py``) or all of them with
``make bench``; pytest never collects these files.
"""

from __future__ import annotations

import gc
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

import graphaudit as ga

# graphaudit.models.deep_chain's defaults, used for the PyTensor and JAX models of the same chain.
CHAIN_WIDTH, CHAIN_CLASSES, CHAIN_BATCH = 32, 10, 64
SEED_WIDTHS, SEED_BATCH = (16384, 5000, 3000, 512, 40), 128


# --- timing -------------------------------------------------------------------------------------


class Timing(NamedTuple):
    seconds: float  # median
    runs: int
    result: object  # what the last run returned

    def __str__(self) -> str:
        return f"{seconds_text(self.seconds)} ({self.runs})"


def median_time(fn: Callable[[], object], *, repeats: int, budget: float,
                after_first: Callable[[object], None] | None = None) -> Timing:
    """Median wall time of ``fn()`` over ``repeats`` runs, stopping early once ``budget`` seconds are spent.

    Always at least one run; ``after_first`` (untimed) gets the first run's result. The
    previous run's result is dropped and its garbage collected (untimed) before each run;
    collections that ``fn`` itself triggers are part of its time, as for a user. Keep only
    ``str(timing)`` where the last result need not stay alive.
    """
    times: list[float] = []
    result = None
    while not times or (len(times) < repeats and sum(times) < budget):
        result = None
        gc.collect()
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
        if after_first is not None and len(times) == 1:
            after_first(result)
    return Timing(statistics.median(times), len(times), result)


def in_fresh_process(script: str, row: str, timeout: float) -> dict:
    """Run ``python script --row row`` and read the JSON it prints last; on failure or timeout, ``{"error": why}``.

    A fresh process measures a graph in memory of its own: one built where earlier graphs
    were freed lies scattered, and every walk over it is slower (``bench_merge.py
    --in-one-process`` shows by how much).
    """
    command = [sys.executable, script, "--row", row]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"failed: {last}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- printing ------------------------------------------------------------------------------------


def seconds_text(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def count_text(n: float) -> str:
    return f"{n:,.0f}"


def ratio_text(x: float) -> str:
    return f"{x:.3g}x"


def bytes_text(n: float) -> str:
    return f"{n / 2**30:.2f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


def title(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain-text table: the first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))
    print(flush=True)


def target(name: str, measured: float | None, op: str, limit: float, fmt: Callable[[float], str],
           why_missing: str = "") -> bool:
    """Print ``TARGET <name>: measured <value> vs target <op> <limit> -> met|MISSED``; return whether met.

    ``op`` is ``">="`` or ``"<"``; ``measured=None`` (not measured, ``why_missing`` says why) is MISSED.
    """
    if measured is None:
        met, value = False, f"n/a ({why_missing})"
    else:
        met, value = (measured >= limit if op == ">=" else measured < limit), fmt(measured)
    print(f"TARGET {name}: measured {value} vs target {op} {fmt(limit)} -> {'met' if met else 'MISSED'}", flush=True)
    return met


# --- fits and sizes -------------------------------------------------------------------------------


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """The growth exponent: least-squares slope of log y against log x (1.0 = linear)."""
    return statistics.linear_regression([math.log(x) for x in xs], [math.log(y) for y in ys]).slope


def operation_count(outputs: Sequence[ga.Node]) -> int:
    """Nodes of the graph of ``outputs``, leaves not counted (how every node count here is taken)."""
    return sum(not node.is_leaf for node in ga.topological_order(outputs))


def separate_form(model: ga.models.Model) -> list[ga.Node]:
    """One ``ga.grad`` call per parameter, as a user writes it."""
    return [ga.grad(model.loss, p) for p in model.params]


class ChainSizes:
    """Operation counts of deep chains' separate forms, exactly: a quadratic in the depth L.

    The quadratic is fitted through three small chains and checked on a fourth, so it follows
    whatever graphaudit's grad builds today; :meth:`depth_for` inverts it.
    """

    def __init__(self) -> None:
        depths = (4, 8, 12)
        counts = [operation_count(separate_form(ga.models.deep_chain(depth))) for depth in depths]
        self.coefficients = np.polyfit(depths, counts, 2)
        check = operation_count(separate_form(ga.models.deep_chain(16)))
        if round(self.nodes(16)) != check:
            raise RuntimeError(f"separate-form node counts are not quadratic in depth: {self.nodes(16)} vs {check}")

    def nodes(self, depth: int) -> int:
        return round(float(np.polyval(self.coefficients, depth)))

    def depth_for(self, nodes: int) -> int:
        """The smallest depth whose separate form has at least ``nodes`` operations."""
        a, b, c = self.coefficients
        depth = max(1, math.floor((-b + math.sqrt(b * b - 4 * a * (c - nodes))) / (2 * a)))
        while self.nodes(depth) < nodes:
            depth += 1
        return depth


# --- the same networks in PyTensor -------------------------------------------------------------------


def chain_widths(depth: int) -> list[int]:
    """The layer widths of ``graphaudit.models.deep_chain(depth)``."""
    return [CHAIN_WIDTH] * (depth + 1) + [CHAIN_CLASSES]


def pytensor_mlp(widths: Sequence[int]):
    """``(x, y, params, loss)``: sigmoid layers, softmax, mean NLL, as a PyTensor user writes them.

    The weights are shared zeros (``borrow=True``): building gradients never reads them.
    """
    import pytensor
    import pytensor.tensor as pt

    x = pt.matrix("x", dtype="float32")
    y = pt.ivector("y")
    params, h = [], x
    for layer, (fan_in, fan_out) in enumerate(zip(widths, widths[1:]), start=1):
        w = pytensor.shared(np.zeros((fan_in, fan_out), dtype="float32"), name=f"W{layer}", borrow=True)
        b = pytensor.shared(np.zeros(fan_out, dtype="float32"), name=f"b{layer}", borrow=True)
        params += [w, b]
        h = pt.dot(h, w) + b
        h = pt.sigmoid(h) if layer < len(widths) - 1 else pt.special.softmax(h, axis=-1)
    loss = -pt.mean(pt.log(h)[pt.arange(y.shape[0]), y])
    return x, y, params, loss


def pytensor_separate(loss, params) -> list:
    """One ``pytensor.grad`` call per parameter."""
    import pytensor

    return [pytensor.grad(loss, [p])[0] for p in params]
