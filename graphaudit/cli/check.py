"""``graphaudit check TARGET``: a guard for CI. Exit 0 within the budget of repeated backward work, 1 over it."""

from __future__ import annotations

import argparse
from pathlib import Path

from graphaudit.analysis.guard import check, parse_budget
from graphaudit.cli.examples import add_size_options, example_lines
from graphaudit.cli.options import add_analysis_options, analysis_options, check_options
from graphaudit.cli.targets import audit_target, frontend_examples, load_target
from graphaudit.cli.usage import Subcommands, UsageError

DEFAULT_BUDGET = "0"  # no repeated work at all


def add_parser(subparsers: Subcommands) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "check",
        description=(
            "Audit TARGET (as 'graphaudit audit' does) and compare its repeated backward work with a budget:\n"
            "exit 0 within it, 1 over it (with one 'file:line: ...' line per line of your code that repeats\n"
            "work, as compilers print them), 2 on bad usage.\n\nTARGET is a built-in example:\n"
            + "\n".join(example_lines()) + "\n\nor path/to/file.py:function."
        ),
        epilog=("examples:\n  graphaudit check train.py:step --max-duplicated-flops 5G\n"
                "  graphaudit check train.py:step --max-duplicated-flops 2% --sarif graphaudit.sarif\n\n"
                "a target of each front-end:\n" + "\n".join(frontend_examples())),
    )
    parser.add_argument("target", metavar="TARGET", help="an example name or path/to/file.py:function")
    add_size_options(parser, ("batch", "depth", "width"), "built-in examples only")
    parser.add_argument("--max-duplicated-flops", metavar="N|P%", default=DEFAULT_BUDGET,
                        help="the budget: FLOPs with SI suffixes (5G, 500M) or a share of the joint backward's "
                             "FLOPs (2%%); default: %(default)s, no repeated work")
    parser.add_argument("--sarif", metavar="PATH", help="also write the findings as SARIF 2.1.0 (GitHub code scanning)")
    add_analysis_options(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        budget = parse_budget(args.max_duplicated_flops)
    except ValueError as exc:
        raise UsageError(f"--max-duplicated-flops {args.max_duplicated_flops}: {exc}") from exc
    if args.sarif and not Path(args.sarif).resolve().parent.is_dir():
        raise UsageError(f"--sarif {args.sarif}: folder {Path(args.sarif).parent} does not exist")
    frontend, loaded = load_target(args)
    options = analysis_options(args)
    check_options(frontend, options, args.target)
    report = audit_target(frontend, loaded, options, args.target)
    result = check(report, budget)
    if not result.within:
        for line in result.findings:
            print(line)
    print(f"graphaudit check {args.target}: {result.summary}")
    if args.sarif:
        from graphaudit.views.sarif import write_sarif

        print(f"wrote {write_sarif(report, args.sarif, budget)}")
    return 0 if result.within else 1
