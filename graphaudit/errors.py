"""The errors graphaudit raises on bad input. Each names the culprit (shape, op, node)."""


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
