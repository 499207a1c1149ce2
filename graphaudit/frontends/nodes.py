"""graphaudit's own graphs as a command-line target: ``(cost, wrt)`` or ``(cost, wrt, feed)`` of nodes.

The built-in examples and any ``file.py:function`` that builds graphaudit nodes come
here; :func:`graphaudit.audit` does the work. The command line asks this front-end
last (:data:`graphaudit.frontends.CLI_FRONTENDS`), after those of the frameworks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from graphaudit.analysis.audit import audit
from graphaudit.frontends.common import AuditOptions, CliFrontend, TargetError, a_type, target_wrt
from graphaudit.core.graph import Node
from graphaudit.analysis.report import Report


class NodesTarget(NamedTuple):
    """What a target function returned: differentiate scalar ``cost`` w.r.t. ``wrt``; ``feed`` for ``--measure``."""

    cost: Node
    wrt: Node | list[Node]
    feed: Mapping | None
    name: str


def recognise(result: Any, name: str) -> NodesTarget | None:
    """``result`` as a target when it is a 2- or 3-tuple whose first item is a node; None otherwise."""
    if not isinstance(result, (tuple, list)) or len(result) not in (2, 3) or not isinstance(result[0], Node):
        return None
    cost, wrt, feed = (*result, None) if len(result) == 2 else result
    wrt = target_wrt(wrt, Node, "graphaudit Node", name, CLI.returns)
    if feed is not None and not isinstance(feed, Mapping):
        raise TargetError(f"{name}: feed is {a_type(feed)}, not a dict {{node: array}}")
    return NodesTarget(cost, wrt, feed, name)


def audit_target(target: NodesTarget, options: AuditOptions, own: Mapping[str, Any]) -> Report:
    """:func:`graphaudit.audit` of the target, with the command line's options."""
    if options.measure and target.feed is None:
        raise TargetError(
            f"--measure needs a feed: make {target.name} return (cost, wrt, feed), feed a dict {{node: array}}"
        )
    return audit(target.cost, target.wrt, measure=options.measure, feed=target.feed, commutative=options.commutative,
                 repeats=options.repeats, materialize=options.materialize, semantic=options.semantic)


CLI = CliFrontend(
    name="graphaudit graph",
    returns="(cost, wrt) or (cost, wrt, feed)",
    options=frozenset({"measure", "repeats", "commutative", "count", "semantic"}),
    recognise=recognise,
    audit=audit_target,
    example="seed_mlp",
)
