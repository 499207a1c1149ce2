"""What counts as bad usage: one line on stderr and exit code 2, never a usage dump or a traceback."""

from __future__ import annotations

import argparse
from typing import NoReturn


class UsageError(Exception):
    """Bad usage or bad input: reported as one line on stderr, exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (and exit code 2), not a usage dump."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def positive_int(text: str) -> int:
    """An argument type: 1, 2, 3, ..."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def whole_number(text: str) -> int:
    """An argument type: 0, 1, 2, ... (a budget of 0 is a choice, not a mistake)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def depth_list(text: str) -> list[int]:
    """An argument type: ``4,8,16``, at least two different depths (a line needs two points)."""
    try:
        depths = [positive_int(part) for part in text.split(",") if part.strip()]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive depths, got {text!r}") from None
    if len(set(depths)) < 2:
        raise argparse.ArgumentTypeError(f"need at least two different depths to fit an exponent, got {text!r}")
    return depths


class Subcommands:
    """What a command module's ``add_parser`` gets: argparse's subparsers, with each command's
    summary (from the command table), its --traceback and the help layout filled in."""

    def __init__(self, action: argparse._SubParsersAction, summaries: dict[str, str]) -> None:
        self._action = action
        self._summaries = summaries

    def add_parser(self, name: str, **kwargs) -> argparse.ArgumentParser:
        parser = self._action.add_parser(
            name, help=self._summaries[name], formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs
        )
        parser.add_argument(
            "--traceback", action="store_true", help="on an error, show the full Python traceback instead of one line"
        )
        return parser
