"""Front-ends: turn a framework's gradient graphs into graphaudit nodes and audit them.

Each front-end lives in its own module (``graphaudit.frontends.jax``,
``graphaudit.frontends.pytensor``) and imports its framework lazily, through
:func:`require`, so that graphaudit itself never needs the framework installed.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingFrameworkError(ImportError):
    """The framework a front-end needs is not installed (the message says how to get it)."""


def require(module: str, extra: str) -> ModuleType:
    """Import ``module``, or explain which graphaudit extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingFrameworkError(
            f"this graphaudit front-end needs {module!r}, which is not installed: "
            f"pip install 'graphaudit[{extra}]' ({error})"
        ) from error
