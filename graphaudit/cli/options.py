"""The analysis options of ``graphaudit audit``, in one table.

Each row is an option as the front-ends name it in ``CliFrontend.options`` ("loop_budget" is
``--loop-budget``). From the table come the ``add_argument`` calls, the help's "which
targets" (read from the front-ends' declarations, so a new front-end edits nothing here),
the one ``AuditOptions`` a front-end's audit takes, and the one-line refusal of an option that the
target's front-end does not honour.
"""

from __future__ import annotations

import argparse
import operator
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from graphaudit.cli.usage import UsageError, positive_int, whole_number
from graphaudit.frontends import cli_frontends
from graphaudit.frontends.common import DEFAULT_LOOP_BUDGET, AuditOptions, CliFrontend


class AnalysisOption(NamedTuple):
    name: str  # as CliFrontend.options names it
    help: str  # what it does; which targets honour it is added from the front-ends' declarations
    argparse: Mapping[str, Any]  # the rest of add_argument: action, type, metavar, choices
    field: str | None = None  # the AuditOptions field it sets; None: a front-end's own option, handed over as given
    value: Callable[[Any], Any] = lambda given: given  # the field's value, from the option's

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


ANALYSIS_OPTIONS = (
    AnalysisOption("measure", "also run each form and time it (needs a feed: the built-in examples make one; a "
                   "graphaudit function target returns (cost, wrt, feed))", {"action": "store_true"}, "measure"),
    AnalysisOption("repeats", "runs (or builds) of each form that are timed (default: the front-end's)",
                   {"type": positive_int}, "repeats"),
    AnalysisOption("xla", "also compile the separate grads (in one jit) and the joint grad with XLA and count "
                   "the instructions and dots of the optimised HLO", {"action": "store_true"}, "compile_check"),
    AnalysisOption("compile_check", "also count what the framework's own optimisers keep of each form",
                   {"action": "store_true"}, "compile_check"),
    AnalysisOption("commutative", "let merging treat a+b and b+a (and a*b, b*a, ...) as equal",
                   {"action": "store_true"}, "commutative"),
    AnalysisOption("semantic", "also find duplicates written differently (x @ w and (w.T @ x.T).T, ...) by "
                   "equality saturation; needs egglog: pip install 'graphaudit[egraph]'", {"action": "store_true"},
                   "semantic"),
    AnalysisOption("loop_budget", "unroll loops (scans) for the analysis when all the forms unrolled hold at "
                   f"most NODES nodes, else import each loop whole (default: {DEFAULT_LOOP_BUDGET})",
                   {"type": whole_number, "metavar": "NODES"}, "loop_budget"),
    AnalysisOption("group", "one separate grad call per module (a layer's weight and bias together, the leaves "
                   "under one parent in the pytree) instead of one per leaf", {"choices": ("module",)}),
    AnalysisOption("count", "count the separate form instead of building it (audit(..., materialize=False)): "
                   "same numbers, for graphs whose separate form is too big to build; no pictures, no --measure",
                   {"action": "store_true"}, "materialize", operator.not_),
)


def add_analysis_options(parser: argparse.ArgumentParser) -> None:
    """The table's options, each saying which targets honour it unless all do."""
    group = parser.add_argument_group("analysis")
    frontends = cli_frontends()
    for option in ANALYSIS_OPTIONS:
        everyone = all(option.name in frontend.options for frontend in frontends)
        which = "" if everyone else f"{honoured_by(option.name)} targets: "
        group.add_argument(option.flag, help=which + option.help, **option.argparse)


def analysis_options(args: argparse.Namespace | None = None) -> dict[str, Any]:
    """The options by name, as given (all unset without ``args``)."""
    return {option.name: None if args is None else getattr(args, option.name) for option in ANALYSIS_OPTIONS}


def honoured_options(frontend: CliFrontend) -> list[str]:
    """The flags a front-end honours, in the table's order (its declaration is a set)."""
    return [option.flag for option in ANALYSIS_OPTIONS if option.name in frontend.options]


def honoured_by(name: str) -> str:
    """``JAX, PyTensor and PyMC``: the front-ends that honour an option, as their declarations say."""
    owners = [frontend.name for frontend in cli_frontends() if name in frontend.options]
    return " and ".join(filter(None, [", ".join(owners[:-1]), owners[-1]]))


def check_options(frontend: CliFrontend, options: Mapping[str, Any], target: str) -> None:
    """Refuse, in one line, an option given that the target's front-end does not honour (0 is given)."""
    for option in ANALYSIS_OPTIONS:
        value = options[option.name]
        if value is None or value is False or option.name in frontend.options:
            continue
        raise UsageError(f"{option.flag} applies to {honoured_by(option.name)} targets only; "
                         f"{target} is a {frontend.name} target")


def audit_options(frontend: CliFrontend, options: Mapping[str, Any]) -> tuple[AuditOptions, dict[str, Any]]:
    """The options given, made into the one :class:`AuditOptions` every front-end's audit takes (``--repeats``
    unset: the front-end's default), and the options given that are the front-end's own."""
    fields: dict[str, Any] = {"repeats": frontend.repeats}
    own: dict[str, Any] = {}
    for option in ANALYSIS_OPTIONS:
        given = options[option.name]
        if given is None or given is False:
            continue
        if option.field is None:
            own[option.name] = given
        else:
            fields[option.field] = option.value(given)
    try:
        return AuditOptions(**fields), own
    except ValueError as exc:
        raise UsageError(str(exc).removeprefix("audit: ")) from exc
