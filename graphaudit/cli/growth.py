"""``graphaudit growth TARGET``: audit at several depths, fit count ~ depth^k, and plot it."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graphaudit import progress
from graphaudit.cli.examples import EXAMPLES, add_size_options, example_sizes
from graphaudit.cli.options import analysis_options
from graphaudit.cli.outputs import check_outputs, write_text
from graphaudit.cli.targets import audit_target, load_function, recognise, split_target, user_code
from graphaudit.cli.usage import Subcommands, UsageError, depth_list
from graphaudit.frontends import nodes

DEEP = tuple(name for name, example in EXAMPLES.items() if "depth" in example.options)


def add_parser(subparsers: Subcommands) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "growth",
        description=(
            "Audit TARGET at each depth and print the nodes and FLOPs of the separate, joint and merged\n"
            "forms with the fitted exponent k of count ~ depth^k (one grad call per parameter: ~2 on a\n"
            "chain; joint: ~1). Large separate forms are counted, not built (same numbers).\n\n"
            f"TARGET is a built-in example that takes --depth ({', '.join(DEEP)}), or\n"
            "path/to/file.py:function where function(depth) returns what 'graphaudit audit' accepts."
        ),
        epilog="examples:\n  graphaudit growth deep_chain --depths 4,8,16,32,64 --png growth.png",
    )
    parser.add_argument("target", metavar="TARGET", help="an example name or path/to/file.py:function")
    parser.add_argument("--depths", type=depth_list, default=[4, 8, 16, 32, 64],
                        help="comma-separated depths (default: 4,8,16,32,64)")
    add_size_options(parser, ("width", "batch"), "built-in examples only")
    parser.add_argument("--png", metavar="PATH", help="draw the growth plot to a PNG file (needs matplotlib)")
    parser.add_argument("--svg", metavar="PATH", help="draw the growth plot to an SVG file (needs matplotlib)")
    parser.add_argument("--json", metavar="PATH", help="write the counts and exponents as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    return parser


def run(args: argparse.Namespace) -> int:
    from graphaudit.analysis.growth import growth, matplotlib_figure

    check_outputs(args, ("png", "svg", "json"))
    if args.png or args.svg:
        matplotlib_figure()  # a missing matplotlib is said before the audits, not after
    build = builder(args)
    with progress.showing(progress.Progress(enabled=False if args.quiet else None)):
        result = growth(build, args.depths)
    print(result.to_text())
    if args.json:
        print(f"wrote {write_text(Path(args.json), json.dumps(result.to_dict(), indent=2) + chr(10))}")
    for flag in ("png", "svg"):
        if getattr(args, flag):
            print(f"wrote {result.plot(getattr(args, flag), title=f'{args.target}: work vs depth')}")
    return 0


def builder(args: argparse.Namespace) -> Callable[[int], Any]:
    """``depth -> (cost, wrt)`` (or a finished Report, for a framework's target)."""
    target: str = args.target
    sizes = example_sizes(args, target)
    if target in EXAMPLES:
        if target not in DEEP:
            raise UsageError(f"{target} has no depth: growth takes {', '.join(DEEP)}, or path/to/file.py:function(depth)")

        def build_example(depth: int) -> tuple:
            model = EXAMPLES[target].build(depth=depth, **sizes)
            return model.loss, model.params

        return build_example
    path, name = split_target(target, choices=", ".join(DEEP))
    function = load_function(path, name)

    def build_target(depth: int) -> Any:
        with user_code(f"{target}({depth})", path):
            result = function(depth)
        frontend, loaded = recognise(result, target)
        if isinstance(loaded, nodes.NodesTarget):
            return loaded.cost, loaded.wrt
        return audit_target(frontend, loaded, analysis_options(), f"{target}({depth})")

    return build_target
