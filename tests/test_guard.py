"""Advice, the budget guard, its pytest helper and its SARIF, on a program in a temporary file."""

from __future__ import annotations

import dataclasses
import json

import pytest
from test_source_lines import MLP, line_of, load

import graphaudit as ga
from graphaudit.analysis.advice import AdviceWords
from graphaudit.analysis.guard import Budget, check, findings, parse_budget, work_by_line
from graphaudit.analysis.report import Section
from graphaudit.testing import assert_duplicated_at_most
from graphaudit.views.sarif import sarif_log, write_sarif

BATCH = 4


@pytest.fixture
def audited(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the report's paths are relative to here, as in a CI job's checkout
    module = load(tmp_path / "user_mlp.py", MLP)
    loss, params = module.build(BATCH)
    return ga.audit(loss, params)


def test_the_advice_saves_exactly_the_duplicated_work(audited):
    (entry,) = audited.to_dict()["advice"]
    duplicated = audited.duplicated
    assert (entry["saves_flops"], entry["saves_nodes"]) == (duplicated["flops"], duplicated["nodes"])
    assert entry["rewrite"] == "one `ga.grad(cost, [w1, w2, w3])` instead of one call per parameter"
    assert entry["where"][0] == {"file": "user_mlp.py", "line": line_of(MLP, "LOGITS"), "code": "logits = h2 @ w3  # LOGITS"}
    # one joint call builds the merged form: what it saves is the separate form minus the joint form
    separate, joint = audited.forms["separate"].cost, audited.forms["joint"].cost
    assert entry["saves_flops"] == separate.flops - joint.flops and entry["saves_nodes"] == separate.nodes - joint.nodes
    share = duplicated["flops"] / joint.backward_flops
    lines = audited.to_text().splitlines()
    advice = next(i for i, line in enumerate(lines) if line.startswith("advice: "))
    assert lines[advice] == (f"advice: {entry['rewrite']} saves {ga.core.describe.si(duplicated['flops'], 'FLOP')} "
                             f"({100 * share:.0f}% of the backward) and {duplicated['nodes']} nodes")
    assert lines[advice + 1] == f"  at user_mlp.py:{line_of(MLP, 'LOGITS')}: logits = h2 @ w3  # LOGITS"


def test_a_sections_words_and_its_compiler_make_the_advice():
    class Framework(Section):
        def advice_words(self):
            return AdviceWords("one `fw.grad(loss, params)`", recovered_by="its compiler merges it inside one `jit`")

    model = ga.models.mlp([4, 3, 2], batch=2)
    report = dataclasses.replace(ga.audit(model.loss, model.params), framework=Framework())
    (entry,) = report.to_dict()["advice"]
    assert entry["rewrite"] == ("nothing to change where it runs compiled (its compiler merges it inside one `jit`); "
                                "uncompiled, one `fw.grad(loss, params)` instead of one call per parameter")
    assert entry["saves_flops"] == report.duplicated["flops"] > 0


def test_nothing_repeated_means_no_advice_and_an_empty_guard():
    x = ga.placeholder("x", (3,), "float64")
    report = ga.audit_graph([ga.exp(x) + 1.0])
    assert report.to_dict()["advice"] == [] and findings(report) == []
    assert report.to_text().endswith("advice: nothing to change: no work is repeated")
    assert check(report, Budget(flops=0)).within
    assert_duplicated_at_most(report, flops=0)


def test_a_graph_report_advises_computing_once(tmp_path):
    model = ga.models.mlp([4, 3, 2], batch=2)
    report = ga.audit_graph(ga.separate_grads(model.loss, model.params))
    (entry,) = report.to_dict()["advice"]
    assert entry["what"].endswith("of work are computed more than once") and entry["saves_flops"] == report.duplicated["flops"]


# --- budgets ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, budget", [
    ("5G", Budget(flops=5 * 10**9)), ("2.5e9", Budget(flops=2_500_000_000)), ("500 MFLOP", Budget(flops=500 * 10**6)),
    ("12k", Budget(flops=12_000)), ("0", Budget(flops=0)), ("12%", Budget(share=0.12)), ("0.5 %", Budget(share=0.005)),
])
def test_budgets_read_si_prefixes_and_shares(text, budget):
    assert parse_budget(text) == budget


@pytest.mark.parametrize("text", ["5X", "-1G", "", "G", "-5%", "5 G FLOPS"])
def test_a_bad_budget_is_one_line_naming_it(text):
    with pytest.raises(ValueError, match=f"budget {text!r}"):
        parse_budget(text)


def test_check_is_within_at_the_budget_and_over_just_below_it(audited):
    duplicated = audited.duplicated["flops"]
    share = duplicated / audited.forms["joint"].cost.backward_flops
    assert check(audited, Budget(flops=duplicated)).within
    assert not check(audited, Budget(flops=duplicated - 1)).within
    assert check(audited, Budget(share=share)).within
    assert not check(audited, Budget(share=share * (1 - 1e-9))).within
    assert not check(audited, Budget(flops=duplicated, share=share / 2)).within  # both limits hold


def test_findings_are_compiler_lines_at_the_lines_that_repeat_work(audited):
    logits = line_of(MLP, "LOGITS")
    (line,) = [line for line in findings(audited) if line.startswith(f"user_mlp.py:{logits}: ")]
    # d(h2) = d(logits) @ w3.T and transpose(w3) are rebuilt by the calls for w1 and for w2
    assert line == (f"user_mlp.py:{logits}: {ga.core.describe.si(2 * BATCH * 3 * 4, 'FLOP')} of backward work "
                        f"repeated by 2 grad calls (2 duplicated nodes; costliest matmul(d(matmul_3), transpose(w3)) "
                        f"{BATCH}x3 @ 3x4)")
    for report in (audited, dataclasses.replace(audited)):
        work = work_by_line(report)
        assert sum(w.flops for w in work) == report.duplicated["flops"]
        assert sum(w.nodes for w in work) == report.duplicated["nodes"]


def test_a_counted_report_finds_the_same_lines(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    loss, params = load(tmp_path / "user_mlp.py", MLP).build(BATCH)
    built, counted = ga.audit(loss, params), ga.audit(loss, params, materialize=False)
    by_line = {(w.source.file, w.source.line): (w.flops, w.nodes) for w in work_by_line(built) if w.source}
    counted_lines = work_by_line(counted)
    assert {(w.source.file, w.source.line): (w.flops, w.nodes) for w in counted_lines if w.source} == by_line
    assert sum(w.flops for w in counted_lines) == counted.duplicated["flops"]


# --- in a test suite ----------------------------------------------------------------------------------


def test_the_assertion_passes_within_and_fails_over_with_the_lines(audited):
    duplicated = audited.duplicated["flops"]
    assert_duplicated_at_most(audited, flops=duplicated)
    assert_duplicated_at_most(audited, share=f"{100 * duplicated / audited.forms['joint'].cost.backward_flops + 1e-6}%")
    with pytest.raises(AssertionError) as failure:
        assert_duplicated_at_most(audited, flops=duplicated - 1)
    message = str(failure.value)
    assert "over the budget" in message and f"\nuser_mlp.py:{line_of(MLP, 'LOGITS')}: " in message
    with pytest.raises(AssertionError, match=f"user_mlp.py:{line_of(MLP, 'LOSS')}: "):
        assert_duplicated_at_most(audited, share=0.0)


def test_the_assertion_refuses_what_is_not_a_budget(audited):
    with pytest.raises(TypeError, match="give a budget"):
        assert_duplicated_at_most(audited)
    with pytest.raises(TypeError, match="share is a float .*between 0 and 1"):
        assert_duplicated_at_most(audited, share=12.0)
    with pytest.raises(ValueError, match="flops='12%' is a share"):
        assert_duplicated_at_most(audited, flops="12%")
    with pytest.raises(TypeError, match="report is a dict"):
        assert_duplicated_at_most(audited.to_dict(), flops=1)


# --- SARIF --------------------------------------------------------------------------------------------


def test_sarif_has_the_required_fields_and_locates_each_result(audited, tmp_path):
    path = write_sarif(audited, tmp_path / "graphaudit.sarif", Budget(flops=0))
    log = json.loads(open(path).read())
    assert log["$schema"].endswith("sarif-2.1.0.json") and log["version"] == "2.1.0"
    (run,) = log["runs"]
    assert run["tool"]["driver"]["name"] == "graphaudit"
    rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    work = work_by_line(audited)
    assert len(run["results"]) == len(work) > 0
    for result, line in zip(run["results"], work):
        assert result["ruleId"] in rule_ids and result["level"] == "error"
        assert isinstance(result["message"]["text"], str) and result["message"]["text"]
        (location,) = result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"] == {"uri": "user_mlp.py", "uriBaseId": "%SRCROOT%"}
        assert physical["region"]["startLine"] == line.source.line >= 1
        assert result["properties"]["flops"] == line.flops
    lines = [r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in run["results"]]
    # only the call for w1 runs the rules of layer 1: nothing is repeated at its line
    assert set(lines) == {line_of(MLP, marker) for marker in ("H1", "H2", "LOGITS", "LOSS")} - {line_of(MLP, "H1")}
    assert {r["level"] for r in sarif_log(audited, Budget(share=1.0))["runs"][0]["results"]} == {"warning"}
