"""``graphaudit examples``: the built-in example networks, their size options, and the command that lists them.

``audit`` and ``growth`` take an example's name as their TARGET (:data:`EXAMPLES`).
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable
from typing import NamedTuple

from graphaudit import models
from graphaudit.cli.usage import Subcommands, UsageError, positive_int


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

SIZES = {"batch": "batch size", "depth": "number of hidden layers / blocks", "width": "units per hidden layer"}


def add_size_options(parser: argparse.ArgumentParser, names: tuple[str, ...], where: str) -> None:
    group = parser.add_argument_group(f"example sizes ({where})")
    for name in names:
        group.add_argument(f"--{name}", type=positive_int, help=SIZES[name])


def example_sizes(args: argparse.Namespace, target: str) -> dict[str, int]:
    """The size options given, refused in one line where ``target`` does not take them."""
    sizes = {name: getattr(args, name) for name in SIZES if getattr(args, name, None) is not None}
    if target not in EXAMPLES:
        if sizes:
            raise UsageError(f"--{sorted(sizes)[0]} applies only to the built-in examples, not to {target}")
        return sizes
    takes = EXAMPLES[target].options
    extra = sorted(set(sizes) - set(takes))
    if extra:
        raise UsageError(f"--{extra[0]} does not apply to {target} (it takes {', '.join('--' + o for o in takes)})")
    return sizes


def example_lines(indent: str = "  ") -> list[str]:
    """Each example, its summary, and its size options with their defaults (read from its builder)."""
    width = max(map(len, EXAMPLES))
    lines = []
    for name, example in EXAMPLES.items():
        defaults = {
            option: parameter.default
            for option, parameter in inspect.signature(example.build).parameters.items()
            if parameter.default is not inspect.Parameter.empty
        }
        options = ", ".join(f"--{option} (default {defaults[option]})" for option in example.options)
        lines.append(f"{indent}{name:<{width}}  {example.summary}")
        lines.append(f"{indent}{'':<{width}}  options: {options}")
    return lines


def add_parser(subparsers: Subcommands) -> argparse.ArgumentParser:
    return subparsers.add_parser(
        "examples", description="List the built-in examples that 'graphaudit audit NAME' accepts, with their options."
    )


def run(args: argparse.Namespace) -> int:
    print("\n".join(example_lines(indent="")))
    return 0
