"""The seed network as a PyTensor user writes it, and PyTensor's own counts of a graph, for the tests here.

Every expected count in these tests comes from PyTensor itself (its Apply nodes, its
MergeOptimizer, its compiled functions) or from a formula over the widths and the batch,
never from a table.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.graph.traversal import applys_between, graph_inputs

import graphaudit as ga

SEED_WIDTHS = (16384, 5000, 3000, 512, 40)
SEED_BATCH = 128
SMALL = (7, 6, 5, 4, 3)


def seed_network(widths, *, shared=True, dtype="float64", seed=0):
    """The seed's program, as a PyTensor user writes it: sigmoid layers, softmax, mean NLL.

    ``shared=True``: weights are shared variables holding random values (as in Theano);
    ``shared=False``: symbolic inputs with static shapes (nothing allocated: seed sizes are fine).
    The batch size is left open (``x`` is ``(None, widths[0])``, ``y`` a plain int vector).
    """
    rng = np.random.default_rng(seed)
    x = pt.matrix("x", dtype=dtype, shape=(None, widths[0]))
    y = pt.ivector("y")
    params, h = [], x
    for layer, (fan_in, fan_out) in enumerate(zip(widths, widths[1:]), start=1):
        if shared:
            w = pytensor.shared((rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(dtype), name=f"W{layer}")
            b = pytensor.shared((0.1 * rng.standard_normal(fan_out)).astype(dtype), name=f"b{layer}")
        else:
            w = pt.matrix(f"W{layer}", dtype=dtype, shape=(fan_in, fan_out))
            b = pt.vector(f"b{layer}", dtype=dtype, shape=(fan_out,))
        params += [w, b]
        h = pt.dot(h, w) + b
        h = pt.sigmoid(h) if layer < len(widths) - 1 else pt.special.softmax(h, axis=-1)
    loss = -pt.mean(pt.log(h)[pt.arange(y.shape[0]), y])
    return x, y, params, loss


def data(widths, batch, dtype="float64", seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, widths[0])).astype(dtype), rng.integers(0, widths[-1], batch).astype("int32")


def apply_nodes(outputs):
    roots = [v for v in graph_inputs(outputs) if not isinstance(v, pytensor.graph.basic.Constant)]
    return list(applys_between(roots, outputs))


def op_nodes(nodes):
    return [n for n in ga.topological_order(nodes) if not n.is_leaf]


def both_forms(loss, params):
    separate = [pytensor.grad(loss, [p])[0] for p in params]
    joint = pytensor.grad(loss, params)
    return separate, joint
