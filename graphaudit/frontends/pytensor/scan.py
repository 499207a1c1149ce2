"""PyTensor's ``Scan``: a loop imported with its body, unrolled within a node budget, else as one node.

A ``Scan`` node runs an inner graph (its *body*) ``n_steps`` times. Its outer inputs are,
in order: ``n_steps``, the sequences (read one row per step), the buffers of the mit-mot,
mit-sot and sit-sot states (read at taps, written one row per step), the untraced states
(carried whole), the sizes of the nit-sot outputs (one row per step, stacked), and the
non-sequences (read whole). The body's inputs and outputs follow the same order.

The importer first imports the body once, on placeholders of the row shapes: that gives
the output shapes, the body's nodes and FLOPs, and its digest. Then, as the JAX front-end
treats its loops (:mod:`graphaudit.frontends.jax.loops`):

- *unrolled* when the importer unrolls (the caller decides, for all forms at once, by
  :func:`unrolled_size` against a node budget): the body is imported once per step on the
  rows it reads, so graphaudit's merge sees duplicated work inside the loop as anywhere
  else; the outputs are the buffers' rows stacked again;
- else *whole*: one node whose cost is body FLOPs x steps (its matmul FLOPs: the body's
  products x steps), and one ``scan_output`` node per result (as many results as there are,
  the loop's cost counted once), equal to another Scan exactly when their bodies' digests, their
  ``ScanInfo`` and their inputs are equal (PyTensor's own ``Scan.__eq__`` compares the inner
  graphs too). A while loop, a truncated gradient and a Scan whose buffers a rewrite
  shortened are always whole; a while loop's figures are an upper bound (``n_steps`` is its
  most), which its node says through the attr ``bound`` (``Op.bound``).

Each Scan met is recorded as a :class:`~graphaudit.frontends.common.loops.LoopRecord`, so a report says how
it was treated.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

import numpy as np

from graphaudit.analysis.cost import combined_bound, node_bound, node_flops, node_matmul_flops
from graphaudit.errors import ShapeError
from graphaudit.frontends.common import (
    ATTR_OUTPUT, DEFAULT_LOOP_BUDGET, ImportedOp, imported_node)
from graphaudit.frontends.common.loops import LoopRecord, Treatment
from graphaudit.frontends.pytensor.ops import TABLE
from graphaudit.frontends.pytensor.perform import keep_template
from graphaudit.core.graph import GradCall, Node, constant, topological_order
from graphaudit.analysis.merge import digests
from graphaudit.core.ops import no_flops

DEFAULT_BUDGET = DEFAULT_LOOP_BUDGET


STACK = TABLE.op_name("scan_stack", row=ImportedOp("data", no_flops, lambda node, *rows: np.stack(rows)),
                         doc="rows of an unrolled Scan's output, stacked")
SCAN_OUTPUT = TABLE.op_name(
    "scan_output", row=ImportedOp("data", no_flops, lambda node, unit: unit[()][node.attr(ATTR_OUTPUT)]),
    doc="one result of a Scan kept as a unit")
SUBTENSOR = TABLE.op_name("Subtensor", row=TABLE.row("Subtensor")._replace(view=True),  # a row is a view
                             doc="PyTensor's Subtensor")


def unrolled_size(nodes: int, loops: list[LoopRecord]) -> int:
    """About how many op nodes an import of ``nodes`` op nodes makes with its ``loops`` kept whole unrolled."""
    return nodes + sum(loop.length * loop.body_nodes for loop in loops if loop.treatment != Treatment.UNROLLED)


def is_scan(op) -> bool:
    return type(op).__name__ == "Scan"


def import_scan(importer, apply, call: GradCall | None, name: str, attrs: tuple) -> None:
    """Import ``apply`` (a Scan) into ``importer``: unrolled when the importer unrolls and it can be, else whole."""
    loop = _Scan(importer, apply, call)
    if loop.steps is None:
        raise ShapeError(f"{name}: its number of steps is only known at run time; give the shapes of the inputs "
                         f"it is computed from (shapes=)")
    body, digest, cost = loop.body()
    treatment = loop.treatment()
    importer.loops.append(LoopRecord("Scan", loop.steps, treatment, digest, cost.nodes, cost.flops,
                                     cost.matmul_flops))
    if treatment == Treatment.UNROLLED:
        outputs = loop.unrolled()
    else:
        op = apply.op
        bound = combined_bound([treatment.bound, cost.bound])
        attrs = (*(a for a in attrs if a[0] != "instance"),  # Scan has no __props__: it compares by its body
                 ("body", digest), ("body_flops", cost.flops), ("body_matmul_flops", cost.matmul_flops),
                 ("body_nodes", cost.nodes), ("info", str(op.info)), ("name", op.name), ("steps", loop.steps),
                 ("truncate_gradient", op.truncate_gradient), *((("bound", bound),) if bound else ()))
        unit = imported_node(name, loop.outer, attrs, (), np.dtype(object), call=call)
        keep_template(name, unit.attrs, apply)  # evaluated by PyTensor's perform
        outputs = [imported_node(SCAN_OUTPUT, [unit], [(ATTR_OUTPUT, i)], shape, np.dtype(o.dtype), call=call)
                   for i, (o, shape) in enumerate(zip(apply.outputs, loop.output_shapes(body)))]
    for variable, node in zip(apply.outputs, outputs):
        importer.nodes[variable] = node


class _BodyCost(NamedTuple):
    """One run of a Scan's body: op nodes, FLOPs, matmul FLOPs, and which bound they are (None: a count)."""

    nodes: int
    flops: int
    matmul_flops: int
    bound: str | None


class _Read(NamedTuple):
    """One body input: ``kind`` "row" (row ``t + offset`` of ``source``, a sequence or a state buffer,
    ``buffer`` its number among the buffers) or "whole" (an untraced state, ``buffer`` its number, or a
    non-sequence, ``buffer`` None)."""

    kind: str
    source: Node
    offset: int
    buffer: int | None


class _Scan:
    """One Scan Apply being imported: its outer nodes, its trip count, what its body reads and writes."""

    def __init__(self, importer, apply, call):
        self.importer, self.apply, self.op, self.call = importer, apply, apply.op, call
        self.outer = [importer.nodes[v] for v in apply.inputs]
        steps = importer.values.get(apply.inputs[0])
        self.steps = None if steps is None else int(steps)
        op = self.op
        self.buffers = op.outer_mitmot(self.outer) + op.outer_mitsot(self.outer) + op.outer_sitsot(self.outer)
        self.reads = self._reads()

    def _reads(self) -> list[_Read]:
        op, info, outer = self.op, self.op.info, self.outer
        reads = [_Read("row", seq, 0, None) for seq in op.outer_seqs(outer)]
        taps = list(info.mit_mot_in_slices) + list(info.mit_sot_in_slices) + list(info.sit_sot_in_slices)
        for b, (buffer, buffer_taps) in enumerate(zip(self.buffers, taps)):
            first = 0 if b < info.n_mit_mot else -min(buffer_taps)  # mit-mot taps count from row t, others from t+L
            reads += [_Read("row", buffer, first + tap, b) for tap in buffer_taps]
        reads += [_Read("whole", state, 0, b) for b, state in enumerate(op.outer_untraced_sit_sot(outer))]
        reads += [_Read("whole", value, 0, None) for value in op.outer_non_seqs(outer)]
        return reads

    def _writes(self) -> list[tuple[str, int, int]]:
        """Per body output: ``("row", buffer, offset)`` (written at row ``t + offset``), ``("nit", i, 0)``
        (stacked), ``("state", i, 0)`` (an untraced state's next value)."""
        info = self.op.info
        writes = []
        for b, out_taps in enumerate(info.mit_mot_out_slices):
            writes += [("row", b, tap) for tap in out_taps]
        for b, in_taps in enumerate(list(info.mit_sot_in_slices) + list(info.sit_sot_in_slices)):
            writes.append(("row", info.n_mit_mot + b, -min(in_taps)))
        writes += [("nit", i, 0) for i in range(info.n_nit_sot)]
        writes += [("state", i, 0) for i in range(info.n_untraced_sit_sot)]
        return writes

    def _values(self) -> dict:
        """Known small values of the non-sequences, by body input (a body's shape arithmetic may need them)."""
        op, known = self.op, self.importer.values
        pairs = zip(op.inner_non_seqs(op.inner_inputs), op.outer_non_seqs(self.apply.inputs))
        return {inner: known[outer] for inner, outer in pairs if outer in known}

    def body(self) -> tuple[list[Node], str, _BodyCost]:
        """The body on placeholders ``in0``, ``in1``, ...: its outputs, digest and cost."""
        seed = {}
        for i, (variable, read) in enumerate(zip(self.op.inner_inputs, self.reads)):
            shape = read.source.shape[1:] if read.kind == "row" else read.source.shape
            seed[variable] = Node("placeholder", (), (), shape, np.dtype(variable.dtype), name=f"in{i}")
        outputs = self.importer.child(seed, self._values()).import_outputs(self.op.inner_outputs, self.call)
        inner = [n for n in topological_order(outputs) if not n.is_leaf]
        by_node = digests(outputs)
        digest = hashlib.blake2b(" ".join(by_node[o] for o in outputs).encode(), digest_size=16).hexdigest()
        cost = _BodyCost(len(inner), sum(map(node_flops, inner)), sum(map(node_matmul_flops, inner)),
                         combined_bound(map(node_bound, inner)))
        return outputs, digest, cost

    def treatment(self) -> Treatment:
        """How this Scan is imported: unrolled when the importer unrolls and nothing stops it."""
        op, steps = self.op, self.steps
        if op.info.as_while:
            return Treatment.N_STEPS
        if op.truncate_gradient != -1:
            return Treatment.TRUNCATED
        rows = [(r.source, r.offset) for r in self.reads if r.kind == "row"]
        rows += [(self.buffers[i], offset) for kind, i, offset in self._writes() if kind == "row"]
        sizes = [self.importer.values.get(size) for size in op.outer_nitsot(self.apply.inputs)]
        if not all(0 <= offset and steps - 1 + offset < source.shape[0] for source, offset in rows) or \
                not all(size is not None and int(size) == steps for size in sizes):
            return Treatment.SHORTENED
        return Treatment.UNROLLED if self.importer.unroll and steps > 0 else Treatment.WHOLE

    def output_shapes(self, body: list[Node]) -> list[tuple[int, ...]]:
        """Buffers and untraced states keep their outer shapes; a nit-sot output is ``(size, *row)``."""
        op = self.op
        nit = []
        for size, row in zip(op.outer_nitsot(self.apply.inputs), op.inner_nitsot_outs(body)):
            known = self.importer.values.get(size)
            if known is None:
                raise ShapeError("pytensor.Scan: the length of a nit-sot output is only known at run time")
            nit.append((int(known), *row.shape))
        return [b.shape for b in self.buffers] + nit + [s.shape for s in op.outer_untraced_sit_sot(self.outer)]

    def unrolled(self) -> list[Node]:
        """The body imported once per step on the rows it reads; the outputs stacked from the rows written."""
        op, call = self.op, self.call
        rows: list[dict[int, Node]] = [{} for _ in self.buffers]
        states = list(op.outer_untraced_sit_sot(self.outer))
        stacked: list[list[Node]] = [[] for _ in range(op.info.n_nit_sot)]

        def read(r: _Read, t: int) -> Node:
            if r.kind == "whole":
                return states[r.buffer] if r.buffer is not None else r.source
            if r.buffer is None:
                return _row(r.source, t, call)
            if t + r.offset not in rows[r.buffer]:
                rows[r.buffer][t + r.offset] = _row(r.source, t + r.offset, call)
            return rows[r.buffer][t + r.offset]

        writes, values = self._writes(), self._values()
        for t in range(self.steps):
            seed = {variable: read(r, t) for variable, r in zip(op.inner_inputs, self.reads)}
            outputs = self.importer.child(seed, values).import_outputs(op.inner_outputs, call)
            for (kind, i, offset), node in zip(writes, outputs):
                if kind == "row":
                    rows[i][t + offset] = node
                elif kind == "nit":
                    stacked[i].append(node)
                else:
                    states[i] = node
        results = []
        for buffer, written in zip(self.buffers, rows):
            parts = [written[k] if k in written else _row(buffer, k, call) for k in range(buffer.shape[0])]
            results.append(_stack(parts, buffer.dtype, call))
        results += [_stack(parts, parts[0].dtype, call) for parts in stacked]
        return results + states


def _row(source: Node, position: int, call) -> Node:
    index = constant(np.int64(position))
    return imported_node(SUBTENSOR, (source, index), [("idx_list", (0,))], source.shape[1:], source.dtype, call=call)


def _stack(parts: list[Node], dtype, call) -> Node:
    return imported_node(STACK, parts, [], (len(parts), *parts[0].shape), dtype, call=call)
