"""`make demo` where no browser can be launched: it writes its reports, says in one line what it
skipped and why, and succeeds. The demo's steps are read from the Makefile's recipe, so a step
added there is run here too; the set-up (the virtualenv, apt) is not run."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.subprocess, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent


def demo_steps(out: Path) -> list[list[str]]:
    """The commands of the Makefile's ``demo`` recipe, with this interpreter and output folder ``out``."""
    recipe = re.search(r"^demo:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), flags=re.M)
    assert recipe, "the Makefile has no demo recipe"
    words = {"$(VENV)/bin/graphaudit": f"{shlex.quote(sys.executable)} -m graphaudit",
             "$(VENV_PYTHON)": shlex.quote(sys.executable), "$(DEMO_OUT)": shlex.quote(str(out)), "$(DEMO_ARGS)": ""}
    steps = []
    for line in recipe.group(1).splitlines():
        for word, value in words.items():
            line = line.replace(word, value)
        assert "$(" not in line, f"a Makefile variable this test does not know: {line}"
        steps.append(shlex.split(line))
    return steps


def test_the_demo_without_a_browser_writes_its_reports_and_says_what_it_skipped(tmp_path):
    pytest.importorskip("matplotlib", reason="the demo's growth plot needs matplotlib (a dev extra)")
    out = tmp_path / "demo-out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRAPHAUDIT_CHROMIUM": "/nonexistent"}
    said = []
    for step in demo_steps(out):
        done = subprocess.run(step, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, (step, done.stdout[-2000:], done.stderr[-2000:])
        said += done.stderr.splitlines()
    skipped = [line for line in said if "skipped" in line]
    assert len(skipped) == 1 and "Chromium" in skipped[0] and "/nonexistent" in skipped[0], said
    assert not [line for line in said if "Traceback" in line]
    written = {path.name for path in out.iterdir()}
    assert {"report.json", "report.dot", "report.html", "growth.png", "seed.html"} <= written, written
    assert any(re.fullmatch(r"chain\d+\.html", name) for name in written), written  # the 50k-node report
    # what needs the browser is all that is missing: the screenshots
    assert not [name for name in written if name.startswith(("seed", "chain")) and name.endswith(".png")]
    assert (out / "seed.html").read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
