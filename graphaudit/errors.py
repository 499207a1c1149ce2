"""The errors graphaudit raises on bad input. Each names the culprit (shape, op, node, value)."""

from __future__ import annotations

from typing import Any

REPR_LENGTH = 60  # a culprit's repr is cut beyond this: an error is one line


class GraphauditError(Exception):
    """Base class: every error graphaudit raises on purpose derives from it."""


class ShapeError(GraphauditError, ValueError):
    """Shapes that do not fit an op (the message names the op and every shape)."""


class UnknownOpError(GraphauditError, ValueError):
    """An op name that is not in the registry."""


class DisconnectedInputError(GraphauditError, ValueError):
    """A ``wrt`` node that the cost does not depend on."""


class EvaluationError(GraphauditError, RuntimeError):
    """A run-time failure while evaluating a node (missing feed, index out of range, ...)."""


class MissingExtraError(GraphauditError, ImportError):
    """An optional dependency is not installed: the message names the graphaudit extra that installs it
    (``pip install 'graphaudit[plots]'``). The command line says it in one line, exit code 2."""


def culprit(value: Any) -> str:
    """What an error says of a value the user passed: ``a str ('w1')``, ``an ndarray of shape (3, 4) float32``."""
    kind = type(value).__name__
    article = "an" if kind[:1].lower() in "aeiou" or kind.startswith("nd") else "a"  # "an ndarray"
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if isinstance(shape, tuple) and dtype is not None and not isinstance(value, (int, float, complex)):
        return f"{article} {kind} of shape {shape} {dtype}"
    text = repr(value)
    if len(text) > REPR_LENGTH:
        text = text[: REPR_LENGTH - 1] + "…"
    return f"{article} {kind} ({text})"
