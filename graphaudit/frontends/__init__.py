"""Front-ends: turn a framework's gradient graphs into graphaudit nodes and audit them.

Each front-end is a package (``graphaudit.frontends.jax``, ``graphaudit.frontends.pytensor``,
``graphaudit.frontends.torch``)
of a table, an importer and an audit over :mod:`graphaudit.frontends.common`, and imports
its framework lazily, through :func:`require`, so that graphaudit itself never needs the
framework installed. :mod:`graphaudit.frontends.nodes` is graphaudit's own graphs, for the
command line.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from types import ModuleType

from graphaudit.errors import GraphauditError, MissingExtraError

# The front-ends the command line asks, in order, whether they recognise a target: each
# module has a ``CLI`` (:class:`graphaudit.frontends.common.CliFrontend`). graphaudit's own
# graphs come last: they explain what a target that no one recognised should return.
CLI_FRONTENDS = (
    "graphaudit.frontends.torch",  # before JAX: (loss_fn, model, x) has the length of JAX's (fn, args, argnums)
    "graphaudit.frontends.jax",
    "graphaudit.frontends.pymc",  # before PyTensor: a pm.Model is not a PyTensor variable, but say what it is
    "graphaudit.frontends.pytensor",
    "graphaudit.frontends.nodes",
)


class MissingFrameworkError(MissingExtraError):
    """The framework a front-end needs is not installed (the message names the extra that installs it)."""


class FrontendEntryPointError(GraphauditError):
    """A front-end's entry point that does not load, or whose module's ``CLI`` is not a CliFrontend."""


def require(module: str, extra: str) -> ModuleType:
    """Import ``module``, or explain which graphaudit extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingFrameworkError(
            f"this graphaudit front-end needs {module!r}, which is not installed: "
            f"pip install 'graphaudit[{extra}]' ({error})"
        ) from error


ENTRY_POINTS = "graphaudit.frontends"  # the entry-point group a front-end in another package declares itself in


def cli_frontends() -> list:
    """The ``CLI`` objects of the front-ends, in the order the command line asks them: graphaudit's
    (:data:`CLI_FRONTENDS`), those other packages declare in the ``graphaudit.frontends`` entry-point
    group (by name; each names a module with a ``CLI``), and graphaudit's own graphs last. No framework
    is imported by this."""
    *frameworks, own = CLI_FRONTENDS
    declared = sorted(importlib.metadata.entry_points(group=ENTRY_POINTS), key=lambda point: (point.name, point.value))
    return [importlib.import_module(name).CLI for name in frameworks] + [_declared(point) for point in declared] + \
        [importlib.import_module(own).CLI]


def _declared(point: importlib.metadata.EntryPoint):
    """The ``CLI`` of the module an entry point names, checked to be a CliFrontend; else one line naming it."""
    from graphaudit.frontends.common import CliFrontend, a_type

    source = f" of {point.dist.name} {point.dist.version}" if point.dist is not None else ""
    where = f"the front-end entry point {point.name} = {point.value} ({ENTRY_POINTS}{source})"
    try:
        module = point.load()
    except Exception as exc:
        raise FrontendEntryPointError(f"{where} does not load: {type(exc).__name__}: {exc}") from exc
    frontend = getattr(module, "CLI", None)
    if not isinstance(frontend, CliFrontend):
        raise FrontendEntryPointError(f"{where}: its CLI is {a_type(frontend)}, not a graphaudit.frontends.common."
                                      "CliFrontend")
    return frontend
