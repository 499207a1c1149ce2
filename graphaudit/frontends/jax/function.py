"""The user's own derivative calls: :func:`audit_function` of a function that calls ``jax.grad`` inside.

Scientific-ML code (a PINN's u_t, u_x, u_xx; an interatomic potential's forces and stress;
a MAML inner step) is made of the user's grad calls, not of one call per parameter. Each
call is a grad call of the report, named by the line that made it (``mlip.py:14``, then
``mlip.py:14#2`` for its next pass in a Python loop), so the duplicated work reads by call,
by forward node and by top subexpression as for the separate/joint question.

How the calls are seen: a jaxpr does not say which ``jax.grad`` made an equation. Its name
stack says which transformation did (``transpose(jvp(...))`` is a backward pass), and a
``jax.named_scope`` the user's code was in is kept in it. So while ``fn`` is traced,
``jax.grad``, ``jax.value_and_grad``, ``jax.jacrev`` and ``jax.vjp`` are wrapped: each call
of the function they return (of ``jax.vjp`` and its pullback) runs inside the scope
``graphaudit_callK``, and an equation belongs to call K when a ``transpose(`` follows that
scope in its name stack: the outermost such call (a grad of a grad's backward pass is the
outer call's work; the inner backward pass, traced inside the outer call's forward, is the
inner call's). Everything else is forward. The trace runs under ``jax.disable_jit()`` so
that calls inside a jitted helper are seen too. The other choice, reading the transposed
equations' tracebacks, cannot work: they point at the forward line they differentiate, not
at the grad call. A name bound before the trace (``from jax import grad``) is not wrapped:
the report's section says how many calls it saw, and names no call it did not.
"""

from __future__ import annotations

import contextlib
import functools
import re
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TypedDict

from graphaudit.analysis.audit import audit_graph
from graphaudit.analysis.report import Report
from graphaudit.core.graph import GradCall
from graphaudit.frontends import require
from graphaudit.frontends.common import FrameworkSection, attach_section
from graphaudit.frontends.common.calls import UserCall, UserCalls, user_calls_data, user_calls_lines
from graphaudit.frontends.jax.importer import count_equations, from_jaxpr
from graphaudit.frontends.jax.sources import EquationSources

SCOPE = "graphaudit_call"
_SCOPES = re.compile(rf"{SCOPE}(\d+)")
TRANSFORMS = ("grad", "value_and_grad", "jacrev")  # jax.X(fun, ...) returns a function whose calls are grad calls


class _Calls(UserCalls):
    """The user's grad calls met while tracing, in order; call k runs in the name scope ``graphaudit_call<k>``.

    Two calls of one function on the very same arguments (the same Python function object, the
    same traced values) differentiate one output: they share a ``differentiates`` key."""

    def __init__(self) -> None:
        super().__init__()
        self._outputs: dict[tuple[int, ...], int] = {}  # (function, argument leaves) by identity -> its number
        self._kept: list[Any] = []  # what those identities are of, alive until the trace ends

    def new(self, kind: str, frame: Any, fun: Any, arguments: Any) -> int:
        """A new call of ``fun`` on ``arguments`` made from ``frame``; its number."""
        call = self.named(kind, frame)
        leaves = require("jax", "jax").tree_util.tree_leaves(arguments)
        self._kept.append((fun, leaves))
        identity = (id(fun), *map(id, leaves))
        call.differentiates = (self._outputs.setdefault(identity, len(self._outputs) + 1),)
        return len(self.calls) - 1

    def traced_in(self, name_stack: str) -> UserCall | None:
        """The outermost call whose scope an equation was traced in (forward or backward)."""
        found = _SCOPES.search(name_stack)
        return self.calls[int(found.group(1))] if found else None

    def call_of(self, name_stack: str) -> GradCall | None:
        """The call whose backward pass made an equation with ``name_stack``: the outermost scope followed
        by a ``transpose(`` before the next scope; None for forward work."""
        found = list(_SCOPES.finditer(name_stack))
        for position, match in enumerate(found):
            end = found[position + 1].start() if position + 1 < len(found) else len(name_stack)
            if "transpose(" in name_stack[match.end():end]:
                return self.calls[int(match.group(1))]
        return None


@contextlib.contextmanager
def _wrapped(jax: Any, calls: _Calls) -> Iterator[None]:
    """``jax.grad``, ``jax.value_and_grad``, ``jax.jacrev`` and ``jax.vjp`` running each call in its own scope."""

    def transform(name: str, original: Callable) -> Callable:
        @functools.wraps(original)
        def wrapper(fun: Callable, *args: Any, **kwargs: Any) -> Callable:
            transformed = original(fun, *args, **kwargs)

            @functools.wraps(transformed)
            def called(*call_args: Any, **call_kwargs: Any) -> Any:
                number = calls.new(f"jax.{name}", sys._getframe(1), fun, call_args)
                with jax.named_scope(f"{SCOPE}{number}"):
                    return transformed(*call_args, **call_kwargs)

            return called

        return wrapper

    def vjp(fun: Callable, *primals: Any, **kwargs: Any) -> Any:
        number = calls.new("jax.vjp", sys._getframe(1), fun, primals)
        with jax.named_scope(f"{SCOPE}{number}"):
            out, pullback, *aux = originals["vjp"](fun, *primals, **kwargs)

        def scoped_pullback(*cotangents: Any) -> Any:
            with jax.named_scope(f"{SCOPE}{number}"):
                return pullback(*cotangents)

        return (out, scoped_pullback, *aux)

    originals = {name: getattr(jax, name) for name in (*TRANSFORMS, "vjp")}
    for name in TRANSFORMS:
        setattr(jax, name, transform(name, originals[name]))
    jax.vjp = functools.wraps(originals["vjp"])(vjp)
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(jax, name, original)


class FunctionSectionData(TypedDict):
    name: str
    version: str
    user_calls: list[dict[str, Any]]  # kind, where, source (file, line, code) or None
    jaxpr_equations: int
    trace_seconds: float
    import_seconds: float


class JaxFunctionSection(FrameworkSection):
    """JAX's part of an :func:`audit_function` report: the user's grad calls seen, the trace's size and times."""

    schema = FunctionSectionData

    def lines(self) -> list[str]:
        return user_calls_lines(self["user_calls"], "JAX: fn made no jax.grad / jax.value_and_grad / jax.jacrev / "
                                "jax.vjp call that graphaudit saw (a name bound before the trace, `from jax import "
                                "grad`, is not seen): all work counts as forward")

    def closing_lines(self) -> list[str]:
        return ["", f"JAX {self['version']}: one trace of fn ({self['jaxpr_equations']} primitive equations)"]


def audit_function(fn: Callable, *args: Any, commutative: bool = False) -> Report:
    """What merging removes from ``fn(*args)``, with each ``jax.grad``/``jax.vjp``/``jax.jacrev`` call that
    ``fn`` makes as a grad call of the report, named by its line (see the module docstring).

    ``fn`` returns arrays (any pytree); ``args`` are arrays or ``jax.ShapeDtypeStruct``. The report
    is :func:`graphaudit.audit_graph`'s (forms ``original`` and ``original_merged``), with rows'
    sources and a :class:`JaxFunctionSection` naming the calls.
    """
    jax = require("jax", "jax")
    if not callable(fn):
        raise TypeError(f"audit_function: fn must be a function, got {type(fn).__name__}")
    calls = _Calls()
    start = time.perf_counter()
    with _wrapped(jax, calls), jax.disable_jit():
        traced = jax.make_jaxpr(fn)(*args)
    trace_seconds = time.perf_counter() - start
    start = time.perf_counter()
    sources = EquationSources()
    outputs = from_jaxpr(traced, call_of=calls.call_of, traced_in=calls.traced_in, sources=sources)
    import_seconds = time.perf_counter() - start
    outputs = [node for node in outputs if not node.is_leaf or node.op != "constant"]
    if not outputs:
        raise ValueError("audit_function: fn returned no arrays computed from its arguments")
    report = audit_graph(outputs, commutative=commutative, sources=sources.sources)
    section = JaxFunctionSection(
        name="JAX", version=jax.__version__,
        user_calls=user_calls_data(calls.calls),
        jaxpr_equations=count_equations(traced), trace_seconds=trace_seconds, import_seconds=import_seconds)
    return attach_section(report, section)

