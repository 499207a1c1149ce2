"""Front-ends: turn a framework's gradient graphs into graphaudit nodes and audit them.

Each front-end is a package (``graphaudit.frontends.jax``, ``graphaudit.frontends.pytensor``,
``graphaudit.frontends.torch``)
of a table, an importer and an audit over :mod:`graphaudit.frontends.common`, and imports
its framework lazily, through :func:`require`, so that graphaudit itself never needs the
framework installed. :mod:`graphaudit.frontends.nodes` is graphaudit's own graphs, for the
command line. A front-end that lives outside graphaudit declares its ``CliFrontend`` under the
entry point group ``graphaudit.frontends`` (:data:`ENTRY_POINT_GROUP`), and the command line finds it.
"""

from __future__ import annotations

import importlib
from importlib import metadata
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
# The entry point group of front-ends installed apart from graphaudit: each entry names a CliFrontend, as a
# package's pyproject.toml declares it: [project.entry-points."graphaudit.frontends"] toy = "graphaudit_toy:CLI"
ENTRY_POINT_GROUP = "graphaudit.frontends"


class MissingFrameworkError(MissingExtraError):
    """The framework a front-end needs is not installed (the message names the extra that installs it)."""


class FrontendEntryPointError(GraphauditError):
    """An installed front-end's entry point that does not load, or names something other than a CliFrontend."""


def require(module: str, extra: str) -> ModuleType:
    """Import ``module``, or explain which graphaudit extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingFrameworkError(
            f"this graphaudit front-end needs {module!r}, which is not installed: "
            f"pip install 'graphaudit[{extra}]' ({error})"
        ) from error


def cli_frontends() -> list:
    """The front-ends the command line asks, in order: the ``CLI`` of each of :data:`CLI_FRONTENDS`, then the
    ``CliFrontend`` of each entry point in :data:`ENTRY_POINT_GROUP`, by entry point name (no framework of
    graphaudit's own is imported by this; an installed front-end's module is, and should import its lazily)."""
    built_in = [importlib.import_module(name).CLI for name in CLI_FRONTENDS]
    entries = sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda entry: (entry.name, entry.value))
    return built_in + [_installed_frontend(entry) for entry in entries]


def _installed_frontend(entry: metadata.EntryPoint):
    """What an entry point names, checked to be a CliFrontend; else one line naming the entry point."""
    from graphaudit.frontends.common import CliFrontend, a_type

    source = f" of {entry.dist.name} {entry.dist.version}" if entry.dist is not None else ""
    where = f"the front-end entry point {entry.name} = {entry.value} ({ENTRY_POINT_GROUP}{source})"
    try:
        frontend = entry.load()
    except Exception as exc:
        raise FrontendEntryPointError(f"{where} does not load: {type(exc).__name__}: {exc}") from exc
    if not isinstance(frontend, CliFrontend):
        raise FrontendEntryPointError(f"{where} is {a_type(frontend)}, not a graphaudit.frontends.common.CliFrontend")
    return frontend
