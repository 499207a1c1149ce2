"""What the command-line tests share: ``main`` run in-process, and what a one-line error looks like."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest

from graphaudit.cli import main

ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPORT_KEYS = {"kind", "wrt", "forms", "duplicated", "joint_duplicates", "merged_equals_joint", "measured", "commutative"}
FORMS = {"separate", "joint", "separate_merged", "joint_merged"}
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")


def run(argv, capsys):
    """``main(argv)`` in-process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, out, err):
    assert code == 2, (code, out, err)
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("graphaudit: error: "), err
    assert out == ""


def module_env():
    """The environment of a subprocess that imports this checkout's graphaudit."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def example_targets():
    """The front-ends by name, in the order the command line asks them."""
    from graphaudit.frontends import cli_frontends

    return {frontend.name: frontend for frontend in cli_frontends()}


def install_frontends(site: Path, distribution: str, entries: Mapping[str, str]) -> Path:
    """``site`` holding a distribution's metadata as pip installs it, declaring ``entries`` (entry point name:
    the module with a ``CLI``) in the group graphaudit.frontends; with ``site`` on sys.path, graphaudit finds them."""
    from graphaudit.frontends import ENTRY_POINTS

    info = site / f"{distribution}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1\n")
    lines = [f"[{ENTRY_POINTS}]", *(f"{name} = {value}" for name, value in entries.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return site
