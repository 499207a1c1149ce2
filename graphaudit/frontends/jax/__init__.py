"""The JAX front-end: import jaxprs as graphaudit nodes, audit ``jax.grad`` per parameter vs joint.

- :mod:`.ops`: the table of JAX primitives (kind, FLOP rule) and how an imported node runs;
- :mod:`.loops`: ``scan``, ``cond`` and ``while`` imported with their bodies (unrolled
  within a node budget, else whole) and costed as what they run;
- :mod:`.importer`: jaxprs to nodes (:func:`from_jaxpr`), imported graphs run in one
  ``jit`` (:func:`evaluate`);
- :mod:`.arguments`: the user's function as a function of its named array leaves
  (:func:`named_leaves`; ``has_aux``, static leaves, grouping into separate calls);
- :mod:`.compiled`: what XLA keeps (:func:`hlo_counts`) and the jitted run times;
- :mod:`.audit`: :func:`audit`, the report's :class:`JaxSection`, and how the command line
  reaches all this (:data:`CLI`);
- :mod:`.function`: :func:`audit_function`, the user's own ``jax.grad`` calls as grad calls.

JAX itself is imported on first use, never by importing this package.
"""

from graphaudit.frontends.common import Opaque, canonical_text, hashable_param
from graphaudit.frontends.jax.arguments import named_leaves
from graphaudit.frontends.jax.audit import audit
from graphaudit.frontends.jax.compiled import hlo_counts
from graphaudit.frontends.jax.function import audit_function
from graphaudit.frontends.jax.importer import count_equations, evaluate, from_jaxpr
from graphaudit.frontends.jax.loops import unrolled_size
from graphaudit.frontends.jax.section import JaxSection
from graphaudit.frontends.jax.target import CLI

__all__ = [
    "CLI",
    "JaxSection",
    "Opaque",
    "audit",
    "audit_function",
    "canonical_text",
    "count_equations",
    "evaluate",
    "from_jaxpr",
    "hashable_param",
    "hlo_counts",
    "named_leaves",
    "unrolled_size",
]
