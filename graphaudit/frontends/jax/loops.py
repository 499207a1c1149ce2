"""Control flow in jaxprs: ``scan``, ``cond`` and ``while`` imported with their bodies.

A loop is costed as what it runs. Within the node budget (:data:`DEFAULT_BUDGET`), a
``scan`` is *unrolled* for the analysis: its body is imported once per step, fed the
previous step's carry and its slice of the scanned inputs, so value numbering sees every
step and merges the steps that separate ``jax.grad`` traces repeat. Above the budget it is
imported *whole*: one node that stands for the loop (its attrs hold the body, so equal
loops over equal inputs merge as units), costed as its body's FLOPs times its length (its
matmul FLOPs likewise: the products in its body times its length), and one ``loop_output``
node per result.

A ``cond`` whose branch index is known at trace time (computed from constants only, as a
loop counter is once its scan is unrolled) is the taken branch, inlined. Otherwise it is
whole, costed as its costliest branch (its matmul FLOPs as the branch with the most): an
upper bound. A ``while`` is always whole: its trip count is not known before it runs, so
one iteration (body and predicate) is costed, a lower bound. A loop whole says which bound
its figures are (``Op.bound``, from its attrs: a scan over a body holding such a cond is an
upper bound too). Each loop met leaves a :class:`~graphaudit.frontends.common.loops.LoopRecord`
saying which way it was treated.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np

from graphaudit.analysis.cost import LOWER, UPPER, combined_bound
from graphaudit.core.evaluate import evaluate
from graphaudit.frontends import require
from graphaudit.frontends.common import ATTR_OUTPUT, DEFAULT_LOOP_BUDGET, Opaque, hashable_param, imported_node
from graphaudit.frontends.common.loops import LoopRecord, Treatment
from graphaudit.frontends.jax.ops import (
    ATTR_LOOP_BOUND, ATTR_LOOP_FLOPS, ATTR_LOOP_MATMUL_FLOPS, ATTR_REMAT, INLINED, LOOP_OUTPUT, TABLE, op_name)
from graphaudit.core.graph import Node, topological_order

DEFAULT_BUDGET = DEFAULT_LOOP_BUDGET
UNIT_DTYPE = np.dtype(object)  # a whole loop's node holds the tuple of its results

class BodyCost(NamedTuple):
    """What one run of a loop's body costs, or a loop whole: FLOPs, those of its products, and
    whether they are a bound (``"upper"``, ``"lower"``, ``"mixed"``; None: a count)."""

    flops: int
    matmul_flops: int
    bound: str | None


def unrolled_size(jaxpr: Any) -> int:
    """How many nodes importing ``jaxpr`` makes, at most, when every scan is unrolled: one per
    result of each equation, a scan's body once per step with a slice per scanned input and a
    stacking per result, a cond's largest branch."""
    jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
    total = 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name in INLINED and INLINED[name] in eqn.params:
            total += unrolled_size(eqn.params[INLINED[name]])
        elif name == "scan":
            carry = eqn.params["num_carry"]
            scanned = len(eqn.invars) - eqn.params["num_consts"] - carry + len(eqn.outvars) - carry
            total += eqn.params["length"] * (unrolled_size(eqn.params["jaxpr"]) + scanned)
        elif name == "cond":
            total += max(unrolled_size(branch) for branch in eqn.params["branches"])
        else:
            total += len(eqn.outvars)
    return total


def import_loop(importer: Any, eqn: Any, inputs: list[Node], backward: bool, remat: bool) -> list[Node]:
    """The nodes of a loop equation's results (one per outvar), imported as the module docstring says.

    ``importer`` is the :mod:`.importer`'s walker: ``run`` imports a sub-jaxpr, ``unroll`` says
    whether scans are unrolled, ``loops`` collects the records, ``body_cost`` costs a body
    imported whole, ``typed`` gives an abstract value's shape and dtype, ``call`` tags backward nodes.
    """
    name = eqn.primitive.name
    if name == "scan":
        length = eqn.params["length"]
        record = LoopRecord("scan", length, Treatment.UNROLLED if importer.unroll and length else Treatment.WHOLE,
                            _digest(eqn.params["jaxpr"]))
        importer.loops.append(record)
        if record.treatment == Treatment.UNROLLED:
            return _unrolled_scan(importer, eqn, inputs, backward, remat)
        body = importer.body_cost(eqn.params["jaxpr"])
        return _whole(importer, eqn, inputs, backward, remat,
                      BodyCost(length * body.flops, length * body.matmul_flops, body.bound))
    if name == "cond":
        branches = eqn.params["branches"]
        index = _known_value(inputs[0])
        digest = _digest(branches)
        if index is not None:
            importer.loops.append(LoopRecord("cond", len(branches), Treatment.TAKEN_BRANCH, digest))
            taken = branches[int(np.clip(index, 0, len(branches) - 1))]
            return importer.run(taken.jaxpr, taken.consts, inputs[1:], backward, remat)
        importer.loops.append(LoopRecord("cond", len(branches), Treatment.COSTLIEST_BRANCH, digest))
        costs = [importer.body_cost(branch) for branch in branches]
        return _whole(importer, eqn, inputs, backward, remat,
                      BodyCost(max(c.flops for c in costs), max(c.matmul_flops for c in costs),
                               combined_bound([UPPER, *(c.bound for c in costs)])))
    body, predicate = (importer.body_cost(eqn.params[key]) for key in ("body_jaxpr", "cond_jaxpr"))
    importer.loops.append(LoopRecord("while", None, Treatment.ONE_ITERATION,
                                     _digest((eqn.params["cond_jaxpr"], eqn.params["body_jaxpr"]))))
    return _whole(importer, eqn, inputs, backward, remat,
                  BodyCost(body.flops + predicate.flops, body.matmul_flops + predicate.matmul_flops,
                           combined_bound([LOWER, body.bound, predicate.bound])))


def _digest(value: Any) -> str:
    return Opaque(value).digest


# --- unrolling a scan ---------------------------------------------------------------------------


def _unrolled_scan(importer: Any, eqn: Any, inputs: list[Node], backward: bool, remat: bool) -> list[Node]:
    """The body imported once per step; scanned inputs sliced, per-step results stacked (by JAX's own ops)."""
    params = eqn.params
    length, body = params["length"], params["jaxpr"]
    consts_end = params["num_consts"]
    carry_end = consts_end + params["num_carry"]
    consts, carry, xs = inputs[:consts_end], inputs[consts_end:carry_end], inputs[carry_end:]
    slices = [importer.run(*_unstack_jaxpr(var.aval.shape, var.aval.dtype, length), [x], backward, remat)
              for var, x in zip(eqn.invars[carry_end:], xs)]
    steps: list[list[Node]] = [[] for _ in range(length)]
    for i in range(length):
        t = length - 1 - i if params["reverse"] else i
        results = importer.run(body.jaxpr, body.consts, [*consts, *carry, *(s[t] for s in slices)], backward, remat)
        carry, steps[t] = results[: len(carry)], results[len(carry):]
    ys = []
    for k, var in enumerate(eqn.outvars[len(carry):]):
        stack = _stack_jaxpr(var.aval.shape[1:], var.aval.dtype, length)
        ys += importer.run(*stack, [step[k] for step in steps], backward, remat)
    return [*carry, *ys]


@functools.lru_cache(maxsize=None)
def _unstack_jaxpr(shape: tuple[int, ...], dtype: Any, length: int) -> tuple[Any, Any]:
    """``xs -> [xs[0], ..., xs[length - 1]]`` as JAX writes it: (jaxpr, consts)."""
    jax = require("jax", "jax")
    closed = jax.make_jaxpr(lambda v: [jax.lax.index_in_dim(v, t, keepdims=False) for t in range(length)])(
        jax.ShapeDtypeStruct(shape, dtype))
    return closed.jaxpr, closed.consts


@functools.lru_cache(maxsize=None)
def _stack_jaxpr(shape: tuple[int, ...], dtype: Any, length: int) -> tuple[Any, Any]:
    """``y_0, ..., y_(length-1) -> stacked ys`` as JAX writes it: (jaxpr, consts)."""
    jax = require("jax", "jax")
    closed = jax.make_jaxpr(lambda *ys: jax.lax.concatenate([jax.lax.expand_dims(y, (0,)) for y in ys], 0))(
        *[jax.ShapeDtypeStruct(shape, dtype)] * length)
    return closed.jaxpr, closed.consts


# --- whole loops ----------------------------------------------------------------------------------


def _whole(importer: Any, eqn: Any, inputs: list[Node], backward: bool, remat: bool, cost: BodyCost) -> list[Node]:
    """One node for the loop (its cost as attrs), and one ``loop_output`` node per used result."""
    attrs = [(k, hashable_param(v)) for k, v in eqn.params.items()]
    attrs += [(ATTR_LOOP_FLOPS, int(cost.flops)), (ATTR_LOOP_MATMUL_FLOPS, int(cost.matmul_flops))]
    if cost.bound is not None:
        attrs.append((ATTR_LOOP_BOUND, cost.bound))
    if remat:
        attrs.append((ATTR_REMAT, True))
    call = importer.call if backward else None
    unit = imported_node(op_name(eqn.primitive, bool(eqn.effects)), inputs, attrs, (), UNIT_DTYPE, call=call)
    output = TABLE.op_name(LOOP_OUTPUT, doc="one result of a loop imported whole")
    jax_core = require("jax.extend.core", "jax")
    nodes = []
    for position, var in enumerate(eqn.outvars):
        if isinstance(var, jax_core.DropVar):
            nodes.append(None)
            continue
        nodes.append(imported_node(output, [unit], [(ATTR_OUTPUT, position)], *importer.typed(var.aval),
                                   call=call))
    return nodes


def _known_value(node: Node) -> Any:
    """The value of ``node`` when it is computed from constants only (then it is known at trace time)."""
    order = topological_order([node])
    if any(n.op in ("placeholder", "parameter") for n in order):
        return None
    return np.asarray(evaluate(node))
