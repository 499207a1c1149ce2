"""frontends/common/loops.py: one loop record, one treatment type, one unroll decision, one renderer."""

from __future__ import annotations

import json

from graphaudit.frontends.common.loops import BOUND_NOTES, LoopRecord, Treatment, loop_lines, loop_rows, unrolls


def test_a_treatment_is_its_text_and_knows_its_bound():
    assert Treatment.WHOLE == "whole, body x trip count" and f"{Treatment.UNROLLED}" == "unrolled"
    assert json.dumps([Treatment.ONE_ITERATION]) == '["one iteration (trip count unknown): a lower bound"]'
    bounds = {treatment: treatment.bound for treatment in Treatment}
    assert {t for t, b in bounds.items() if b == "upper"} == {Treatment.COSTLIEST_BRANCH, Treatment.N_STEPS}
    assert {t for t, b in bounds.items() if b == "lower"} == {Treatment.ONE_ITERATION}
    assert set(BOUND_NOTES) == {t for t, b in bounds.items() if b}  # every bound is said under the figures


def test_the_one_unroll_decision_is_the_budget():
    assert unrolls(10, 10) and not unrolls(11, 10) and unrolls(0, 0)


def test_rows_count_each_distinct_loop_per_form_the_forward_ones_in_both():
    scan = LoopRecord("Scan", 4, Treatment.WHOLE, "b" * 16, 3, 30, 12)
    other = LoopRecord("Scan", 4, Treatment.WHOLE, "a" * 16, 2, 20, 0)
    loops = loop_rows({"forward": [scan], "separate": [scan, scan, other], "joint": [other]}, False, 99, 50)
    assert loops["unrolled"] is False and (loops["unrolled_nodes"], loops["budget"]) == (99, 50)
    first, second = loops["rows"]  # sorted by body digest
    assert (first["body"], first["separate"], first["joint"]) == ("a" * 16, 1, 1)
    assert (second["body"], second["separate"], second["joint"]) == ("b" * 16, 1 + 2, 1)
    assert second["body_nodes"] == 3 and second["body_matmul_flops"] == 12


def test_rows_leave_out_the_body_figures_a_front_end_does_not_cost_apart():
    loops = loop_rows({"separate": [LoopRecord("while", None, Treatment.ONE_ITERATION, "c" * 16)], "joint": []},
                      True, 5, 10)
    (row,) = loops["rows"]
    assert row == {"primitive": "while", "length": None, "treatment": Treatment.ONE_ITERATION, "body": "c" * 16,
                   "separate": 1, "joint": 0}


def test_lines_say_how_loops_were_treated_and_which_figures_are_bounds():
    records = {"separate": [LoopRecord("cond", 2, Treatment.COSTLIEST_BRANCH, "d" * 16),
                            LoopRecord("Scan", 6, Treatment.WHOLE, "e" * 16, 4, 40, 8)], "joint": []}
    lines = loop_lines(loop_rows(records, False, 700, 100), "loops")
    assert lines[:2] == ["", "loops: loops imported whole, bodies compared by digest (unrolled they would make 700 "
                             "nodes, over the budget of 100)"]
    assert lines[2].split() == ["Scan", "6", "steps", "body", "eeeeeeee", "(4", "nodes,", "40", "FLOPs,", "8", "in",
                                "matmuls)", "whole,", "body", "x", "trip", "count", "(met", "1x", "in", "the",
                                "separate", "form,", "0x", "in", "the", "joint)"]
    assert lines[3].split()[:5] == ["cond", "2", "branches", "body", "dddddddd"]
    assert lines[4] == "  the FLOPs and matmul FLOPs above are " + BOUND_NOTES[Treatment.COSTLIEST_BRANCH]
    assert loop_lines(None, "scans") == [] and loop_lines(loop_rows({}, True, 0, 1), "scans") == []
