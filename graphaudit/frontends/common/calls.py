"""The user's own grad calls, as a front-end's ``audit_function`` sees them while it traces ``fn``.

Both front-ends that see them (PyTorch wraps ``torch.autograd.grad``; JAX wraps ``jax.grad``,
``value_and_grad``, ``jacrev`` and ``vjp``) name each call by the user's line that made it,
``file:line``, then ``file:line#2`` for its next pass in a Python loop, and list the calls
they saw in their report section the same way.
"""

from __future__ import annotations

from typing import Any

from graphaudit.core.graph import GradCall
from graphaudit.core.source import Source, user_frame


class UserCall(GradCall):
    """One grad call the user's code made: ``kind`` (``jax.grad``), ``where`` (``file:line``, ``#k`` for its
    k-th pass).

    ``differentiates`` is equal for two calls exactly when they differentiate equal outputs: one
    call over both calls' inputs does their shared work once (:mod:`graphaudit.analysis.call_advice`).
    ``traced`` holds the forward nodes a call traced inside itself (JAX re-traces the forward per
    call), which a joint call traces once."""

    __slots__ = ("kind", "where", "source", "differentiates", "traced")

    def __init__(self, kind: str, where: str, source: Source | None):
        super().__init__([where])
        self.kind, self.where, self.source = kind, where, source
        self.differentiates: tuple[int, ...] = ()
        self.traced: list = []

    @property
    def label(self) -> str:
        return f"{self.kind} at {self.where}"


class UserCalls:
    """The calls met while tracing, in order, each named by its line and pass."""

    def __init__(self) -> None:
        self.calls: list[UserCall] = []
        self._passes: dict[str, int] = {}

    def named(self, kind: str, frame: Any) -> UserCall:
        """A new call made from ``frame`` (or, from inside the framework, from the user's line around it)."""
        source = user_frame(frame)
        line = source.location if source is not None else "<unknown>"
        passes = self._passes[line] = self._passes.get(line, 0) + 1
        call = UserCall(kind, line if passes == 1 else f"{line}#{passes}", source)
        self.calls.append(call)
        return call


def user_calls_data(calls: list[UserCall]) -> list[dict]:
    """The calls as a section lists them: ``kind``, ``where``, ``source``."""
    return [{"kind": c.kind, "where": c.where, "source": c.source.to_dict() if c.source else None} for c in calls]


def user_calls_lines(calls: list[dict], none_seen: str) -> list[str]:
    """A section's lines listing the calls (``user_calls_data``), or ``none_seen`` when there are none."""
    if not calls:
        return ["", none_seen]
    lines = ["", f"the user's grad calls ({len(calls)}), as the rows name them:"]
    return lines + [f"  {c['kind']} at {c['where']}" + (f": {c['source']['code']}" if c["source"] else "")
                    for c in calls]
