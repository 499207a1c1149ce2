"""The command line: ``graphaudit demo``, ``audit TARGET``, ``growth TARGET``, ``examples``.

Also reachable as ``python -m graphaudit``. :func:`main` takes ``argv`` (without the program
name) and returns the exit code: 0 when all went well, 2 for bad usage or bad input, which is
reported as one line on stderr (``graphaudit: error: ...``), never as a traceback (pass
``--traceback`` to see one). As in pip, the commands are a table, and a command's module is
imported only when that command runs: each has ``add_parser(subparsers)`` and ``run(args)``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from graphaudit.cli.targets import frontend_examples
from graphaudit.cli.usage import Parser, Subcommands, UsageError
from graphaudit.errors import GraphauditError

PROG = "graphaudit"

# name: (module, summary), in the order --help lists them
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("graphaudit.cli.demo", "audit the seed network and write the report and its pictures to a folder"),
    "audit": ("graphaudit.cli.audit", "audit a built-in example or your own function (path/to/file.py:function)"),
    "growth": ("graphaudit.cli.growth",
               "audit a model at several depths and plot how each form grows (log-log, fitted exponents)"),
    "check": ("graphaudit.cli.check", "fail (exit 1) when a target repeats more backward work than a budget; "
                                      "for CI, with SARIF"),
    "examples": ("graphaudit.cli.examples", "list the built-in examples that 'audit' accepts"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; of the commands, only ``command``'s module is imported and its options added."""
    from graphaudit import __version__

    parser = Parser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    action = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    subparsers = Subcommands(action, {name: summary for name, (_, summary) in COMMANDS.items()})
    for name, (module_name, _) in COMMANDS.items():
        if name == command:
            module = importlib.import_module(module_name)
            module.add_parser(subparsers).set_defaults(run=module.run)
        else:  # listed in --help by its summary; never parsed
            subparsers.add_parser(name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    try:
        code = _run(argv)
        sys.stdout.flush()  # a reader gone away (graphaudit ... | head) shows here, not at exit
        return code
    except BrokenPipeError:  # as pip and black: no message, the reader has all it wanted
        _discard_stdout()
        return 1


def _run(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)  # the top level's options take no value
    args = None
    try:
        parser = build_parser(command)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return 2
        return args.run(args)
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        raise
    except (UsageError, GraphauditError, ValueError, TypeError, OSError) as exc:
        if args is not None and getattr(args, "traceback", False):
            raise
        _error(exc)
        return 2


def _discard_stdout() -> None:
    """Send what is left for stdout to /dev/null: Python's flush at exit would fail again (the recipe
    of the documentation of Python's signal module)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # a stdout that is no file (captured in a test): nothing will flush it
        pass


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
