"""JAX's primitives as graphaudit ops: the table of how each one counts, and how it runs.

Each primitive is registered as ``jax.<primitive>`` the first time an importer meets it,
with its row of :data:`TABLE`: its kind and FLOP rule (a primitive with no row is
reported as having no cost rule, never dropped). Every imported node runs through JAX
itself: :func:`bind` hands its primitive the input arrays and its params back.

JAX's random draws are pure functions of their key (threefry, ``random_bits``): the same
key gives the same bits, so the masks of separate traces merge like any pure op. A
primitive is impure (never merged) only when it keeps hidden state (:data:`STATEFUL`:
XLA's ``rng_uniform``) or when the equation that first brings it has side effects
(callbacks, ordered effects, I/O).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from graphaudit.core.describe import shape_text
from graphaudit.frontends.common import ATTR_OUTPUT, ImportedOp, Opaque, OpTable
from graphaudit.frontends.jax.equivalents import SAME_AS, SWAPPED
from graphaudit.core.graph import Node
from graphaudit.core.ops import elementwise_cost, no_flops, reduction_cost

# Calls whose sub-jaxpr is inlined (the key of the sub-jaxpr in the equation's params).
INLINED = {
    "jit": "jaxpr",
    "pjit": "jaxpr",
    "closed_call": "call_jaxpr",
    "core_call": "call_jaxpr",
    "custom_jvp_call": "call_jaxpr",
    "custom_vjp_call": "call_jaxpr",
    "custom_vjp_call_jaxpr": "fun_jaxpr",
    "remat": "jaxpr",
    "remat2": "jaxpr",
    "checkpoint": "jaxpr",
}
ATTR_REMAT = "remat"  # graphaudit's attr on what jax.checkpoint recomputes (JAX's params never hold it)
# graphaudit's attrs on a loop imported whole: what its body costs, all steps (FLOPs, those of its
# products), and which bound they are when they are not a count (:mod:`.loops`)
ATTR_LOOP_FLOPS, ATTR_LOOP_MATMUL_FLOPS, ATTR_LOOP_BOUND = "loop_flops", "loop_matmul_flops", "loop_bound"
GRAPHAUDIT_ATTRS = frozenset({ATTR_OUTPUT, ATTR_REMAT, ATTR_LOOP_FLOPS, ATTR_LOOP_MATMUL_FLOPS, ATTR_LOOP_BOUND})
LOOP_OUTPUT = "loop_output"  # the op of one result of a loop imported whole (:mod:`.loops`)


# --- cost rules --------------------------------------------------------------------------


def dot_general_flops(node: Node) -> int:
    """``2 * out.size * K``: one multiply-add per output element and contracted index."""
    (lhs_contracting, _), _ = node.attr("dimension_numbers")
    lhs = node.inputs[0]
    return 2 * node.size * math.prod(lhs.shape[d] for d in lhs_contracting)


def dot_general_text(node: Node) -> str:
    """The contraction as it is: ``64x32 @ 32x16`` for a plain product, a transposed matrix in
    parentheses (``(64x5)ᵀ @ 64x3``), else the dimension numbers: ``2x3x4 · 2x4x5 over 2·1, batch 0·0``."""
    (lhs_contracting, rhs_contracting), (lhs_batch, rhs_batch) = node.attr("dimension_numbers")
    lhs, rhs = node.inputs
    if len(lhs.shape) == len(rhs.shape) == 2 and len(lhs_contracting) == 1 and not lhs_batch:
        left = f"({shape_text(lhs.shape)})ᵀ" if tuple(lhs_contracting) == (0,) else shape_text(lhs.shape)
        right = f"({shape_text(rhs.shape)})ᵀ" if tuple(rhs_contracting) == (1,) else shape_text(rhs.shape)
        return f"{left} @ {right}"

    def dims(left: Sequence[int], right: Sequence[int]) -> str:
        return f"{','.join(map(str, left)) or '-'}·{','.join(map(str, right)) or '-'}"

    text = f"{shape_text(lhs.shape)} · {shape_text(rhs.shape)} over {dims(lhs_contracting, rhs_contracting)}"
    return text + (f", batch {dims(lhs_batch, rhs_batch)}" if lhs_batch else "")


EFFECTS = "[effects]"  # the name of a primitive's equations that have side effects where it has none of its own


def loop_text(node: Node) -> str:
    """What a loop kept whole runs: ``scan 12 steps``, ``cond 2 branches``, ``while`` (with side effects too)."""
    op = node.op.removeprefix(TABLE.prefix).removesuffix(EFFECTS)
    if op == "scan":
        return f"scan {node.attr('length')} steps"
    if op == "cond":
        return f"cond {len(node.attr('branches').value)} branches"
    return "while, trip count unknown"


def conv_flops(node: Node) -> int:
    """``2 * out.size * (kernel elements per output feature)``: what each output element sums."""
    rhs = node.inputs[1]
    out_features = rhs.shape[node.attr("dimension_numbers").rhs_spec[0]]
    return 2 * node.size * (rhs.size // out_features)


def window_flops(node: Node) -> int:
    """``out.size * window``: each output element of a pooling combines the elements of its window
    (padding included), as a reduction costs one FLOP per element it reads."""
    return node.size * math.prod(node.attr("window_dimensions"))


def select_and_scatter_flops(node: Node) -> int:
    """``source.size * window``: max pooling's backward picks one element of each window (a
    comparison per element) and adds the window's cotangent to it."""
    return node.inputs[0].size * math.prod(node.attr("window_dimensions"))


def loop_flops(node: Node) -> int:
    """A loop imported whole: the FLOPs its importer counted in its body, times its steps."""
    return node.attr(ATTR_LOOP_FLOPS)


def loop_matmul_flops(node: Node) -> int:
    """A loop imported whole: the FLOPs of the products in its body, times its steps."""
    return node.attr(ATTR_LOOP_MATMUL_FLOPS)


def loop_bound(node: Node) -> str | None:
    """A loop imported whole: which bound its figures are (a cond's costliest branch: upper), None for a count."""
    return node.attr(ATTR_LOOP_BOUND, None)


def scatter_flops(node: Node) -> int:
    """One FLOP per update element (each is combined into the operand)."""
    return node.inputs[2].size


# --- the table ---------------------------------------------------------------------------

ELEMENTWISE = """abs acos acosh add add_any and asin asinh atan atan2 atanh cbrt ceil clamp complex conj cos cosh
digamma div eq erf erf_inv erfc exp exp2 expm1 floor ge gt igamma igammac imag integer_pow is_finite le lgamma log
log1p logistic lt max min mul ne neg nextafter not or polygamma population_count pow real rem round rsqrt
select_n shift_left shift_right_arithmetic shift_right_logical sign sin sinh sqrt square sub tan tanh xor""".split()
REDUCTIONS = """argmax argmin cumlogsumexp cummax cummin cumprod cumsum reduce_and reduce_max reduce_min reduce_or
reduce_prod reduce_sum reduce_xor""".split()
DATA = """bitcast_convert_type broadcast_in_dim concatenate convert_element_type copy copy_p dynamic_slice
dynamic_update_slice expand_dims gather optimization_barrier pad random_unwrap random_wrap reduce_precision reshape
rev scatter sharding_constraint slice split squeeze stop_gradient transpose""".split()
SOURCES = "empty empty2 iota".split()
LOOPS = "scan cond while".split()  # imported with their bodies (:mod:`.loops`); a row for those kept whole
WINDOWED = "reduce_window reduce_window_max reduce_window_min reduce_window_sum select_and_gather_add".split()
RANDOM = "random_bits random_fold_in random_seed random_split rng_bit_generator rng_uniform threefry2x32".split()
STATEFUL = frozenset({"rng_uniform"})  # draws from XLA's hidden generator state: two calls differ
SCATTERS = "scatter-add scatter_add scatter-mul scatter_mul scatter-min scatter_min scatter-max scatter_max".split()
# Data movement whose result is a view of its operand (numpy would not copy): no bytes written.
VIEWS = frozenset("""broadcast_in_dim expand_dims optimization_barrier reshape sharding_constraint slice squeeze
stop_gradient transpose""".split())

PRIMITIVES: dict[str, Any] = {}  # op name -> the JAX primitive it binds


def jax_params(node: Node) -> dict[str, Any]:
    """The JAX params of an imported node: its attrs, opaque ones unwrapped, graphaudit's own left out."""
    return {k: v.value if isinstance(v, Opaque) else v for k, v in node.attrs if k not in GRAPHAUDIT_ATTRS}


def bind(node: Node, *values: Any) -> Any:
    """Bind an imported node's primitive to ``values`` (arrays, or tracers inside a ``jit``): the node's result.

    A loop imported whole gives the tuple of its results, and its ``loop_output`` nodes pick one.
    """
    if node.op == TABLE.prefix + LOOP_OUTPUT:
        results = values[0]
        return (results[()] if isinstance(results, np.ndarray) else results)[node.attr(ATTR_OUTPUT)]
    primitive = PRIMITIVES[node.op]
    result = primitive.bind(*values, **jax_params(node))
    if not primitive.multiple_results:
        return result
    output = node.attr(ATTR_OUTPUT, None)
    return tuple(result) if output is None else result[output]


def _bind_impl(node: Node, *arrays: np.ndarray) -> np.ndarray:
    """Evaluate one imported node with JAX itself (eagerly): how the core ``evaluate`` runs it.

    A loop imported whole is one value holding the tuple of its results (a 0-d object array).
    """
    result = bind(node, *arrays)
    if not isinstance(result, tuple):
        return np.asarray(result)
    whole = np.empty((), dtype=object)
    whole[()] = result
    return whole


ROWS = {  # how each primitive counts
    **{p: ImportedOp("elementwise", elementwise_cost) for p in ELEMENTWISE},
    **{p: ImportedOp("reduction", reduction_cost) for p in REDUCTIONS},
    **{p: ImportedOp("data", no_flops, view=p in VIEWS) for p in DATA},
    **{p: ImportedOp("source", no_flops) for p in SOURCES},
    **{p: ImportedOp("random", elementwise_cost) for p in RANDOM},
    **{p: ImportedOp("reduction", window_flops) for p in WINDOWED},
    "select_and_scatter_add": ImportedOp("data", select_and_scatter_flops),
    "dot_general": ImportedOp("matmul", dot_general_flops, operand_text=dot_general_text),
    "conv_general_dilated": ImportedOp("matmul", conv_flops),
    **{p: ImportedOp("data", scatter_flops) for p in SCATTERS},
    **{p: ImportedOp("loop", loop_flops, view=True, operand_text=loop_text, matmul_cost=loop_matmul_flops,
                     bound=loop_bound) for p in LOOPS},  # its outputs write
    LOOP_OUTPUT: ImportedOp("data", no_flops),
}
# ... with the forms semantic merging reads (which primitives are graphaudit's ops in disguise).
TABLE = OpTable(
    "jax.",
    {key: row._replace(same_as=SAME_AS.get(key), swapped=SWAPPED.get(key)) for key, row in ROWS.items()},
    fallback_impl=_bind_impl,
)


def op_name(primitive: Any, effectful: bool) -> str:
    """``jax.<primitive>``, registered with its table row the first time it is seen (stateful
    draws as impure: see :meth:`OpTable.op_name`). An equation with side effects whose primitive
    has none of its own is ``jax.<primitive>[effects]``, impure: its purity is part of its name, so
    that one process can import a primitive pure in one program and effectful in the next."""
    key = primitive.name
    stateful = key in STATEFUL
    variant = key + EFFECTS if effectful and not stateful else key
    doc = f"JAX primitive {key!r}" + ("" if TABLE.row(key).cost is not None else " (no cost rule)")
    name = TABLE.op_name(variant, pure=not (stateful or effectful), row=TABLE.row(key), doc=doc)
    PRIMITIVES.setdefault(name, primitive)
    return name
