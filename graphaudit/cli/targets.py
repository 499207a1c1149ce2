"""A TARGET: a built-in example's name, or ``path/to/file.py:function`` whose result a front-end recognises.

What each front-end takes, and a target of each for ``--help``, are read from the front-ends'
declarations (``CliFrontend``, listed by :func:`graphaudit.frontends.cli_frontends`): a new
front-end edits nothing here.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import inspect
import re
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from graphaudit.cli.examples import EXAMPLES, example_sizes
from graphaudit.cli.options import audit_options, honoured_options
from graphaudit.cli.usage import UsageError
from graphaudit.analysis.report import Report
from graphaudit.errors import GraphauditError, MissingExtraError
from graphaudit.frontends import cli_frontends, nodes
from graphaudit.frontends.common import CliFrontend, TargetError, a_type


def frontend_examples(indent: str = "  ") -> list[str]:
    """One target per front-end, from its declaration: what --help shows a newcomer."""
    frontends = cli_frontends()
    width = max(len(frontend.name) for frontend in frontends)
    return [f"{indent}{frontend.name:<{width}}  graphaudit audit {frontend.example}" for frontend in frontends]


def frontend_returns() -> list[str]:
    """What a target function returns for each front-end, in the order they are asked, and the options each honours."""
    lines = []
    for frontend in cli_frontends():
        lines += textwrap.wrap(f"{frontend.name}: {frontend.returns}", width=79, initial_indent="  ",
                               subsequent_indent="      ", break_on_hyphens=False)
        lines += textwrap.wrap(f"options: {', '.join(honoured_options(frontend))}", width=79,
                               initial_indent="      ", subsequent_indent="      ", break_on_hyphens=False)
    return lines


def load_target(args: argparse.Namespace) -> tuple[CliFrontend, Any]:
    """The front-end and its target, from an example name or ``path/to/file.py:function``."""
    target: str = args.target
    sizes = example_sizes(args, target)
    if target in EXAMPLES:
        model = EXAMPLES[target].build(**sizes)
        feed = model.make_feed() if args.measure else None
        return nodes.CLI, nodes.NodesTarget(model.loss, model.params, feed, target)
    path, name = split_target(target, choices=", ".join(EXAMPLES))
    function = load_function(path, name)
    with user_code(target, path):
        result = function()
    return recognise(result, target)


def split_target(target: str, choices: str) -> tuple[Path, str]:
    """``path/to/file.py:function`` as (path, function name); anything else is one line naming ``choices``."""
    path_text, colon, name = target.rpartition(":")
    if not colon:
        if target.endswith(".py"):
            raise UsageError(f"name the function too: {target}:FUNCTION")
        raise UsageError(f"unknown example {target!r}: choose from {choices}, or give path/to/file.py:function")
    if not path_text or not name:
        raise UsageError(f"bad target {target!r}: expected path/to/file.py:function")
    return Path(path_text), name


def load_function(path: Path, name: str) -> Callable[..., Any]:
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
        with user_code(f"importing {path}", path):
            spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)
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


@contextlib.contextmanager
def user_code(what: str, path: Path) -> Iterator[None]:
    """Run the user's code: its failure is one line, and a framework it could not import names the extra."""
    try:
        yield
    except Exception as exc:
        if isinstance(exc, SyntaxError):
            where = f", line {exc.lineno}" if exc.lineno else ""
            raise UsageError(f"syntax error in {exc.filename or path}{where}: {exc.msg}") from exc
        missing = getattr(exc, "name", None) if isinstance(exc, ImportError) else None
        for frontend in cli_frontends():
            if missing and frontend.module and missing.split(".")[0] == frontend.module:
                raise MissingExtraError(f"{path} imports {frontend.module}, which is not installed: "
                                        f"pip install 'graphaudit[{frontend.extra}]' ({exc})") from exc
        raise UsageError(f"{what} raised {type(exc).__name__}: {exc} (--traceback shows where)") from exc


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


def audit_target(frontend: CliFrontend, target: Any, options: Mapping[str, Any], name: str) -> Report:
    """Audit a recognised target with the options given; a failure inside the framework in one line."""
    settings, own = audit_options(frontend, options)
    with failures_in(frontend.name, name):
        return frontend.audit(target, settings, own)


@contextlib.contextmanager
def failures_in(framework: str, target_name: str) -> Iterator[None]:
    """A framework's own failure on a target (bad arguments, a trace or compile that fails) as one
    UsageError line; graphaudit's own errors and a missing framework pass through as they are."""
    try:
        yield
    except TargetError as exc:  # the front-end's own one line
        raise UsageError(str(exc)) from exc
    except (MissingExtraError, GraphauditError, UsageError):
        raise
    except Exception as exc:
        raise UsageError(f"auditing {target_name} with {framework} failed: {type(exc).__name__}: {exc}") from exc
