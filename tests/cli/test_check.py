"""cli/check.py: the CI guard exits 0 within the budget, 1 over it (compiler-style lines), 2 on bad usage."""

from __future__ import annotations

import json

import graphaudit as ga
from graphaudit.cli import main

ARGS = ["deep_chain", "--depth", "4", "--width", "3", "--batch", "2"]


def duplicated_flops() -> int:
    model = ga.models.deep_chain(depth=4, width=3, batch=2)
    return ga.audit(model.loss, model.params).duplicated["flops"]


def test_exit_0_at_the_budget_and_1_one_flop_below_it(capsys, tmp_path):
    flops = duplicated_flops()
    assert main(["check", *ARGS, "--max-duplicated-flops", str(flops)]) == 0
    out = capsys.readouterr().out
    assert "within the budget" in out and "of backward work repeated by" not in out  # no finding lines
    sarif = tmp_path / "findings.sarif"
    assert main(["check", *ARGS, "--max-duplicated-flops", str(flops - 1), "--sarif", str(sarif)]) == 1
    lines = capsys.readouterr().out.splitlines()
    findings = [line for line in lines if "of backward work repeated by" in line]
    assert findings and all(line.split(": ", 1)[0].rsplit(":", 1)[1].isdigit() for line in findings)  # file:line:
    assert any("over the budget" in line for line in lines)
    log = json.loads(sarif.read_text())
    assert log["version"] == "2.1.0" and log["runs"][0]["tool"]["driver"]["name"] == "graphaudit"
    results = log["runs"][0]["results"]
    assert len(results) == len(findings) and all(r["level"] == "error" for r in results)
    assert all(r["locations"][0]["physicalLocation"]["region"]["startLine"] > 0 for r in results if r.get("locations"))


def test_a_share_of_the_joint_backward(capsys):
    assert main(["check", *ARGS, "--max-duplicated-flops", "10000%"]) == 0
    assert main(["check", *ARGS, "--max-duplicated-flops", "1%"]) == 1


def test_a_bad_budget_is_one_line_and_exit_2(capsys):
    assert main(["check", *ARGS, "--max-duplicated-flops", "lots"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--max-duplicated-flops lots" in err
