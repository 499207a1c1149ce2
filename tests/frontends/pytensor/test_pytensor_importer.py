"""frontends/pytensor/importer.py: a faithful import (one node per Apply output, PyTensor's shapes, dots and merges).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

import graphaudit as ga

pytensor = pytest.importorskip("pytensor")
pt = pytest.importorskip("pytensor.tensor")
gp = pytest.importorskip("graphaudit.frontends.pytensor")
from pytensor_networks import SMALL, apply_nodes, both_forms, op_nodes, seed_network  # noqa: E402


def test_import_is_one_node_per_apply_node_with_pytensors_shapes_and_dots():
    x, y, params, loss = seed_network(SMALL)
    separate, joint = both_forms(loss, params)
    batch = 9
    for outputs in ([loss], joint, separate):
        imported = gp.from_pytensor(outputs, shapes={x: (batch, SMALL[0]), "y": (batch,)})
        applies = apply_nodes(outputs)
        nodes = op_nodes(imported.outputs)
        assert len(nodes) == len(applies)
        assert sum(ga.analysis.cost.is_matmul(n) for n in nodes) == gp.matmul_count(applies)
        for variable in outputs:
            node = imported.node(variable)
            assert len(node.shape) == variable.ndim  # and wherever PyTensor knows a dimension, the same one
            assert all(s is None or s == d for s, d in zip(variable.type.shape, node.shape))
            assert node.dtype == np.dtype(variable.dtype)
    imported = gp.from_pytensor([loss] + joint, shapes={"x": (batch, SMALL[0]), "y": (batch,)})
    # a weight's gradient has the weight's shape; the hidden activations have batch rows
    for p, g in zip(params, joint):
        assert imported.node(g).shape == p.get_value().shape
    sigmoids = [n for n in op_nodes([imported.node(loss)]) if n.op == "pytensor.Elemwise{sigmoid}"]
    assert sorted(n.shape for n in sigmoids) == sorted((batch, d) for d in SMALL[1:-1])
    # shared variables are parameters holding their value; x and y placeholders
    kinds = {leaf.name: leaf.op for leaf in imported.leaves}
    assert kinds == {"x": "placeholder", "y": "placeholder", **{p.name: "parameter" for p in params}}
    assert imported.node(params[0]).value is params[0].get_value(borrow=True)
    assert imported.no_cost_rule == {} and imported.evaluated_by_pytensor == []


def test_constants_merge_by_dtype_shape_and_bytes_where_pytensor_merges_signed_zeros():
    x = pt.vector("x", shape=(4,))
    same = [x * pt.constant(np.float64(2.0)), x * pt.constant(np.float64(2.0))]  # two Constant objects, one value
    ours, theirs = ga.merge(gp.from_pytensor(same).outputs), gp.merge_optimizer(same)
    assert ours.nodes_before == 4 and ours.nodes_after == theirs["nodes"] == 2  # (DimShuffle of 2.0, mul) once
    other_dtype = [x * pt.constant(np.float64(2.0)), x * pt.constant(np.float32(2.0))]
    assert ga.merge(gp.from_pytensor(other_dtype).outputs).nodes_after == gp.merge_optimizer(other_dtype)["nodes"] == 4
    # PyTensor's Constant.signature() compares values with ==, so 0.0 and -0.0 merge there, and the
    # compiled function then divides by the wrong zero; graphaudit compares bytes and keeps them apart.
    a = pt.scalar("a")
    signed = [1 / (a * pt.constant(np.float64(0.0))), 1 / (a * pt.constant(np.float64(-0.0)))]
    imported = gp.from_pytensor(signed)
    assert ga.merge(imported.outputs).nodes_after == len(apply_nodes(signed))
    assert gp.merge_optimizer(signed)["nodes"] < len(apply_nodes(signed))
    assert [float(v) for v in ga.evaluate(imported.outputs, {"a": 1.0})] == [np.inf, -np.inf]
    with np.errstate(divide="ignore"):
        compiled = pytensor.function([a], signed, mode="FAST_COMPILE")(1.0)
    assert float(compiled[0]) == float(compiled[1])  # PyTensor: both the same infinity


def _python(code, **env):
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=120)


@pytest.mark.subprocess
def test_pytensor_is_imported_lazily_with_a_clear_message_when_missing():
    lazy = _python("import sys, graphaudit, graphaudit.frontends.pytensor; print('pytensor' in sys.modules)")
    assert lazy.returncode == 0 and lazy.stdout.strip() == "False", lazy.stderr
    missing = _python(
        "import sys; sys.modules['pytensor'] = None\n"
        "from graphaudit.frontends import pytensor as gp\n"
        "try:\n    gp.from_pytensor([])\nexcept ImportError as e:\n    print(type(e).__name__, e)"
    )
    assert "MissingFrameworkError" in missing.stdout and "pip install 'graphaudit[pytensor]'" in missing.stdout


def test_imported_props_that_differ_only_in_type_stay_apart():
    """``Cholesky(lower=True)`` and ``Cholesky(lower=1)`` are equal Ops to PyTensor; graphaudit keeps them apart."""
    import pytensor.tensor as pt

    try:
        from pytensor.tensor.linalg import Cholesky
    except ImportError:  # PyTensor 2.x
        from pytensor.tensor.slinalg import Cholesky

    a = pt.matrix("a", shape=(3, 3))
    outputs = [Cholesky(lower=True)(a), Cholesky(lower=1)(a), Cholesky(lower=True)(a)]
    assert outputs[0].owner.op == outputs[1].owner.op  # PyTensor's own == cannot tell them apart
    as_bool, as_int, again = gp.from_pytensor(outputs).outputs
    result = ga.merge([as_bool, as_int, again])
    assert result.mapping[as_bool] is result.mapping[again] is not result.mapping[as_int]
    digests = ga.digests([as_bool, as_int, again])
    assert digests[as_bool] == digests[again] != digests[as_int]


def test_ops_pytensor_declares_views_write_no_bytes():
    from graphaudit.analysis.cost import node_bytes

    a, b = pt.matrix("a", shape=(3, 4)), pt.matrix("b", shape=(3, 2))
    out = pt.dot(a.T, b).reshape((8,))[1:5]
    written = {n.op: node_bytes(n) for n in ga.topological_order(gp.from_pytensor([out]).outputs) if not n.is_leaf}
    assert written["pytensor.DimShuffle"] == written["pytensor.Reshape"] == written["pytensor.Subtensor"] == 0
    dot = next(op for op in written if "Dot" in op)
    assert written[dot] == 4 * 2 * np.dtype(pytensor.config.floatX).itemsize
