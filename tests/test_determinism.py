"""Same input, same report and same DOT text, in fresh processes with different hash seeds."""

import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.subprocess, pytest.mark.slow]


def run_demo(out, hash_seed):
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    subprocess.run([sys.executable, "-m", "graphaudit", "demo", "--out", str(out), "--no-timings"],
                   check=True, capture_output=True, env=env)
    return (out / "report.json").read_bytes(), (out / "report.dot").read_bytes()


def test_demo_report_and_dot_are_byte_identical_across_hash_seeds(tmp_path):
    first = run_demo(tmp_path / "a", "1")
    second = run_demo(tmp_path / "b", "4242")
    assert first == second
    report, dot = first
    assert b'"merged_equals_joint": true' in report and dot.startswith(b"digraph")
