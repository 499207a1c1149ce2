"""Timing runs against each other, and the one shape every measured time takes in a report.

Every audit that times something (numpy's evaluation of graphaudit's forms, eager PyTorch,
jitted JAX, PyTensor's builds) runs it through :func:`time_in_turn`: one untimed run of each
to warm up, then ``repeats`` rounds that run each in turn, alternating the order, so that a
change in the machine's load shifts them alike. A report keeps the medians in one place
(``report.measured``) in one shape (:class:`graphaudit.analysis.schema.Measured`), and
:func:`measured_lines` renders them.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from graphaudit.core.describe import seconds_text


class Run(NamedTuple):
    """One thing to time: ``call()``, or ``call(setup())`` with ``setup`` untimed before each call
    (the forward pass, when only the backward is timed). ``versus`` names the run the text compares
    it with (None: none)."""

    call: Callable[..., Any]
    setup: Callable[[], Any] | None = None
    versus: str | None = "joint"


def time_in_turn(runs: Mapping[str, Run], repeats: int) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Each run's ``repeats`` timed seconds, and its result (from the warm-up run). A run that computes
    asynchronously (JAX) waits for its result itself, inside the timed span."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")

    def once(run: Run) -> tuple[float, Any]:
        argument = () if run.setup is None else (run.setup(),)
        start = time.perf_counter()
        result = run.call(*argument)
        return time.perf_counter() - start, result

    results = {name: once(run)[1] for name, run in runs.items()}
    times: dict[str, list[float]] = {name: [] for name in runs}
    order = list(runs)
    for round_ in range(repeats):
        for name in (order if round_ % 2 == 0 else reversed(order)):
            times[name].append(once(runs[name])[0])
    return times, results


def max_abs_difference(left: Sequence[Any], right: Sequence[Any]) -> float:
    """The largest absolute difference between two lists of arrays (tensors convert with ``np.asarray``)."""
    return max((float(np.max(np.abs(np.asarray(a) - np.asarray(b)), initial=0.0)) for a, b in zip(left, right)),
               default=0.0)


def measure(what: str, runs: Mapping[str, Run], repeats: int, compare: tuple[str, str] = ("separate", "joint"),
            **facts: Any) -> dict[str, Any]:
    """Time ``runs`` in turn and give the report's ``measured``: ``what`` was timed, ``repeats``, the median
    ``seconds`` of each run, ``versus`` (the run each is compared with in the text), the
    ``max_abs_difference`` between the results of the two runs ``compare`` names, and any ``facts``
    (the device)."""
    times, results = time_in_turn(runs, repeats)
    left, right = compare
    return {
        "what": what,
        "repeats": repeats,
        "seconds": {name: statistics.median(seconds) for name, seconds in times.items()},
        "versus": {name: run.versus for name, run in runs.items() if run.versus and run.versus != name},
        "max_abs_difference": max_abs_difference(results[left], results[right]),
        **facts,
    }


def measured_lines(measured: Mapping[str, Any]) -> list[str]:
    """``measured`` in one line: each run's median, its ratio to the run it is compared with, the difference."""
    seconds, versus = measured["seconds"], measured["versus"]
    cells = []
    for name, value in seconds.items():
        other = seconds.get(versus.get(name, ""))
        ratio = f" ({value / other:.2f}x {versus[name]})" if value is not None and other else ""
        cells.append(f"{name} {seconds_text(value)}{ratio}")
    return [f"{measured['what']} (median of {measured['repeats']}): " + ", ".join(cells)
            + f"; max |separate - joint| = {measured['max_abs_difference']:.3g}"]


def spread(times: Sequence[float]) -> dict[str, float]:
    """Median, mean, standard deviation, quartiles and range of measured ``times`` (seconds)."""
    ordered = sorted(times)
    quartiles = statistics.quantiles(ordered, n=4) if len(ordered) > 1 else [ordered[0]] * 3
    return {
        "median": statistics.median(ordered), "mean": statistics.fmean(ordered),
        "stdev": statistics.stdev(ordered) if len(ordered) > 1 else 0.0,
        "q1": quartiles[0], "q3": quartiles[2], "min": ordered[0], "max": ordered[-1],
    }
