"""The framework's section of a report: its own figures (build times, what its compiler keeps).

A front-end subclasses :class:`FrameworkSection` for its own keys and lines; the report
prints sections and names no framework.
"""

from __future__ import annotations

import dataclasses

from graphaudit.analysis.report import Report, Section
from graphaudit.core.describe import seconds_text


class FrameworkSection(Section):
    """A framework's figures in a report (``report.framework``; ``to_dict()["framework"]``).

    Keys every front-end may fill: ``name`` and ``version``; ``build_seconds`` (``repeats``,
    ``calls`` per form, a :func:`spread` per form, ``separate_over_joint``): the framework's
    own time to build the symbolic gradients; ``compile_check`` (``title`` and ``rows``, each
    ``graph`` and per form ``nodes``, ``dots`` and ``seconds``): what its compiler keeps.
    A front-end's subclass adds its own keys and lines.
    """

    @property
    def framework(self) -> str:
        return f"{self.get('name', 'framework')} {self.get('version', '')}".strip()

    def lines(self) -> list[str]:
        return self.build_lines() + self.compile_check_lines()

    def build_lines(self) -> list[str]:
        build = self.get("build_seconds")
        if not build:
            return []
        lines = ["", f"{self.framework}: time to build the symbolic gradients, {build['repeats']} builds of each form"]
        lines.append(f"  {'form':<10}{'calls':>6}{'median':>11}{'quartiles':>22}{'mean +- std':>22}{'min .. max':>22}")
        for form in ("joint", "separate"):
            s = build[form]
            lines.append(
                f"  {form:<10}{build['calls'][form]:>6}{seconds_text(s['median']):>11}"
                f"{seconds_text(s['q1']) + ' .. ' + seconds_text(s['q3']):>22}"
                f"{seconds_text(s['mean']) + ' +- ' + seconds_text(s['stdev']):>22}"
                f"{seconds_text(s['min']) + ' .. ' + seconds_text(s['max']):>22}"
            )
        lines.append(f"  separate / joint (medians): {build['separate_over_joint']:.2f}x")
        return lines

    def compile_check_lines(self) -> list[str]:
        check = self.get("compile_check")
        if not check:
            return []
        lines = ["", f"{check.get('title', 'compile check')} (op nodes / matmuls):"]
        lines.append(f"  {'graph':<44}{'separate':>20}{'joint':>20}")
        for row in check["rows"]:
            cells = []
            for form in ("separate", "joint"):
                r = row[form]
                took = f" {seconds_text(r['seconds'])}" if r.get("seconds") is not None else ""
                cells.append(f"{r['nodes']} / {r['dots']}{took}")
            lines.append(f"  {row['graph']:<44}{cells[0]:>20}{cells[1]:>20}")
        return lines


def attach_section(report: Report, section: Section) -> Report:
    """``report`` with ``section`` as its framework section (a new Report; the given one is unchanged)."""
    return dataclasses.replace(report, framework=section)
