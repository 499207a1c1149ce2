"""A report's findings as SARIF 2.1.0: what GitHub code scanning and most CI dashboards read.

One result per line of the user's code that repeats work (:func:`graphaudit.analysis.guard.work_by_line`),
located at that line (a path relative to the working directory is given against
``%SRCROOT%``, the repository root a CI job runs in); work at no known line is a result
without a location. Over a budget the results are errors, else warnings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from graphaudit.analysis.advice import advice
from graphaudit.analysis.guard import Budget, check, finding_message, work_by_line

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
RULE = "repeated-backward-work"


def sarif_log(report: Any, budget: Budget | None = None) -> dict:
    """The SARIF log (a dict, ready for ``json.dump``) of ``report``'s findings, judged by ``budget`` if given."""
    from graphaudit import __version__

    level = "warning" if budget is None or check(report, budget).within else "error"
    entries = advice(report)
    rule = {
        "id": RULE,
        "name": "RepeatedBackwardWork",
        "shortDescription": {"text": "Backward work repeated by separate grad calls"},
        "fullDescription": {"text": "Separate gradient calls rebuild work that one joint call builds once."},
        "help": {"text": entries[0]["rewrite"] if entries else "nothing is repeated"},
    }
    results = []
    for work in work_by_line(report):
        result: dict[str, Any] = {
            "ruleId": RULE,
            "ruleIndex": 0,
            "level": level,
            "message": {"text": finding_message(work, report.kind)},
            "properties": {"flops": work.flops, "nodes": work.nodes, "calls": work.calls},
        }
        if work.source is not None:
            result["locations"] = [{"physicalLocation": _physical_location(work.source)}]
        results.append(result)
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "graphaudit", "version": __version__, "rules": [rule]}},
            "originalUriBaseIds": {"%SRCROOT%": {"uri": Path.cwd().as_uri() + "/"}},
            "results": results,
        }],
    }


def _physical_location(source) -> dict:
    path = Path(source.file)
    artifact = {"uri": path.as_uri()} if path.is_absolute() else {"uri": source.file, "uriBaseId": "%SRCROOT%"}
    region: dict[str, Any] = {"startLine": source.line}
    if source.code:
        region["snippet"] = {"text": source.code}
    return {"artifactLocation": artifact, "region": region}


def write_sarif(report: Any, path: str | Path, budget: Budget | None = None) -> str:
    """Write :func:`sarif_log` to ``path`` as JSON; returns the path."""
    Path(path).write_text(json.dumps(sarif_log(report, budget), indent=2) + "\n", encoding="utf-8")
    return str(path)
