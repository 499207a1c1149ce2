"""Open an HTML report in a headless Chromium: screenshots, timings, and the browser tests.

Playwright drives the browser (``pip install graphaudit[browser]``). It uses the system's
Chromium (Debian: ``apt-get install chromium``; ``make test`` installs it) or, failing that,
one installed by ``playwright install chromium``. The browser runs with networking in the
background switched off, and every request the page makes is recorded, so a test can check
that a report is truly offline.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SYSTEM_CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu"]
VIEWPORT = {"width": 1400, "height": 1000}


class BrowserMissingError(RuntimeError):
    """Playwright or a Chromium to drive is not installed."""


def chromium_path() -> str | None:
    """The system Chromium, if there is one (``$GRAPHAUDIT_CHROMIUM`` first)."""
    named = os.environ.get("GRAPHAUDIT_CHROMIUM")
    if named:
        return named
    return next((found for name in SYSTEM_CHROMIUM if (found := shutil.which(name))), None)


@dataclass
class OpenReport:
    """A report open in the browser: the Playwright page, what it logged and asked for, and timings."""

    page: Any
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    seconds_to_interactive: float = 0.0


@contextlib.contextmanager
def open_report(path: str | Path, timeout_s: float = 60) -> Iterator[OpenReport]:
    """Load the report at ``path`` and wait until its first frame is drawn and it answers clicks."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise BrowserMissingError("opening a report in a browser needs Playwright: pip install 'graphaudit[browser]'") from None
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=chromium_path(), args=ARGS)
        except Exception as exc:  # Playwright's own error says which browser is missing
            raise BrowserMissingError(f"no Chromium to drive: apt-get install chromium, or playwright install chromium "
                                      f"({str(exc).splitlines()[0]})") from None
        try:
            page = browser.new_page(viewport=VIEWPORT)
            opened = OpenReport(page)
            page.on("console", lambda message: opened.errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: opened.errors.append(str(error)))
            page.on("request", lambda request: opened.requests.append(request.url))
            start = time.perf_counter()
            page.goto(Path(path).resolve().as_uri())
            page.wait_for_function("window.graphaudit && window.graphaudit.ready", timeout=timeout_s * 1000)
            opened.seconds_to_interactive = time.perf_counter() - start
            yield opened
        finally:
            browser.close()

