"""The interactive HTML report at real-model scale: file size and time to the first interactive frame.

Writes the report of the seed network and of a deep chain whose separate form has ~50k
operations, opens each in headless Chromium (:mod:`graphaudit.views.browser`), and measures the
time from ``goto`` to the page saying it is ready (first frame drawn, clicks answered), the
page's own figure (``performance.now()`` at that moment) and the file's size. With ``--out DIR``
it also keeps the reports and screenshots: the top level of each, the seed with a grad call
opened, and the 50k-node form after a search (what ``make demo`` writes). Without a browser
to drive it still writes the reports, says in one line what it skipped and why, and exits 0:
the browser is optional.

    .venv/bin/python benchmarks/bench_html.py [--out graphaudit-out] [--nodes 50000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from common import ChainSizes, count_text, seconds_text, table, target, title

import graphaudit as ga
from graphaudit.views.browser import BrowserMissingError, open_report
from graphaudit.core.describe import si

TARGET_SECONDS, TARGET_BYTES = 2.0, 10e6


def reports(nodes: int) -> dict[str, ga.Report]:
    seed = ga.models.seed_mlp()
    depth = ChainSizes().depth_for(nodes)
    chain = ga.models.deep_chain(depth)
    return {"seed": ga.audit(seed.loss, seed.params), f"chain{depth}": ga.audit(chain.loss, chain.params)}


def measure(path: Path, runs: int) -> tuple[float, float]:
    """Median seconds to interactive as Python sees it, and as the page measured it."""
    outside, inside = [], []
    for _ in range(runs):
        with open_report(path) as opened:
            if opened.errors or len(opened.requests) != 1:
                raise RuntimeError(f"{path}: console errors {opened.errors}, requests {opened.requests}")
            outside.append(opened.seconds_to_interactive)
            inside.append(opened.page.evaluate("window.graphaudit.readyMs") / 1000)
    return statistics.median(outside), statistics.median(inside)


def screenshots(path: Path, out: Path, name: str, search: str | None) -> list[Path]:
    """The top level; then a grad call opened (seed) or a search's result revealed (big forms)."""
    shots = [out / f"{name}.png", out / f"{name}-open.png"]
    with open_report(path) as opened:
        page = opened.page
        page.locator("#explorer").scroll_into_view_if_needed()
        page.screenshot(path=str(shots[0]))
        if search is None:
            page.locator("[data-group]", has_text="grad(cost, [w2])").first.dispatch_event("click")
            page.locator("[data-group]", has_text="layer 3").first.dispatch_event("click")
        else:
            page.fill("#search", search)
            page.press("#search", "Enter")
        page.locator("#explorer").scroll_into_view_if_needed()
        page.screenshot(path=str(shots[1]))
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="keep the reports and write screenshots into this folder")
    parser.add_argument("--nodes", type=int, default=50_000, help="separate-form operations of the big report")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    folder = args.out or Path(tempfile.mkdtemp(prefix="graphaudit-html-"))
    folder.mkdir(parents=True, exist_ok=True)
    title("HTML report: size and time to the first interactive frame (headless Chromium)")
    rows, no_browser = [], None
    for name, report in reports(args.nodes).items():
        path = Path(report.to_html(str(folder / f"{name}.html")))
        written = [path]
        if no_browser is None:
            try:
                row, shots = browse(name, report, path, args)
                rows.append(row)
                written += shots
            except BrowserMissingError as exc:  # the reports stand without it: say so, and go on
                no_browser = exc
        if args.out:
            print("wrote", *written)
    if no_browser is not None:
        print(f"skipped the browser (timings and screenshots): {no_browser}", file=sys.stderr)
        return 0
    table(["report", "separate nodes", "HTML size", "to interactive", "in page"], rows)
    return 0


def browse(name: str, report: ga.Report, path: Path, args: argparse.Namespace) -> tuple[list, list[Path]]:
    """The report timed in the browser (its table row; TARGET lines for the big one), and with --out its screenshots."""
    outside, inside = measure(path, args.runs)
    size = path.stat().st_size
    row = [name, count_text(report.forms["separate"].cost.nodes), si(size, 'B'), seconds_text(outside),
           seconds_text(inside)]
    if name != "seed":
        target(f"html {name} time to interactive", outside, "<", TARGET_SECONDS, seconds_text)
        target(f"html {name} file size", size, "<", TARGET_BYTES, lambda b: si(b, "B"))
    if not args.out:
        return row, []
    middle = f"d(add_{len(report.wrt) // 4})"  # the adjoint of a middle layer, rebuilt by many calls
    return row, screenshots(path, args.out, name, None if name == "seed" else middle)


if __name__ == "__main__":
    sys.exit(main())
