"""What a front-end declares to the command line: how a target function's result reaches it.

Each front-end declares one :class:`CliFrontend` (its name, what its targets return, the
options it honours, how to recognise and audit a target); the command line reads these
declarations and restates none of them, so a new front-end edits no CLI file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from graphaudit.analysis.report import Report
from graphaudit.frontends.common.driver import AuditOptions


def a_type(value: Any) -> str:
    """``an int``, ``a tuple``: the type of ``value`` with its article, for one-line errors."""
    type_name = type(value).__name__
    return ("an " if type_name[:1].lower() in "aeiou" else "a ") + type_name


class TargetError(ValueError):
    """A command-line target that a front-end cannot audit, said in one line that names the culprit."""


def target_wrt(wrt: Any, kind: type, noun: str, name: str, returns: str) -> Any:
    """A target's ``wrt``: one ``kind`` as it is, or a non-empty list of them; else a TargetError.

    ``noun`` names one item (``"graphaudit Node"``), ``returns`` what the target should return.
    """
    if isinstance(wrt, (tuple, list)):
        bad = [i for i, item in enumerate(wrt) if not isinstance(item, kind)]
        if bad:
            raise TargetError(f"{name}: wrt[{bad[0]}] is {a_type(wrt[bad[0]])}, not a {noun}")
        if not wrt:
            raise TargetError(f"{name}: wrt is empty; return at least one {noun} to differentiate with respect to")
        return list(wrt)
    if not isinstance(wrt, kind):
        raise TargetError(f"{name} must return {returns}: wrt is {a_type(wrt)}, not a {noun} or a list of them")
    return wrt


@dataclasses.dataclass(frozen=True)
class CliFrontend:
    """How ``graphaudit audit file.py:function`` reaches a front-end.

    The command line calls the target function, then asks each front-end in turn whether
    it ``recognise``\\ s what the function returned; the first that does ``audit``\\ s it with
    the command line's analysis options, which the command line makes into one
    :class:`AuditOptions`. An option given that the front-end does not list in ``options`` is
    refused with one line, never silently ignored. ``--help`` shows each front-end's ``example``.
    """

    name: str  # how messages name the front-end's targets: "JAX"
    returns: str  # what a target function returns for it: "(fn, args, argnums) for a JAX function"
    options: frozenset[str]  # the analysis options it honours: measure, repeats, commutative, count, xla, ...
    # what the function returned -> this front-end's target; None: not this front-end's;
    # TargetError: this front-end's, but malformed
    recognise: Callable[[Any, str], Any | None]
    # audit the target with the options, and the options given that are the front-end's own (JAX's group)
    audit: Callable[[Any, AuditOptions, Mapping[str, Any]], Report]
    example: str  # a target of it in this repository, for --help: "examples/jax_seed_mlp.py:target"
    # the framework's module and the graphaudit extra that installs it ("" for graphaudit's own graphs):
    # a target file that cannot import it is told which extra to install
    module: str = ""
    extra: str = ""
    repeats: int = 5  # runs (builds) of each form that are timed when --repeats is not given
