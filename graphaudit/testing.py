"""The guard in a project's own test suite: keep a training step free of repeated backward work.

    def test_the_training_step_repeats_no_backward_work():
        report = ga.audit(loss, params)        # or a front-end's audit of your model
        assert_duplicated_at_most(report, share=0.01)

The AssertionError's message lists the offending lines of your code, ``file:line: ...``,
as ``graphaudit check`` prints them (:mod:`graphaudit.analysis.guard`).
"""

from __future__ import annotations

from graphaudit.analysis.guard import Budget, check, parse_budget
from graphaudit.analysis.report import Report
from graphaudit.errors import culprit


def assert_duplicated_at_most(report: Report, flops: int | float | str | None = None,
                              share: float | str | None = None) -> None:
    """Raise AssertionError when ``report`` repeats more work than ``flops`` (a number, or ``"5G"``)
    or ``share`` of the joint backward FLOPs (a fraction, ``0.12``, or ``"12%"``); both: both hold."""
    if not isinstance(report, Report):
        raise TypeError(f"assert_duplicated_at_most: report is {culprit(report)}, not a graphaudit Report")
    if flops is None and share is None:
        raise TypeError("assert_duplicated_at_most: give a budget, flops=... (5e9 or '5G') and/or share=... (0.12 or '12%')")
    budget = Budget(flops=_flops(flops), share=_share(share))
    result = check(report, budget)
    if not result.within:
        raise AssertionError("\n".join([result.summary, *result.findings]))


def _flops(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, str):
        parsed = parse_budget(value)
        if parsed.flops is None:
            raise ValueError(f"assert_duplicated_at_most: flops={value!r} is a share; give it as share={value!r}")
        return parsed.flops
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise TypeError(f"assert_duplicated_at_most: flops is {culprit(value)}, not a number of FLOPs >= 0")
    return round(value)


def _share(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        parsed = parse_budget(value)
        if parsed.share is None:
            raise ValueError(f"assert_duplicated_at_most: share={value!r} is a FLOP count; give it as flops={value!r}")
        return parsed.share
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise TypeError(f"assert_duplicated_at_most: share is {culprit(value)}, not a fraction between 0 and 1")
    return float(value)
