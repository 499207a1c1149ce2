"""``graphaudit demo``: the seed network's report, JSON, DOT, HTML and pictures in a folder."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from cli.helpers import FORMS, PNG_SIGNATURE, REPORT_KEYS, assert_one_line_error, needs_dot, run
from graphaudit.cli import main

@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One run of ``graphaudit demo`` (the seed network, batch 128) for the tests below."""
    out_dir = tmp_path_factory.mktemp("demo") / "out"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["demo", "--out", str(out_dir)])
    return code, stdout.getvalue(), stderr.getvalue(), out_dir


def test_demo_writes_json_and_dot(demo):
    code, out, err, out_dir = demo
    assert code == 0, err
    report = json.loads((out_dir / "report.json").read_text())
    assert REPORT_KEYS <= set(report)
    assert set(report["forms"]) == FORMS
    assert report["wrt"] == ["w1", "b1", "w2", "b2", "w3", "b3", "w4", "b4"]
    assert report["merged_equals_joint"] is True
    assert report["duplicated"]["matmul_flops"] > 0
    assert "digraph" in (out_dir / "report.dot").read_text()
    # the report is printed, and so is where the files are
    assert "separate grad calls" in out
    for name in ("report.json", "report.dot"):
        assert str(out_dir / name) in out


@needs_dot
def test_demo_writes_png_files(demo):
    code, out, err, out_dir = demo
    assert code == 0, err
    for name in ("separate.png", "merged.png"):
        path = out_dir / name
        assert path.read_bytes()[:8] == PNG_SIGNATURE, name
        assert str(path) in out
    assert err == ""


def test_demo_without_dot_still_writes_json_and_dot(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no `dot` to be found
    out_dir = tmp_path / "out"
    code, out, err = run(["demo", "--out", out_dir, "--batch", 4], capsys)
    assert code == 0, err
    assert json.loads((out_dir / "report.json").read_text())["kind"] == "grad"
    assert "digraph" in (out_dir / "report.dot").read_text()
    assert not (out_dir / "separate.png").exists() and not (out_dir / "merged.png").exists()
    lines = err.splitlines()
    assert len(lines) == 1 and "graphviz" in lines[0].lower() and "install" in lines[0].lower(), err
    assert "Traceback" not in err


def test_demo_output_folder_that_cannot_be_made(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert_one_line_error(*run(["demo", "--out", blocker / "out"], capsys))
