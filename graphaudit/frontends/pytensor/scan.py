"""PyTensor's ``Scan``: a loop imported with its body, unrolled within a node budget, else as one node.

A ``Scan`` node runs an inner graph (its *body*) ``n_steps`` times. Its outer inputs are,
in order: ``n_steps``, the sequences (read one row per step), the buffers of the mit-mot,
mit-sot and sit-sot states (read at taps, written one row per step), the untraced states
(carried whole), the sizes of the nit-sot outputs (one row per step, stacked), and the
non-sequences (read whole). The body's inputs and outputs follow the same order.

The importer first imports the body once, on placeholders of the row shapes: that gives
the output shapes, the body's nodes and FLOPs, and its digest. Then:

- *unrolled* when ``steps x body nodes`` fits the budget (``unroll=``): the body is
  imported once per step on the rows it reads, so graphaudit's merge sees duplicated work
  inside the loop as anywhere else; the outputs are the buffers' rows stacked again;
- else *as a unit*: one node whose cost is body FLOPs x steps, equal to another Scan
  exactly when their bodies' digests, their ``ScanInfo`` and their inputs are equal
  (PyTensor's own ``Scan.__eq__`` compares the inner graphs too).

Each Scan met is recorded as a :class:`Loop`, so a report says how it was treated.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

import numpy as np

from graphaudit.cost import node_flops
from graphaudit.errors import ShapeError
from graphaudit.frontends.common import ImportedOp, imported_node
from graphaudit.frontends.pytensor.ops import FAMILIES
from graphaudit.graph import GradCall, Node, constant, topological_order
from graphaudit.merge import digests
from graphaudit.ops import no_flops

UNROLL_NODES = 20_000  # default budget: a loop is unrolled when steps x body nodes fit in it

STACK = FAMILIES.op_name("scan_stack", row=ImportedOp("data", no_flops, lambda node, *rows: np.stack(rows)),
                         doc="rows of an unrolled Scan's output, stacked")
SUBTENSOR = FAMILIES.op_name("Subtensor", row=FAMILIES.row("Subtensor")._replace(view=True))  # a row is a view


class Loop(NamedTuple):
    """One Scan as imported: who built it (``call``: a grad call's label, or ``"forward"``), its trip
    count, its body's op nodes and FLOPs per step, and ``treatment``: ``"unrolled"`` or ``"unit"``."""

    call: str
    steps: int
    body_nodes: int
    body_flops: int
    treatment: str
    reason: str


def is_scan(op) -> bool:
    return type(op).__name__ == "Scan"


def import_scan(importer, apply, call: GradCall | None, name: str, attrs: tuple) -> None:
    """Import ``apply`` (a Scan) into ``importer``: unrolled within its budget, else as one node."""
    op, info = apply.op, apply.op.info
    outer = [importer.nodes[v] for v in apply.inputs]
    steps = importer.values.get(apply.inputs[0])
    if steps is None:
        raise ShapeError(f"{name}: its number of steps is only known at run time; give the shapes of the inputs "
                         f"it is computed from (shapes=)")
    steps = int(steps)
    reads = _reads(op, outer)
    body, body_nodes, body_flops, digest = _body(importer, op, [_read_shape(r) for r in reads], call)
    treatment, reason = "unit", ""
    if steps == 0:
        reason = "no steps"
    elif info.as_while:
        reason = "a while loop: its trip count is only known at run time"
    elif op.truncate_gradient != -1:
        reason = "truncated gradient"
    elif steps * body_nodes > importer.unroll:
        reason = f"{steps} steps x {body_nodes} nodes exceed the unroll budget of {importer.unroll} nodes"
    elif not _fits(op, reads, outer, steps, importer, apply):
        reason = "its buffers are not one row per step (a rewritten, memory-saving Scan)"
    else:
        treatment = "unrolled"
    importer.loops.append(Loop(call.label if call is not None else "forward", steps, body_nodes, body_flops,
                               treatment, reason))
    if treatment == "unrolled":
        outputs = _unrolled(importer, op, reads, outer, steps, call)
    else:
        shapes = _output_shapes(op, outer, body, importer, apply)
        attrs = (*(a for a in attrs if a[0] != "instance"), ("body", digest), ("body_flops", body_flops), ("body_nodes", body_nodes),
                 ("info", str(info)), ("name", op.name), ("steps", steps), ("truncate_gradient", op.truncate_gradient))
        outputs = [imported_node(name, outer, attrs, shape, np.dtype(o.dtype), call=call,
                                 output=i if len(apply.outputs) > 1 else None)
                   for i, (o, shape) in enumerate(zip(apply.outputs, shapes))]
    for variable, node in zip(apply.outputs, outputs):
        importer.nodes[variable] = node


# --- what the body reads and writes ------------------------------------------------------------


class _Read(NamedTuple):
    """One body input: ``kind`` "row" (row ``t + offset`` of ``source``, a sequence or a state buffer,
    ``buffer`` its number among the buffers) or "whole" (an untraced state, ``buffer`` its number, or a
    non-sequence, ``buffer`` None)."""

    kind: str
    source: Node
    offset: int
    buffer: int | None


def _reads(op, outer: list[Node]) -> list[_Read]:
    info = op.info
    reads = [_Read("row", seq, 0, None) for seq in op.outer_seqs(outer)]
    buffers = op.outer_mitmot(outer) + op.outer_mitsot(outer) + op.outer_sitsot(outer)
    taps = list(info.mit_mot_in_slices) + list(info.mit_sot_in_slices) + list(info.sit_sot_in_slices)
    for b, (buffer, buffer_taps) in enumerate(zip(buffers, taps)):
        first = 0 if b < info.n_mit_mot else -min(buffer_taps)  # mit-mot taps count from row t, the others from t+L
        reads += [_Read("row", buffer, first + tap, b) for tap in buffer_taps]
    reads += [_Read("whole", state, 0, b) for b, state in enumerate(op.outer_untraced_sit_sot(outer))]
    reads += [_Read("whole", value, 0, None) for value in op.outer_non_seqs(outer)]
    return reads


def _writes(op) -> list[tuple[str, int, int]]:
    """Per body output: ``("row", buffer, offset)`` (written at row ``t + offset``), ``("nit", i, 0)``
    (stacked), ``("state", i, 0)`` (an untraced state's next value)."""
    info = op.info
    writes = []
    for b, out_taps in enumerate(info.mit_mot_out_slices):
        writes += [("row", b, tap) for tap in out_taps]
    for b, in_taps in enumerate(list(info.mit_sot_in_slices) + list(info.sit_sot_in_slices)):
        writes.append(("row", info.n_mit_mot + b, -min(in_taps)))
    writes += [("nit", i, 0) for i in range(info.n_nit_sot)]
    writes += [("state", i, 0) for i in range(info.n_untraced_sit_sot)]
    return writes


def _read_shape(read: _Read) -> tuple[int, ...]:
    return read.source.shape[1:] if read.kind == "row" else read.source.shape


def _fits(op, reads: list[_Read], outer, steps: int, importer, apply) -> bool:
    """Every row read or written lies in its buffer (no circular buffer), and nit-sot outputs have a row per step."""
    buffers = op.outer_mitmot(outer) + op.outer_mitsot(outer) + op.outer_sitsot(outer)
    rows = [(r.source, r.offset) for r in reads if r.kind == "row"]
    rows += [(buffers[i], offset) for kind, i, offset in _writes(op) if kind == "row"]
    sizes = [importer.values.get(size) for size in op.outer_nitsot(apply.inputs)]
    return (all(0 <= offset and steps - 1 + offset < source.shape[0] for source, offset in rows)
            and all(size is not None and int(size) == steps for size in sizes))


# --- the body, once or once per step ---------------------------------------------------------------


def _body(importer, op, shapes, call) -> tuple[list[Node], int, int, str]:
    """The body on placeholders ``in0``, ``in1``, ...: its outputs, op nodes, FLOPs and digest."""
    seed = {variable: Node("placeholder", (), (), tuple(shape), np.dtype(variable.dtype), name=f"in{i}")
            for i, (variable, shape) in enumerate(zip(op.inner_inputs, shapes))}
    outputs = importer.child(seed).import_outputs(op.inner_outputs, call)
    inner = [n for n in topological_order(outputs) if not n.is_leaf]
    by_node = digests(outputs)
    digest = hashlib.blake2b(" ".join(by_node[o] for o in outputs).encode(), digest_size=16).hexdigest()
    return outputs, len(inner), sum(node_flops(n) for n in inner), digest


def _output_shapes(op, outer, body, importer, apply) -> list[tuple[int, ...]]:
    """Buffers and untraced states keep their outer shapes; a nit-sot output is ``(size, *row)``."""
    buffers = op.outer_mitmot(outer) + op.outer_mitsot(outer) + op.outer_sitsot(outer)
    sizes = op.outer_nitsot(apply.inputs)
    rows = op.inner_nitsot_outs(body)
    nit = []
    for size, row in zip(sizes, rows):
        known = importer.values.get(size)
        if known is None:
            raise ShapeError("pytensor.Scan: the length of a nit-sot output is only known at run time")
        nit.append((int(known), *row.shape))
    return [b.shape for b in buffers] + nit + [s.shape for s in op.outer_untraced_sit_sot(outer)]


def _row(source: Node, position: int, call) -> Node:
    index = constant(np.int64(position))
    return imported_node(SUBTENSOR, (source, index), [("idx_list", (0,))], source.shape[1:],
                         source.dtype, call=call)


def _unrolled(importer, op, reads, outer, steps, call) -> list[Node]:
    """The body imported once per step on the rows it reads; the outputs stacked from the rows written."""
    buffers = op.outer_mitmot(outer) + op.outer_mitsot(outer) + op.outer_sitsot(outer)
    rows: list[dict[int, Node]] = [{} for _ in buffers]
    states = list(op.outer_untraced_sit_sot(outer))
    stacked: list[list[Node]] = [[] for _ in range(op.info.n_nit_sot)]
    writes = _writes(op)

    def read(r: _Read, t: int) -> Node:
        if r.kind == "whole":
            return states[r.buffer] if r.buffer is not None else r.source
        if r.buffer is None:
            return _row(r.source, t, call)
        known = rows[r.buffer]
        if t + r.offset not in known:
            known[t + r.offset] = _row(r.source, t + r.offset, call)
        return known[t + r.offset]

    for t in range(steps):
        seed = {variable: read(r, t) for variable, r in zip(op.inner_inputs, reads)}
        outputs = importer.child(seed).import_outputs(op.inner_outputs, call)
        for (kind, i, offset), node in zip(writes, outputs):
            if kind == "row":
                rows[i][t + offset] = node
            elif kind == "nit":
                stacked[i].append(node)
            else:
                states[i] = node
    results = []
    for buffer, written in zip(buffers, rows):
        parts = [written[k] if k in written else _row(buffer, k, call) for k in range(buffer.shape[0])]
        results.append(_stack(parts, buffer.dtype, call))
    results += [_stack(parts, parts[0].dtype, call) for parts in stacked]
    return results + states


def _stack(parts: list[Node], dtype, call) -> Node:
    return imported_node(STACK, parts, [], (len(parts), *parts[0].shape), dtype, call=call)
