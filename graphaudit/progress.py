"""A progress bar on stderr for long audits, shown only to a person who is watching.

The loops that can run for minutes call :func:`step`: each front-end's grad calls as the
framework traces them (JAX's ``jax.grad`` per leaf, ``pytensor.grad`` per parameter, PyTorch's
``autograd.grad`` per parameter inside the ``make_fx`` trace), graphaudit's own separate grad
calls, the depths of a growth plot. It draws nothing unless a :class:`Progress` is active
(the CLI makes one with :func:`showing`), the stream is a terminal, and the work has already
run for ``delay`` seconds, so short audits, pipes, logs and tests stay clean.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import sys
import time
from typing import TextIO

WIDTH = 30  # characters of the bar
DELAY = 2.0  # seconds of work before a bar appears, by default
ITEM_WIDTH = 40  # characters of the item's name (a parameter's) beyond which it is cut


class Progress:
    """Draws ``what [#####.....] done of total: item  elapsed`` on one line, at most ten times a second.

    The line never grows past the terminal's width (a wrapped line could not be redrawn in
    place), and a shorter line blanks what a longer one left.
    """

    def __init__(self, stream: TextIO | None = None, *, enabled: bool | None = None, delay: float | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.delay = DELAY if delay is None else delay
        self.start = time.perf_counter()
        self.last = -math.inf
        self.drawn = 0  # characters of the line on screen now

    def update(self, what: str, done: int, total: int, item: str = "") -> None:
        now = time.perf_counter()
        elapsed = now - self.start
        if not self.enabled or elapsed < self.delay or (now - self.last < 0.1 and done < total):
            return
        self.last = now
        filled = WIDTH * done // max(total, 1)
        if len(item) > ITEM_WIDTH:
            item = item[: ITEM_WIDTH - 1] + "…"
        line = f"{what} [{'#' * filled}{'.' * (WIDTH - filled)}] {done} of {total}{': ' + item if item else ''}"
        line = f"{line}  {elapsed:.1f} s"[: shutil.get_terminal_size().columns - 1]
        self.stream.write(f"\r{line:<{self.drawn}}")
        self.stream.flush()
        self.drawn = len(line)

    def close(self) -> None:
        """End the bar's line, so what is printed next starts on its own."""
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = 0


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


def step(what: str, done: int, total: int, item: str = "") -> None:
    """Report that ``done`` of ``total`` units of ``what`` are finished, ``item`` the last one
    (a parameter's name); a no-op when nobody watches."""
    if _active is not None:
        _active.update(what, done, total, item)
