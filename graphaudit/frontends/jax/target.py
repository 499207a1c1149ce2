"""A JAX target of the command line: ``(fn, args, argnums)``, recognised and audited."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from graphaudit.frontends.common import AuditOptions, CliFrontend, TargetError, a_type, audit_forms
from graphaudit.analysis.report import Report
from graphaudit.frontends.jax.audit import JaxForms


class JaxTarget(NamedTuple):
    """What a JAX target function returns: ``fn(*args)`` is a scalar; differentiate ``argnums``."""

    fn: Callable[..., Any]
    args: tuple
    argnums: int | tuple[int, ...]
    name: str  # the target as the command line names it: path/to/file.py:function


def recognise(result: Any, name: str) -> JaxTarget | None:
    """``result`` as a target when it is ``(fn, args, argnums)`` with ``fn`` callable; None otherwise.

    Checks ``args`` is a tuple or list and ``argnums`` an int or a non-empty tuple of ints.
    """
    if not isinstance(result, (tuple, list)) or len(result) != 3 or not callable(result[0]):
        return None
    fn, arguments, argnums = result
    if not isinstance(arguments, (tuple, list)):
        raise TargetError(f"{name} returned (fn, args, argnums), but args is {a_type(arguments)}, not a tuple or list")
    if isinstance(argnums, (tuple, list)):
        if not argnums or not all(isinstance(a, int) and not isinstance(a, bool) for a in argnums):
            raise TargetError(f"{name}: argnums must be an int or a non-empty tuple of ints, got {argnums!r}")
        argnums = tuple(argnums)
    elif not isinstance(argnums, int) or isinstance(argnums, bool):
        raise TargetError(f"{name}: argnums must be an int or a non-empty tuple of ints, got {a_type(argnums)}")
    return JaxTarget(fn, tuple(arguments), argnums, name)


def audit_target(target: JaxTarget, options: AuditOptions, own: Mapping[str, Any]) -> Report:
    """:func:`audit` of the target with the command line's options (``group`` is JAX's own)."""
    return audit_forms(JaxForms(target.fn, target.args, target.argnums, group=own.get("group")), options)


CLI = CliFrontend(
    name="JAX",
    returns="(fn, args, argnums) for a JAX function",
    options=frozenset({"xla", "measure", "repeats", "commutative", "semantic", "loop_budget", "group", "count"}),
    recognise=recognise,
    audit=audit_target,
    example="examples/jax_seed_mlp.py:target",
    module="jax",
    extra="jax",
)
