"""``graphaudit demo``: audit the seed network, print the report, and write it and its pictures to a folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from graphaudit import models
from graphaudit.analysis.audit import audit
from graphaudit.cli.outputs import INSTALL_HINT, check_writable, write_text
from graphaudit.cli.usage import Subcommands, UsageError, positive_int


def add_parser(subparsers: Subcommands) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "demo",
        description=(
            "Audit the network of the seed question (graphaudit.models.seed_mlp: sigmoid layers\n"
            "16384-5000-3000-512, softmax over 40 classes, 8 parameters), print the report, and\n"
            "write into DIR:\n"
            "  report.json   the report as data (Report.to_dict)\n"
            "  report.dot    the merged view as Graphviz DOT source\n"
            "  separate.png  every node of the 8 separate grad calls, duplicated nodes in red\n"
            "  merged.png    the merged graph, backward nodes shaded by how many calls built them\n"
            "  report.html   the interactive report: open it in a browser (works offline)\n"
            "The PNGs need Graphviz's 'dot'; without it the JSON and DOT are still written."
        ),
    )
    parser.add_argument("--out", metavar="DIR", default="graphaudit-out", help="output folder (default: %(default)s/)")
    parser.add_argument("--batch", type=positive_int, default=128, help="batch size (default: %(default)s)")
    parser.add_argument(
        "--no-timings", action="store_true", help="leave measured times out of report.json (byte-identical runs)"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    from graphaudit.views.draw import GraphvizMissingError

    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create output folder {out}: {exc.strerror or exc}") from None
    check_writable(out / "report.json", "--out")

    model = models.seed_mlp(batch=args.batch)
    report = audit(model.loss, model.params)
    print(report.to_text())
    print()

    written = [
        (write_text(out / "report.json", report.to_json(timings=not args.no_timings) + "\n"), "the report as JSON"),
        (write_text(out / "report.dot", report.to_dot("merged")), "the merged view as Graphviz DOT"),
        (Path(report.to_html(str(out / "report.html"))), "the interactive report: open it in a browser"),
    ]
    missing = None
    try:
        for view, what in (
            ("separate", "every node of the separate grad calls, duplicates in red"),
            ("merged", "the merged graph, shaded by how many calls built each node"),
        ):
            written.append((Path(report.render(str(out / f"{view}.png"), view=view)), what))
    except GraphvizMissingError:
        missing = "note: Graphviz 'dot' was not found, so no PNGs were drawn; " + INSTALL_HINT + " and run again"

    width = max(len(str(path)) for path, _ in written)
    print(f"wrote to {out}/:")
    for path, what in written:
        print(f"  {str(path):<{width}}  {what}")
    if missing:
        print(missing, file=sys.stderr)
    return 0
