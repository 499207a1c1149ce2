"""The command line: ``graphaudit demo``, ``graphaudit audit TARGET``, ``graphaudit examples``.

Also reachable as ``python -m graphaudit``. :func:`main` takes ``argv`` (without the program
name) and returns the exit code: 0 when all went well, 2 for bad usage or bad input, which is
reported as one line on stderr (``graphaudit: error: ...``), never as a traceback (pass
``--traceback`` to see one).
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

from graphaudit import models, progress
from graphaudit.analysis.audit import audit
from graphaudit.errors import GraphauditError, MissingExtraError
from graphaudit.frontends import cli_frontends, nodes
from graphaudit.frontends.common import DEFAULT_LOOP_BUDGET, CliFrontend, TargetError, a_type

PROG = "graphaudit"
INSTALL_HINT = "install Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz)"


class Example(NamedTuple):
    build: Callable[..., models.Model]
    options: tuple[str, ...]  # which of --batch, --depth, --width apply
    summary: str


EXAMPLES: dict[str, Example] = {
    "seed_mlp": Example(
        models.seed_mlp,
        ("batch",),
        "the seed question's network: sigmoid 16384-5000-3000-512, softmax over 40",
    ),
    "deep_chain": Example(
        models.deep_chain,
        ("depth", "width", "batch"),
        "DEPTH sigmoid layers of WIDTH units, softmax: repeated work grows as DEPTH^2",
    ),
    "residual_mlp": Example(
        models.residual_mlp,
        ("depth", "width", "batch"),
        "DEPTH blocks h = h + tanh(h @ w + b), softmax: adjoints sum two paths",
    ),
}


# The analysis options of 'audit', as the front-ends name them (CliFrontend.options).
ANALYSIS_OPTIONS = ("xla", "compile_check", "measure", "count", "commutative", "semantic", "repeats", "loop_budget",
                    "group")


class UsageError(Exception):
    """Bad usage or bad input: reported as one line on stderr, exit code 2."""


# --- the parser ------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (and exit code 2), not a usage dump."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def _depth_list(text: str) -> list[int]:
    try:
        depths = [_positive_int(part) for part in text.split(",") if part.strip()]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive depths, got {text!r}") from None
    if len(set(depths)) < 2:
        raise argparse.ArgumentTypeError(f"need at least two different depths to fit an exponent, got {text!r}")
    return depths


def _example_lines(indent: str = "  ") -> list[str]:
    width = max(map(len, EXAMPLES))
    lines = []
    for name, example in EXAMPLES.items():
        lines.append(f"{indent}{name:<{width}}  {example.summary}")
        lines.append(f"{indent}{'':<{width}}  options: {_options_text(example)}")
    return lines


def _options_text(example: Example) -> str:
    defaults = {
        name: p.default
        for name, p in inspect.signature(example.build).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    return ", ".join(f"--{opt} (default {defaults[opt]})" for opt in example.options)


def frontend_examples(indent: str = "  ") -> list[str]:
    """One target per front-end, from its declaration: what --help shows a newcomer."""
    frontends = cli_frontends()
    width = max(len(frontend.name) for frontend in frontends)
    return [f"{indent}{frontend.name:<{width}}  graphaudit audit {frontend.example}" for frontend in frontends]


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog=PROG,
        formatter_class=formatter,
        description=(
            "Audit computation graphs for redundant backward work.\n\n"
            "Asking for gradients one parameter at a time (one grad call per parameter) makes\n"
            "every call rebuild the backward pass of the layers above that parameter; one joint\n"
            "call builds each adjoint once. graphaudit builds both forms, merges identical\n"
            "subexpressions by hashing, and reports how much work the separate form repeats\n"
            "(nodes, FLOPs, bytes), where (by op, by grad call, by forward node), and draws it."
        ),
        epilog=(
            "examples:\n"
            "  graphaudit demo                       audit the seed network, write graphaudit-out/\n"
            "  graphaudit audit deep_chain --depth 32 --json report.json\n"
            "  graphaudit audit model.py:build --png merged.png\n"
            "  graphaudit audit seed_mlp --json - --no-timings\n\n"
            "a target of each front-end (see 'graphaudit audit --help' for what a target returns):\n"
            + "\n".join(frontend_examples())
            + "\n\nRun 'graphaudit COMMAND --help' for the options of a command.\n"
            "Exit codes: 0 ok, 2 bad usage, bad input or a missing optional extra (one line on stderr)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument(
        "--traceback", action="store_true", help="on an error, show the full Python traceback instead of one line"
    )

    demo = commands.add_parser(
        "demo",
        parents=[debug],
        formatter_class=formatter,
        help="audit the seed network and write the report and its pictures to a folder",
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
    demo.add_argument("--out", metavar="DIR", default="graphaudit-out", help="output folder (default: %(default)s/)")
    demo.add_argument("--batch", type=_positive_int, default=128, help="batch size (default: %(default)s)")
    demo.add_argument(
        "--no-timings", action="store_true", help="leave measured times out of report.json (byte-identical runs)"
    )

    target = commands.add_parser(
        "audit",
        parents=[debug],
        formatter_class=formatter,
        help="audit a built-in example or your own function (path/to/file.py:function)",
        description=(
            "Audit one joint grad call against one grad call per parameter, and print the report.\n\n"
            "TARGET is a built-in example:\n"
            + "\n".join(_example_lines())
            + "\n\nor path/to/file.py:function, where function() takes no arguments and returns\n"
            "(cost, wrt) or (cost, wrt, feed): cost a scalar graphaudit Node, wrt a Node or a list\n"
            "of Nodes, feed a dict {leaf node: numpy array} (only needed for --measure);\n"
            "or, for a JAX function, (fn, args, argnums): fn(*args) a scalar, argnums the positions\n"
            "of the arguments to differentiate (arrays or pytrees of arrays; one jax.grad per leaf\n"
            "against one joint jax.grad). With a JAX target, --xla compiles both forms and counts\n"
            "what XLA keeps, and --measure times the jitted forms;\n"
            "or, for PyTensor, (cost, wrt) or (cost, wrt, shapes): cost a scalar PyTensor variable,\n"
            "wrt a variable or a list of them, shapes a dict {input name: shape} for inputs whose\n"
            "static shape PyTensor does not know (one pytensor.grad per parameter against one\n"
            "joint call; --compile-check adds what PyTensor's own rewrites keep);\n"
            "or, for PyTorch, (loss_fn, params, *inputs): params an nn.Module or a dict of tensors,\n"
            "loss_fn(params, *inputs) a scalar (the forward once, then one torch.autograd.grad per\n"
            "parameter against one joint call, traced on fake tensors; --compile-check adds what\n"
            "FX CSE and inductor keep, --measure times eager steps);\n"
            "or, for PyMC, a pymc.Model: its logp differentiated w.r.t. its value variables.\n"
            "An option that the target's front-end cannot honour is an error.\n"
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
    target.add_argument("target", metavar="TARGET", help="an example name or path/to/file.py:function")
    sizes = target.add_argument_group("example sizes (built-in examples only)")
    sizes.add_argument("--batch", type=_positive_int, help="batch size")
    sizes.add_argument("--depth", type=_positive_int, help="number of hidden layers / blocks")
    sizes.add_argument("--width", type=_positive_int, help="units per hidden layer")
    outputs = target.add_argument_group("outputs")
    outputs.add_argument("--json", metavar="PATH", help="write the report as JSON to PATH ('-' for stdout only)")
    outputs.add_argument("--png", metavar="PATH", help="draw the chosen view to a PNG file (needs Graphviz)")
    outputs.add_argument("--svg", metavar="PATH", help="draw the chosen view to an SVG file (needs Graphviz)")
    outputs.add_argument("--dot", metavar="PATH", help="write the chosen view as Graphviz DOT source")
    outputs.add_argument("--html", metavar="PATH", help="write the interactive HTML report (both views; works offline)")
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
    analysis = target.add_argument_group("analysis")
    analysis.add_argument(
        "--measure",
        action="store_true",
        help="also run each form with numpy and time it (needs a feed: the examples make one; "
        "a function target must return (cost, wrt, feed))",
    )
    analysis.add_argument(
        "--repeats", type=_positive_int,
        help="runs per form for --measure (default: 5); for a PyTensor target, builds of each form (default: 20)",
    )
    analysis.add_argument(
        "--xla",
        action="store_true",
        help="JAX targets only: also compile the separate grads (in one jit) and the joint grad with XLA and "
        "count the instructions and dots of the optimised HLO",
    )
    analysis.add_argument(
        "--compile-check",
        action="store_true",
        help="PyTensor, PyMC and PyTorch targets: also count what the framework's own optimisers keep of each "
        "form (PyTensor: MergeOptimizer and its default compile; PyTorch: FX CSE and inductor)",
    )
    analysis.add_argument(
        "--commutative", action="store_true", help="let merging treat a+b and b+a (and a*b, b*a, ...) as equal"
    )
    analysis.add_argument(
        "--semantic", action="store_true",
        help="also find duplicates written differently (x @ w and (w.T @ x.T).T, ...) by equality saturation; "
        "needs egglog: pip install 'graphaudit[egraph]'",
    )
    analysis.add_argument(
        "--loop-budget", type=_count, metavar="NODES",
        help=f"{_honoured_by('loop_budget')} targets: unroll loops (scans) for the analysis when all the forms "
        f"unrolled hold at most NODES nodes, else import each loop whole (default: {DEFAULT_LOOP_BUDGET})",
    )
    analysis.add_argument(
        "--group", choices=("module",),
        help=f"{_honoured_by('group')} targets: one separate grad call per module (a layer's weight and bias "
        "together, the leaves under one parent in the pytree) instead of one per leaf",
    )
    analysis.add_argument(
        "--count",
        action="store_true",
        help="count the separate form instead of building it (audit(..., materialize=False)): same numbers, "
        "for graphs whose separate form is too big to build; no pictures, no --measure",
    )

    grow = commands.add_parser(
        "growth",
        parents=[debug],
        formatter_class=formatter,
        help="audit a model at several depths and plot how each form grows (log-log, fitted exponents)",
        description=(
            "Audit TARGET at each depth and print the nodes and FLOPs of the separate, joint and merged\n"
            "forms with the fitted exponent k of count ~ depth^k (one grad call per parameter: ~2 on a\n"
            "chain; joint: ~1). Large separate forms are counted, not built (same numbers).\n\n"
            "TARGET is a built-in example that takes --depth (deep_chain, residual_mlp), or\n"
            "path/to/file.py:function where function(depth) returns what 'graphaudit audit' accepts."
        ),
        epilog="examples:\n  graphaudit growth deep_chain --depths 4,8,16,32,64 --png growth.png",
    )
    grow.add_argument("target", metavar="TARGET", help="an example name or path/to/file.py:function")
    grow.add_argument("--depths", type=_depth_list, default=[4, 8, 16, 32, 64],
                      help="comma-separated depths (default: 4,8,16,32,64)")
    grow.add_argument("--width", type=_positive_int, help="units per hidden layer (built-in examples)")
    grow.add_argument("--batch", type=_positive_int, help="batch size (built-in examples)")
    grow.add_argument("--png", metavar="PATH", help="draw the growth plot to a PNG file (needs matplotlib)")
    grow.add_argument("--svg", metavar="PATH", help="draw the growth plot to an SVG file (needs matplotlib)")
    grow.add_argument("--json", metavar="PATH", help="write the counts and exponents as JSON")
    grow.add_argument("--quiet", action="store_true", help="no progress bar on stderr")

    commands.add_parser(
        "examples",
        formatter_class=formatter,
        help="list the built-in examples that 'audit' accepts",
        description="List the built-in examples that 'graphaudit audit NAME' accepts, with their options.",
    )
    return parser


def _version() -> str:
    from graphaudit import __version__

    return __version__


# --- commands ----------------------------------------------------------------------------------


def cmd_examples(args: argparse.Namespace) -> int:
    print("\n".join(_example_lines(indent="")))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from graphaudit.views.draw import GraphvizMissingError

    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create output folder {out}: {exc.strerror or exc}") from None
    _check_output(out / "report.json", "--out")

    model = models.seed_mlp(batch=args.batch)
    report = audit(model.loss, model.params)
    print(report.to_text())
    print()

    written = [
        (_write_text(out / "report.json", report.to_json(timings=not args.no_timings) + "\n"), "the report as JSON"),
        (_write_text(out / "report.dot", report.to_dot("merged")), "the merged view as Graphviz DOT"),
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


def cmd_audit(args: argparse.Namespace) -> int:
    outputs = {flag: getattr(args, flag) for flag in ("json", "png", "svg", "dot", "html")}
    for flag, path in outputs.items():
        if path is None or (flag == "json" and path == "-"):
            continue
        _check_output(Path(path), f"--{flag}")
        if flag in ("png", "svg") and Path(path).suffix.lower() != f".{flag}":
            raise UsageError(f"--{flag} {path}: the file name must end in .{flag}")

    frontend, loaded = load_target(args)
    options = {option: getattr(args, option) for option in ANALYSIS_OPTIONS}
    _check_options(frontend, options, args.target)
    if args.count and (args.measure or args.png or args.svg or args.dot or args.html or args.model_explorer):
        raise UsageError("--count builds no separate graph: it cannot be drawn (--png/--svg/--dot/--html/"
                         "--model-explorer) or --measure'd")
    if args.model_explorer and not Path(args.model_explorer).parent.is_dir():
        raise UsageError(f"--model-explorer {args.model_explorer}: folder {Path(args.model_explorer).parent} does not exist")
    try:
        with progress.showing(progress.Progress(enabled=False if args.quiet else None)):
            report = frontend.run(loaded, options)
    except TargetError as exc:
        raise UsageError(str(exc)) from exc

    json_to_stdout = outputs["json"] == "-"
    notes = sys.stderr if json_to_stdout else sys.stdout
    if json_to_stdout:
        sys.stdout.write(report.to_json(timings=not args.no_timings) + "\n")
    else:
        print(report.to_text())
    written = []
    if outputs["json"] and not json_to_stdout:
        written.append(_write_text(Path(outputs["json"]), report.to_json(timings=not args.no_timings) + "\n"))
    if outputs["dot"]:
        written.append(_write_text(Path(outputs["dot"]), report.to_dot(args.view)))
    for flag in ("png", "svg"):
        if outputs[flag]:
            written.append(_render(report, Path(outputs[flag]), args.view))
    if outputs["html"]:
        written.append(report.to_html(outputs["html"]))
    if args.model_explorer:
        written.extend(report.to_model_explorer(args.model_explorer))
    if written:
        if not json_to_stdout:
            print(file=notes)
        for path in written:
            print(f"wrote {path}", file=notes)
    return 0


def cmd_growth(args: argparse.Namespace) -> int:
    from graphaudit.analysis.growth import growth, matplotlib_figure

    for flag in ("png", "svg", "json"):
        path = getattr(args, flag)
        if path is not None:
            _check_output(Path(path), f"--{flag}")
            if flag != "json" and Path(path).suffix.lower() != f".{flag}":
                raise UsageError(f"--{flag} {path}: the file name must end in .{flag}")
    if args.png or args.svg:
        matplotlib_figure()  # a missing matplotlib is said before the audits, not after
    build = _growth_builder(args)
    with progress.showing(progress.Progress(enabled=False if args.quiet else None)):
        result = growth(build, args.depths)
    print(result.to_text())
    if args.json:
        print(f"wrote {_write_text(Path(args.json), json.dumps(result.to_dict(), indent=2) + chr(10))}")
    for flag in ("png", "svg"):
        if getattr(args, flag):
            print(f"wrote {result.plot(getattr(args, flag), title=f'{args.target}: work vs depth')}")
    return 0


def _growth_builder(args: argparse.Namespace) -> Callable[[int], Any]:
    """``depth -> (cost, wrt)`` (or a finished Report, for a framework's target)."""
    target: str = args.target
    sizes = {name: getattr(args, name) for name in ("batch", "width") if getattr(args, name) is not None}
    if target in EXAMPLES:
        example = EXAMPLES[target]
        if "depth" not in example.options:
            deep = ", ".join(name for name, e in EXAMPLES.items() if "depth" in e.options)
            raise UsageError(f"{target} has no depth: growth takes {deep}, or path/to/file.py:function(depth)")

        def build_example(depth: int) -> tuple:
            model = example.build(depth=depth, **sizes)
            return model.loss, model.params

        return build_example
    if sizes:
        raise UsageError(f"--{sorted(sizes)[0]} applies only to the built-in examples, not to {target}")
    path_text, _, function_name = target.rpartition(":")
    if not path_text or not function_name:
        raise UsageError(f"unknown example {target!r}: choose deep_chain or residual_mlp, or give path/to/file.py:function")
    function = load_function(Path(path_text), function_name)

    def build_target(depth: int) -> Any:
        try:
            result = function(depth)
        except Exception as exc:
            raise UsageError(f"{target}({depth}) raised {type(exc).__name__}: {exc} (--traceback shows where)") from exc
        frontend, loaded = recognise(result, target)
        if isinstance(loaded, nodes.NodesTarget):
            return loaded.cost, loaded.wrt
        return frontend.run(loaded, {option: None for option in ANALYSIS_OPTIONS})

    return build_target


# --- targets -----------------------------------------------------------------------------------


def load_target(args: argparse.Namespace) -> tuple[CliFrontend, Any]:
    """The front-end and its target, from an example name or ``path/to/file.py:function``."""
    target: str = args.target
    sizes = {name: getattr(args, name) for name in ("batch", "depth", "width") if getattr(args, name) is not None}
    if target in EXAMPLES:
        example = EXAMPLES[target]
        extra = sorted(set(sizes) - set(example.options))
        if extra:
            raise UsageError(
                f"--{extra[0]} does not apply to {target} (it takes {', '.join('--' + o for o in example.options)})"
            )
        model = example.build(**sizes)
        return nodes.CLI, nodes.NodesTarget(model.loss, model.params, model.make_feed() if args.measure else None,
                                            target)
    if ":" not in target:
        if target.endswith(".py"):
            raise UsageError(f"name the function too: {target}:FUNCTION")
        raise UsageError(f"unknown example {target!r}: choose from {', '.join(EXAMPLES)}, or give path/to/file.py:function")
    if sizes:
        raise UsageError(f"--{sorted(sizes)[0]} applies only to the built-in examples, not to {target}")
    path_text, _, function_name = target.rpartition(":")
    if not path_text or not function_name:
        raise UsageError(f"bad target {target!r}: expected path/to/file.py:function")
    function = load_function(Path(path_text), function_name)
    try:
        result = function()
    except Exception as exc:  # the user's code failed: say so in one line (--traceback shows where)
        _missing_framework(exc, Path(path_text))
        raise UsageError(f"{target} raised {type(exc).__name__}: {exc} (--traceback shows where)") from exc
    return recognise(result, target)


def load_function(path: Path, name: str) -> Callable[[], Any]:
    """Import ``path`` as a module (with its folder on ``sys.path``) and return its ``name``."""
    if not path.exists():
        raise UsageError(f"target file {path} does not exist")
    if not path.is_file():
        raise UsageError(f"target {path} is not a file")
    if not name.isidentifier():
        raise UsageError(f"{name!r} is not a Python function name (target is path/to/file.py:function)")
    module_name = "_graphaudit_target_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import {path} as a Python module (does its name end in .py?)")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    sys.modules[module_name] = module
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(module_name, None)
        where = f", line {exc.lineno}" if exc.lineno else ""
        raise UsageError(f"syntax error in {path}{where}: {exc.msg}") from exc
    except Exception as exc:
        sys.modules.pop(module_name, None)
        _missing_framework(exc, path)
        raise UsageError(f"importing {path} failed: {type(exc).__name__}: {exc} (--traceback shows where)") from exc
    finally:
        try:
            sys.path.remove(folder)
        except ValueError:
            pass
    function = getattr(module, name, None)
    if function is None:
        defined = sorted(
            n for n, v in vars(module).items()
            if inspect.isfunction(v) and v.__module__ == module_name and not n.startswith("_")
        )
        found = f"; functions defined there: {', '.join(defined)}" if defined else ""
        raise UsageError(f"{path} has no function {name!r}{found}")
    if not callable(function):
        raise UsageError(f"{path}:{name} is {a_type(function)}, not a function")
    return function


def _missing_framework(exc: Exception, path: Path) -> None:
    """A target file that could not import a front-end's framework: say which extra installs it."""
    missing = getattr(exc, "name", None) if isinstance(exc, ImportError) else None
    for frontend in cli_frontends():
        if missing and frontend.module and missing.split(".")[0] == frontend.module:
            raise MissingExtraError(f"{path} imports {frontend.module}, which is not installed: "
                                    f"pip install 'graphaudit[{frontend.extra}]' ({exc})") from exc


def recognise(result: Any, target: str) -> tuple[CliFrontend, Any]:
    """The front-end that recognises what a target function returned, and its target."""
    frontends = cli_frontends()
    for frontend in frontends:
        try:
            recognised = frontend.recognise(result, target)
        except TargetError as exc:
            raise UsageError(str(exc)) from exc
        if recognised is not None:
            return frontend, recognised
    expected = ", or ".join(frontend.returns for frontend in frontends)
    got = f"a {len(result)}-tuple" if isinstance(result, (tuple, list)) else a_type(result)
    if isinstance(result, (tuple, list)) and len(result) in (2, 3):
        got += f" whose first item is {a_type(result[0])}"
    raise UsageError(f"{target} must return {expected}; got {got}")


def _check_options(frontend: CliFrontend, options: dict[str, Any], target: str) -> None:
    """Refuse, in one line, an analysis option that the target's front-end cannot honour."""
    for option, value in options.items():
        if value is None or value is False or option in frontend.options:
            continue
        raise UsageError(f"--{option.replace('_', '-')} applies to {_honoured_by(option)} targets only; "
                         f"{target} is a {frontend.name} target")


# --- files -------------------------------------------------------------------------------------


def _honoured_by(option: str) -> str:
    """``JAX, PyTensor and PyMC``: the front-ends that honour an analysis option, as their declarations say."""
    owners = [f.name for f in cli_frontends() if option in f.options]
    return " and ".join(filter(None, [", ".join(owners[:-1]), owners[-1]]))


def _check_output(path: Path, flag: str) -> None:
    """Fail early, before any work, if ``path`` cannot be written."""
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(f"{flag} {path}: folder {folder} does not exist")
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a folder, not a file")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: folder {folder} is not writable")


def _render(report: Any, path: Path, view: str) -> Path:
    """``report.render``; a missing Graphviz becomes a one-line error with the install hint."""
    from graphaudit.views.draw import GraphvizMissingError

    try:
        return Path(report.render(str(path), view=view))
    except GraphvizMissingError as exc:
        message = str(exc)
        raise UsageError(message if "install" in message.lower() else f"{message}; {INSTALL_HINT}") from exc


def _write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- entry point -------------------------------------------------------------------------------

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "demo": cmd_demo,
    "audit": cmd_audit,
    "examples": cmd_examples,
    "growth": cmd_growth,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    args = None
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        return COMMANDS[args.command](args)
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except (UsageError, GraphauditError, ValueError, TypeError, OSError) as exc:
        if args is not None and getattr(args, "traceback", False):
            raise
        _error(exc)
        return 2


def _error(exc: BaseException) -> None:
    if isinstance(exc, UsageError):
        message = str(exc)
    elif isinstance(exc, OSError) and exc.filename is not None:
        message = f"{exc.filename}: {exc.strerror or exc}"
    elif isinstance(exc, GraphauditError):
        message = str(exc)
    else:
        message = f"{type(exc).__name__}: {exc}"
    message = " ".join(part.strip() for part in message.splitlines() if part.strip()) or type(exc).__name__
    print(f"{PROG}: error: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
