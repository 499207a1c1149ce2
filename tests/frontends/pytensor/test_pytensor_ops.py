"""frontends/pytensor/ops.py: how PyTensor's Ops are named, what their attrs are, how numpy runs them.
"""

from __future__ import annotations

import numpy as np
import pytest

import graphaudit as ga

pytensor = pytest.importorskip("pytensor")
pt = pytest.importorskip("pytensor.tensor")
gp = pytest.importorskip("graphaudit.frontends.pytensor")
from pytensor_networks import SMALL, both_forms, data, op_nodes, seed_network  # noqa: E402


def test_ops_are_named_by_class_and_scalar_op_with_props_as_attrs():
    x = pt.matrix("x", shape=(3, 4))
    out = pt.sum(pt.cast(pt.sigmoid(x.T), "float32"), axis=0)
    imported = gp.from_pytensor(out)
    by_op = {n.op: n for n in op_nodes(imported.outputs)}
    assert set(by_op) == {"pytensor.DimShuffle", "pytensor.Elemwise{sigmoid}", "pytensor.Elemwise{cast}",
                          "pytensor.Sum"}
    assert by_op["pytensor.DimShuffle"].attr("new_order") == (1, 0)
    assert by_op["pytensor.Elemwise{cast}"].attr("dtype") == "float32"
    assert by_op["pytensor.Sum"].attr("axis") == (0,) and by_op["pytensor.Sum"].shape == (3,)
    assert by_op["pytensor.Sum"].dtype == np.float32


def test_several_outputs_become_several_nodes_and_unknown_ops_are_kept_and_listed():
    q = pt.vector("q", shape=(5,))
    first, second = pt.split(q, [2, 3], n_splits=2)
    again, _ = pt.split(q, [2, 3], n_splits=2)  # an equal Apply node: merges with the first, output by output
    a = pt.matrix("A")
    outputs = [first * 2, second.sum(), again * 2, pt.linalg.inv(a).sum()]
    imported = gp.from_pytensor(outputs, shapes={"A": (3, 3)})
    splits = [n for n in op_nodes(imported.outputs) if n.op == "pytensor.Split"]
    assert sorted(n.attr("output") for n in splits) == [0, 0, 1]
    assert {n.shape for n in splits} == {(2,), (3,)}
    merged = ga.merge(imported.outputs)
    assert merged.outputs[0] is merged.outputs[2] and merged.removed == 3  # the Split output, its DimShuffle'd 2, mul
    inverse = "pytensor.Blockwise{MatrixInverse}"
    assert imported.no_cost_rule == {inverse: 1}
    assert set(imported.evaluated_by_pytensor) == {inverse, "pytensor.Split"}
    text = ga.audit_graph(imported.outputs).to_text()
    assert f"no cost rule, FLOPs not counted: {inverse} (1)" in text
    matrix = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 4.0]])
    values = ga.evaluate(imported.outputs, imported.feed({q: np.arange(5.0), "A": matrix}))
    np.testing.assert_array_equal(values[0], [0.0, 2.0])
    assert values[1] == 2 + 3 + 4
    assert values[3] == pytest.approx(np.linalg.inv(matrix).sum(), rel=1e-12)


def test_imported_graphs_evaluate_to_pytensors_own_gradients():
    batch = 9
    for dtype, rtol in (("float64", 1e-10), ("float32", 2e-4)):
        x, y, params, loss = seed_network(SMALL, dtype=dtype)
        separate, joint = both_forms(loss, params)
        xv, yv = data(SMALL, batch, dtype)
        expected = pytensor.function([x, y], [loss, *separate, *joint], mode="FAST_COMPILE")(xv, yv)
        imported = gp.from_pytensor([loss, *separate, *joint], shapes={"x": xv.shape, "y": yv.shape})
        assert imported.evaluated_by_pytensor == []  # graphaudit's own numpy code, not PyTensor's perform
        values = ga.evaluate(imported.outputs, imported.feed({x: xv, "y": yv}))
        for got, want in zip(values, expected):
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * 1e-3)
        merged = ga.merge(imported.outputs)
        for got, again in zip(values, ga.evaluate(merged.outputs, imported.feed({x: xv, "y": yv}))):
            np.testing.assert_array_equal(got, again)  # merging changes no bit


def test_a_compiled_function_graph_imports_and_evaluates_too():
    x, y, params, loss = seed_network(SMALL)
    joint = pytensor.grad(loss, params)
    function = pytensor.function([x, y], joint)  # PyTensor's default mode: fused, in place
    graph = function.maker.fgraph
    xv, yv = data(SMALL, 9)
    imported = gp.from_pytensor(graph.outputs, shapes={x: xv.shape, y: yv.shape})
    assert len(op_nodes(imported.outputs)) == len(graph.apply_nodes)
    assert sum(ga.analysis.cost.is_matmul(n) for n in op_nodes(imported.outputs)) == gp.matmul_count(graph.apply_nodes)
    assert "pytensor.Elemwise{composite}" in imported.evaluated_by_pytensor  # fused elementwise: PyTensor's perform
    for got, want in zip(ga.evaluate(imported.outputs, imported.feed({x: xv, y: yv})), function(xv, yv)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)


def test_sigmoid_softmax_and_matmul_compute_and_count_as_graphaudits_own_ops():
    x, w = pt.matrix("x", shape=(3, 4)), pt.matrix("w", shape=(4, 5))
    theirs = [pt.sigmoid(x), pt.special.softmax(x, axis=-1), pt.special.log_softmax(x, axis=0), pt.dot(x, w)]
    imported = gp.from_pytensor(theirs)
    gx, gw = ga.placeholder("x", (3, 4), "float64"), ga.placeholder("w", (4, 5), "float64")
    ours = [ga.sigmoid(gx), ga.softmax(gx, axis=-1), ga.log_softmax(gx, axis=0), gx @ gw]
    rng = np.random.default_rng(5)
    feed = {"x": 8 * rng.standard_normal((3, 4)), "w": rng.standard_normal((4, 5))}
    for got, want in zip(ga.evaluate(imported.outputs, feed), ga.evaluate(ours, {gx: feed["x"], gw: feed["w"]})):
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes()  # the same bits
    assert ga.analysis.cost.node_flops(imported.outputs[3]) == ga.analysis.cost.node_flops(ours[3]) == 2 * 3 * 4 * 5
