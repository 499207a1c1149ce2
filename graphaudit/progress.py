"""A progress bar on stderr for long audits, shown only to a person who is watching.

The loops that can run for minutes (one grad call per parameter, the depths of a growth
plot) call :func:`step`; it draws nothing unless a :class:`Progress` is active (the CLI
makes one with :func:`showing`), the stream is a terminal, and the work has already run
for ``delay`` seconds, so short audits, pipes, logs and tests stay clean.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import TextIO

WIDTH = 30


class Progress:
    """Draws ``what [#####.....] done/total  elapsed`` on one line, at most ten times a second."""

    def __init__(self, stream: TextIO | None = None, *, enabled: bool | None = None, delay: float = 2.0):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.delay = delay
        self.start = time.perf_counter()
        self.last = 0.0
        self.drawn = False

    def update(self, what: str, done: int, total: int) -> None:
        now = time.perf_counter()
        elapsed = now - self.start
        if not self.enabled or elapsed < self.delay or (now - self.last < 0.1 and done < total):
            return
        self.last = now
        filled = WIDTH * done // max(total, 1)
        self.stream.write(f"\r{what} [{'#' * filled}{'.' * (WIDTH - filled)}] {done}/{total}  {elapsed:.1f} s")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        """End the bar's line, so what is printed next starts on its own."""
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


_active: Progress | None = None


@contextlib.contextmanager
def showing(progress: Progress):
    """Let :func:`step` draw on ``progress`` inside the block."""
    global _active
    saved, _active = _active, progress
    try:
        yield progress
    finally:
        progress.close()
        _active = saved


def step(what: str, done: int, total: int) -> None:
    """Report that ``done`` of ``total`` units of ``what`` are finished (a no-op when nobody watches)."""
    if _active is not None:
        _active.update(what, done, total)
