"""``graphaudit growth TARGET``: audit at several depths, fit count ~ depth^k, and plot it."""

from __future__ import annotations

import argparse
import json
import sys
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
            "path/to/file.py:function where function(depth) returns what 'graphaudit audit' accepts.\n\n"
            "With --orders 1..K, TARGET is path/to/file.py:function returning (u_fn, model, x) for PyTorch\n"
            "or (u_fn, args, argnum) for JAX: one row per derivative order of u w.r.t. x (nested grads of\n"
            "the sum), traced and merged nodes and FLOPs, and their growth per order."
        ),
        epilog="examples:\n  graphaudit growth deep_chain --depths 4,8,16,32,64 --png growth.png\n"
               "  graphaudit growth examples/torch_sciml.py:orders --orders 1..6",
    )
    parser.add_argument("target", metavar="TARGET", help="an example name or path/to/file.py:function")
    parser.add_argument("--depths", type=depth_list, default=[4, 8, 16, 32, 64],
                        help="comma-separated depths (default: 4,8,16,32,64)")
    parser.add_argument("--orders", type=order_range, metavar="1..K",
                        help="derivative orders 1..K of a function's output w.r.t. its input, instead of depths")
    add_size_options(parser, ("width", "batch"), "built-in examples only")
    parser.add_argument("--png", metavar="PATH", help="draw the growth plot to a PNG file (needs matplotlib)")
    parser.add_argument("--svg", metavar="PATH", help="draw the growth plot to an SVG file (needs matplotlib)")
    parser.add_argument("--json", metavar="PATH", help="write the counts and exponents as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    return parser


def run(args: argparse.Namespace) -> int:
    from graphaudit.analysis.growth import growth, matplotlib_figure

    check_outputs(args, ("png", "svg", "json"))
    if args.orders:
        return run_orders(args)
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


def order_range(text: str) -> int:
    """An argument type: ``1..K`` (or ``K``), the highest order."""
    from graphaudit.analysis.orders import parse_orders

    try:
        return parse_orders(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def run_orders(args: argparse.Namespace) -> int:
    """``--orders``: the target's derivatives by order, a table (and ``--json``); pictures are for depths."""
    if args.png or args.svg:
        raise UsageError("--png and --svg draw growth with depth; with --orders, write --json")
    path, name = split_target(args.target, choices="a path/to/file.py:function (--orders)")
    function = load_function(path, name)
    with user_code(f"{args.target}()", path):
        result = function()
    orders = derivative_orders_of(result, args.target, args.orders)
    print(orders.to_text())
    if args.json:
        print(f"wrote {write_text(Path(args.json), json.dumps(orders.to_dict(), indent=2) + chr(10))}")
    return 0


def derivative_orders_of(result: Any, target: str, max_order: int) -> Any:
    """(u_fn, model, x) in PyTorch, (u_fn, args, argnum) in JAX: their orders; else one line saying so."""
    torch = sys.modules.get("torch")
    if isinstance(result, tuple) and len(result) == 3 and callable(result[0]):
        u_fn, second, third = result
        if torch is not None and isinstance(third, torch.Tensor):
            from graphaudit.frontends.torch import derivative_orders
            return derivative_orders(u_fn, third, params=second, max_order=max_order)
        if "jax" in sys.modules and isinstance(second, tuple) and isinstance(third, int):
            from graphaudit.frontends.jax import derivative_orders
            return derivative_orders(u_fn, *second, argnum=third, max_order=max_order)
    raise UsageError(f"{target} must return (u_fn, model, x) for PyTorch or (u_fn, args, argnum) for JAX "
                     "with --orders")


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
