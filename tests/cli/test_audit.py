"""``graphaudit audit``: built-in examples and graphaudit function targets, printed, written and drawn."""

from __future__ import annotations

import json

from cli.helpers import FORMS, PNG_SIGNATURE, REPORT_KEYS, needs_dot, run

def test_audit_json_to_stdout(capsys):
    code, out, err = run(["audit", "seed_mlp", "--json", "-", "--no-timings"], capsys)
    assert code == 0, err
    report = json.loads(out)  # stdout holds the JSON and nothing else
    assert REPORT_KEYS <= set(report)
    assert set(report["forms"]) == FORMS
    assert all(form["build_seconds"] is None for form in report["forms"].values())
    assert err == ""


def test_audit_json_without_timings_is_deterministic(capsys):
    argv = ["audit", "deep_chain", "--depth", 4, "--width", 8, "--batch", 2, "--json", "-", "--no-timings"]
    first = run(argv, capsys)
    second = run(argv, capsys)
    assert first[0] == second[0] == 0
    assert first[1] == second[1]


def test_audit_example_prints_text_and_writes_files(tmp_path, capsys):
    json_path, dot_path = tmp_path / "r.json", tmp_path / "r.dot"
    code, out, err = run(
        ["audit", "residual_mlp", "--depth", 3, "--width", 4, "--batch", 2, "--json", json_path, "--dot", dot_path,
         "--view", "separate"],
        capsys,
    )
    assert code == 0, err
    assert "duplicated work" in out
    assert f"wrote {json_path}" in out and f"wrote {dot_path}" in out
    report = json.loads(json_path.read_text())
    assert report["wrt"][-2:] == ["w_out", "b_out"]
    assert report["measured"] is None
    assert "digraph" in dot_path.read_text()


def test_audit_measure_on_example(capsys):
    code, out, err = run(
        ["audit", "deep_chain", "--depth", 2, "--width", 4, "--batch", 2, "--measure", "--repeats", 1, "--json", "-"],
        capsys,
    )
    assert code == 0, err
    measured = json.loads(out)["measured"]
    assert measured["repeats"] == 1
    assert measured["max_abs_difference"] < 1e-5


@needs_dot
def test_audit_png_and_svg(tmp_path, capsys):
    png, svg = tmp_path / "g.png", tmp_path / "g.svg"
    code, out, err = run(
        ["audit", "deep_chain", "--depth", 3, "--width", 4, "--png", png, "--svg", svg, "--view", "separate"], capsys
    )
    assert code == 0, err
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    assert "<svg" in svg.read_text()


def test_audit_file_target(model_file, tmp_path, capsys):
    json_path = tmp_path / "report.json"
    code, out, err = run(["audit", f"{model_file}:build", "--json", json_path], capsys)
    assert code == 0, err
    assert "2 separate grad calls" in out
    report = json.loads(json_path.read_text())
    assert report["wrt"] == ["w1", "w2"]
    assert report["merged_equals_joint"] is True
    assert report["duplicated"]["nodes"] > 0


def test_audit_file_target_single_wrt(model_file, capsys):
    code, out, err = run(["audit", f"{model_file}:single", "--json", "-"], capsys)
    assert code == 0, err
    assert json.loads(out)["wrt"] == ["w"]


def test_audit_file_target_with_feed_measures(model_file, capsys):
    code, out, err = run(["audit", f"{model_file}:build_with_feed", "--measure", "--repeats", 1, "--json", "-"], capsys)
    assert code == 0, err
    assert json.loads(out)["measured"]["repeats"] == 1


def test_audit_file_target_relative_path(model_file, monkeypatch, capsys):
    monkeypatch.chdir(model_file.parent)
    code, out, err = run(["audit", "my_model.py:build", "--json", "-"], capsys)
    assert code == 0, err
