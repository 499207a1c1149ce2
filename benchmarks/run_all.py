"""Run every benchmark (what ``make bench`` does): the machine first, then each bench_*.py in
its own process, then every TARGET line again with a count of those met and missed.

    .venv/bin/python benchmarks/run_all.py

Exits non-zero if a benchmark fails to run; missed targets are findings, not failures.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ("bench_grad.py", "bench_merge.py", "bench_audit.py", "bench_jax.py")


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=HERE.parent, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else "?"


def machine() -> list[str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "?")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in ("graphaudit", "numpy", "pytensor", "jax"))
    dirty = " + uncommitted changes" if git("status", "--porcelain", "--", "graphaudit") else ""
    return [
        f"machine: {cpu}, {os.cpu_count()} cores, {memory:.0f} GiB; {platform.platform()}",
        f"python {platform.python_version()}; {versions}",
        f"graphaudit at commit {git('rev-parse', '--short', 'HEAD')}{dirty}",
    ]


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    start = time.perf_counter()
    for line in machine():
        print(line)
    print(f"{load()} at start (other work on the machine slows every figure)", flush=True)
    targets, failed = [], []
    for script in BENCHMARKS:
        began = time.perf_counter()
        with subprocess.Popen([sys.executable, "-u", str(HERE / script)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) as process:
            for line in process.stdout:
                print(line, end="", flush=True)
                if line.startswith("TARGET "):
                    targets.append(line.rstrip())
        if process.returncode != 0:
            failed.append(script)
        print(f"[{script}: {time.perf_counter() - began:.0f} s, exit {process.returncode}]", flush=True)

    missed = [t for t in targets if t.endswith("-> MISSED")]
    print(f"\n=== summary: {len(targets) - len(missed)} targets met, {len(missed)} missed; "
          f"{time.perf_counter() - start:.0f} s in all; {load()} ===")
    for line in targets:
        print(line)
    if failed:
        print(f"benchmarks that failed to run: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
