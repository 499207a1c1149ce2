"""Record (or print) the outputs that must not change: ``python tests/golden/record.py [--check]``.

Each case is a command whose output graphaudit promises to keep byte for byte (reports'
JSON and DOT with timings left out, and report text with measured times masked). The
files beside this script were recorded with it; ``tests/test_golden.py`` runs the same
cases and compares.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

# A measured time (``314 ms``, ``26 us``, ``1.2 s``), and a decimal number (a ratio, bare seconds).
_TIME = re.compile(r"\b\d+(?:\.\d+)?(?:e[+-]?\d+)? (?:us|ms|s)\b")
_DECIMAL = re.compile(r"\b\d+\.\d+x?")


def mask_timings(text: str) -> str:
    """``text`` with measured times as ``<t>``; on lines holding a time, other decimals (ratios,
    bare seconds) as ``<r>`` and runs of spaces as one (column widths follow the times' widths)."""
    lines = []
    for line in text.splitlines():
        masked = _TIME.sub("<t>", line)
        if masked != line or "(medians)" in line:
            masked = re.sub(r" +", " ", _DECIMAL.sub("<r>", masked))
        lines.append(masked)
    return "\n".join(lines) + "\n"


def _run(*args: str, cwd: Path = ROOT) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "examples")]),
           "PYTHONHASHSEED": "0", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


@functools.cache  # one run gives both files
def _demo() -> dict[str, str]:
    with tempfile.TemporaryDirectory() as out:
        _run("-m", "graphaudit", "demo", "--out", out, "--no-timings")
        return {"demo_report.json": Path(out, "report.json").read_text(),
                "demo_report.dot": Path(out, "report.dot").read_text()}


def _audit(example: str, *args: str) -> dict[str, str]:
    return {f"{example}.json": _run("-m", "graphaudit", "audit", example, *args, "--json", "-", "--no-timings")}


def _jax_example() -> dict[str, str]:
    text = _run(str(ROOT / "examples/jax_seed_mlp.py"), "--batch", "4", "--widths", "6,5,4,3,2")
    return {"jax_seed_mlp.txt": mask_timings(text)}


def _pytensor_example() -> dict[str, str]:
    text = _run(str(ROOT / "examples/pytensor_seed.py"), "--batch", "4", "--widths", "6,5,4,3,2", "--reps", "3",
                "--compile-check")
    return {"pytensor_seed.txt": mask_timings(text)}


# What makes each file, and the framework it needs (None: graphaudit alone).
CASES = {
    "demo_report.json": (_demo, None),
    "demo_report.dot": (_demo, None),
    "deep_chain.json": (lambda: _audit("deep_chain", "--depth", "8"), None),
    "residual_mlp.json": (lambda: _audit("residual_mlp"), None),
    "jax_seed_mlp.txt": (_jax_example, "jax"),
    "pytensor_seed.txt": (_pytensor_example, "pytensor"),
}


def output(name: str) -> str:
    """What the command behind file ``name`` prints or writes today."""
    return CASES[name][0]()[name]


def outputs() -> dict[str, str]:
    """File name -> what the command prints or writes today (each command run once)."""
    found: dict[str, str] = {}
    for name, (make, _) in CASES.items():
        if name not in found:
            found.update(make())
    return found


if __name__ == "__main__":
    check = "--check" in sys.argv[1:]
    failed = False
    for name, text in outputs().items():
        path = HERE / name
        if check:
            same = path.read_text() == text
            failed |= not same
            print(f"{name}: {'same' if same else 'DIFFERS'}")
        else:
            path.write_text(text)
            print(f"recorded {name} ({len(text)} characters)")
    sys.exit(1 if failed else 0)
