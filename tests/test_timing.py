"""analysis/timing.py: runs timed in turn (warm-up, alternating order, setup untimed), and one measured shape."""

from __future__ import annotations

import numpy as np
import pytest

from graphaudit.analysis import timing
from graphaudit.analysis.timing import Run, max_abs_difference, measure, measured_lines, spread, time_in_turn


class FakeClock:
    """A clock that only moves when a run says so: timings become exact."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def spend(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(timing.time, "perf_counter", fake)
    return fake


def test_each_run_warms_up_once_then_runs_in_alternating_turns(clock):
    order = []

    def run(name, seconds):
        def call():
            order.append(name)
            clock.spend(seconds)
            return name.upper()
        return Run(call)

    times, results = time_in_turn({"a": run("a", 2.0), "b": run("b", 3.0)}, repeats=3)
    assert results == {"a": "A", "b": "B"}
    assert order == ["a", "b", "a", "b", "b", "a", "a", "b"]  # warm-up, then a b | b a | a b
    assert times == {"a": [2.0] * 3, "b": [3.0] * 3}


def test_setup_runs_before_each_call_untimed_and_hands_its_result_over(clock):
    seen = []

    def setup():
        clock.spend(100.0)  # the forward pass, say: not part of what is timed
        return len(seen)

    def call(prepared):
        seen.append(prepared)
        clock.spend(0.5)

    times, _ = time_in_turn({"backward": Run(call, setup=setup)}, repeats=2)
    assert times == {"backward": [0.5, 0.5]} and seen == [0, 1, 2]


def test_repeats_below_one_are_refused():
    with pytest.raises(ValueError, match="repeats must be >= 1, got 0"):
        time_in_turn({"x": Run(lambda: 0)}, repeats=0)


def test_measure_gives_the_one_shape_and_its_line(clock):
    values = {"separate": [np.array([1.0, 2.0])], "joint": [np.array([1.0, 2.5])]}

    def run(name, seconds):
        def call():
            clock.spend(seconds)
            return values[name]
        return call

    measured = measure("test run time", {"separate": Run(run("separate", 3.0)),
                                         "joint": Run(run("joint", 1.5), versus=None)}, 3, device="here")
    assert measured == {"what": "test run time", "repeats": 3, "seconds": {"separate": 3.0, "joint": 1.5},
                        "versus": {"separate": "joint"}, "max_abs_difference": 0.5, "device": "here"}
    (line,) = measured_lines(measured)
    assert line.startswith("test run time (median of 3): separate ") and "(2.00x joint)" in line
    assert line.endswith("max |separate - joint| = 0.5")


def test_max_abs_difference_of_lists_of_arrays():
    assert max_abs_difference([np.zeros(3), np.ones(2)], [np.zeros(3), np.full(2, -1.0)]) == 2.0
    assert max_abs_difference([], []) == 0.0


def test_spread_of_times():
    s = spread([3.0, 1.0, 2.0, 4.0])
    assert (s["median"], s["mean"], s["min"], s["max"]) == (2.5, 2.5, 1.0, 4.0)
    assert s["q1"] <= s["median"] <= s["q3"]
    assert spread([2.0])["stdev"] == 0.0
