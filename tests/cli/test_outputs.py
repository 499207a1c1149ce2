"""Output files are checked before any work: a bad path is one line, exit 2."""

from __future__ import annotations

import pytest

from cli.helpers import assert_one_line_error, run

def test_audit_png_without_dot_is_an_error(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    code, out, err = run(["audit", "deep_chain", "--depth", 2, "--json", "-", "--png", tmp_path / "g.png"], capsys)
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("graphaudit: error: ") and "Traceback" not in err
    assert "graphviz" in lines[0].lower()


@pytest.mark.parametrize("flag", ["--json", "--png", "--svg", "--dot"])
def test_output_in_missing_folder(flag, tmp_path, capsys):
    suffix = {"--json": ".json", "--png": ".png", "--svg": ".svg", "--dot": ".dot"}[flag]
    path = tmp_path / "no" / "such" / f"out{suffix}"
    code, out, err = run(["audit", "deep_chain", "--depth", 2, flag, path], capsys)
    assert_one_line_error(code, out, err)
    assert "does not exist" in err


def test_output_in_unwritable_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("graphaudit.cli.outputs.os.access", lambda path, mode: False)  # as if not ours (root writes anywhere)
    code, out, err = run(["audit", "deep_chain", "--json", tmp_path / "r.json"], capsys)
    assert_one_line_error(code, out, err)
    assert "not writable" in err
