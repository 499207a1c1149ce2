"""``graphaudit audit TARGET``: one joint grad call against one grad call per parameter, reported and drawn."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from graphaudit import progress
from graphaudit.cli.examples import add_size_options, example_lines
from graphaudit.cli.options import add_analysis_options, analysis_options, check_options
from graphaudit.cli.outputs import check_outputs, render, write_text
from graphaudit.cli.targets import audit_target, frontend_examples, frontend_returns, load_target
from graphaudit.cli.usage import Subcommands, UsageError

FILES = ("json", "png", "svg", "dot", "html")  # the --flag PATH outputs, checked before the audit
DRAWINGS = ("png", "svg", "dot", "html", "model_explorer")  # outputs that need the separate form built


def add_parser(subparsers: Subcommands) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "audit",
        description=(
            "Audit one joint grad call against one grad call per parameter, and print the report.\n\n"
            "TARGET is a built-in example:\n"
            + "\n".join(example_lines())
            + "\n\nor path/to/file.py:function, where function() takes no arguments and returns what\n"
            "one of these front-ends takes (they are asked in this order):\n"
            + "\n".join(frontend_returns())
            + "\n\nAn option that the target's front-end does not honour is an error.\n"
            "The file is imported as a module, with its folder on sys.path."
        ),
        epilog=(
            "examples:\n"
            "  graphaudit audit seed_mlp --batch 32\n"
            "  graphaudit audit deep_chain --depth 32 --width 64 --png merged.png --view merged\n"
            "  graphaudit audit residual_mlp --measure\n"
            "  graphaudit audit my_model.py:build --json report.json --svg separate.svg --view separate\n\n"
            "a target of each front-end:\n"
            + "\n".join(frontend_examples())
        ),
    )
    parser.add_argument("target", metavar="TARGET", help="an example name or path/to/file.py:function")
    add_size_options(parser, ("batch", "depth", "width"), "built-in examples only")
    outputs = parser.add_argument_group("outputs")
    outputs.add_argument("--json", metavar="PATH", help="write the report as JSON to PATH ('-' for stdout only)")
    outputs.add_argument("--png", metavar="PATH", help="draw the chosen view to a PNG file (needs Graphviz)")
    outputs.add_argument("--svg", metavar="PATH", help="draw the chosen view to an SVG file (needs Graphviz)")
    outputs.add_argument("--dot", metavar="PATH", help="write the chosen view as Graphviz DOT source")
    outputs.add_argument("--html", metavar="PATH", help="write the interactive HTML report (both views; works offline)")
    outputs.add_argument("--group-by", choices=("scope", "source"), default="scope",
                         help="how the HTML report first groups the graph under each grad call: 'scope' (the "
                         "model's hierarchy) or 'source' (your file:line); the page switches; default: %(default)s")
    outputs.add_argument("--model-explorer", metavar="DIR",
                         help="write both views for Google's Model Explorer: DIR/graphs.json and node-data overlays")
    outputs.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    outputs.add_argument(
        "--view",
        choices=("merged", "separate"),
        default="merged",
        help="which picture --png/--svg/--dot draw: 'merged' (the merged graph, shaded by how many "
        "calls built each node) or 'separate' (every grad call in its own cluster, duplicates in red); "
        "default: %(default)s",
    )
    outputs.add_argument(
        "--no-timings", action="store_true", help="leave measured times out of the JSON (null), so runs compare byte for byte"
    )
    add_analysis_options(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    check_outputs(args, FILES)
    frontend, loaded = load_target(args)
    options = analysis_options(args)
    check_options(frontend, options, args.target)
    if args.count and (args.measure or any(getattr(args, flag) for flag in DRAWINGS)):
        raise UsageError("--count builds no separate graph: it cannot be drawn (--png/--svg/--dot/--html/"
                         "--model-explorer) or --measure'd")
    if args.model_explorer and not Path(args.model_explorer).parent.is_dir():
        raise UsageError(f"--model-explorer {args.model_explorer}: folder {Path(args.model_explorer).parent} does not exist")
    with progress.showing(progress.Progress(enabled=False if args.quiet else None)):
        report = audit_target(frontend, loaded, options, args.target)

    json_to_stdout = args.json == "-"
    notes = sys.stderr if json_to_stdout else sys.stdout
    if json_to_stdout:
        sys.stdout.write(report.to_json(timings=not args.no_timings) + "\n")
    else:
        print(report.to_text())
    written = []
    if args.json and not json_to_stdout:
        written.append(write_text(Path(args.json), report.to_json(timings=not args.no_timings) + "\n"))
    if args.dot:
        written.append(write_text(Path(args.dot), report.to_dot(args.view)))
    for flag in ("png", "svg"):
        if getattr(args, flag):
            written.append(render(report, Path(getattr(args, flag)), args.view))
    if args.html:
        written.append(report.to_html(args.html, group_by=args.group_by))
    if args.model_explorer:
        written.extend(report.to_model_explorer(args.model_explorer))
    if written:
        if not json_to_stdout:
            print(file=notes)
        for path in written:
            print(f"wrote {path}", file=notes)
    return 0
