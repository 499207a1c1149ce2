"""The PyTensor front-end: faithful import, PyTensor's own values, its merge, the seed's hand count.

Every expected count here comes from PyTensor itself (its Apply nodes, its MergeOptimizer,
its compiled functions) or from a formula over the widths and the batch, never from a table.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

import graphaudit as ga

pytensor = pytest.importorskip("pytensor")
pt = pytest.importorskip("pytensor.tensor")
gp = pytest.importorskip("graphaudit.frontends.pytensor")
from pytensor.graph.traversal import applys_between, graph_inputs  # noqa: E402

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


@pytest.fixture(scope="module")
def small_audit():
    """One audit of the small seed network with the compile check (PyTensor's compile is the slow part)."""
    x, y, params, loss = seed_network(SMALL)
    report = gp.audit(loss, params, shapes={"x": (9, SMALL[0]), "y": (9,)}, compile_check=True, repeats=3)
    return report, (x, y, params, loss)


# --- import ------------------------------------------------------------------------------------------


def test_import_is_one_node_per_apply_node_with_pytensors_shapes_and_dots():
    x, y, params, loss = seed_network(SMALL)
    separate, joint = both_forms(loss, params)
    batch = 9
    for outputs in ([loss], joint, separate):
        imported = gp.from_pytensor(outputs, shapes={x: (batch, SMALL[0]), "y": (batch,)})
        applies = apply_nodes(outputs)
        nodes = op_nodes(imported.outputs)
        assert len(nodes) == len(applies)
        assert sum(ga.cost.is_matmul(n) for n in nodes) == gp.matmul_count(applies)
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


def test_shapes_flow_through_shape_arithmetic_reshape_indexing_and_matmul_operator():
    x = pt.matrix("x", shape=(None, 4))
    w = pt.matrix("W", shape=(4, 6))
    h = (x @ w).reshape((x.shape[0] * 2, -1))  # Blockwise{Dot}, then a shape computed from x's batch
    picked = h[pt.arange(h.shape[0] // 2), 0:3:2]
    imported = gp.from_pytensor(picked, shapes={"x": (5, 4)})
    nodes = {n.op: n for n in op_nodes(imported.outputs)}
    assert nodes["pytensor.Blockwise{Dot}"].shape == (5, 6)
    assert ga.cost.node_flops(nodes["pytensor.Blockwise{Dot}"]) == 2 * 5 * 4 * 6
    assert nodes["pytensor.Reshape"].shape == (10, 3)
    assert imported.outputs[0].shape == (5, 2)
    rng = np.random.default_rng(3)
    xv, wv = rng.standard_normal((5, 4)), rng.standard_normal((4, 6))
    expected = pytensor.function([x, w], picked, mode="FAST_COMPILE")(xv, wv)
    np.testing.assert_allclose(ga.evaluate(imported.outputs[0], {"x": xv, "W": wv}), expected, rtol=1e-12)


def test_missing_or_wrong_shapes_are_errors_that_name_the_input():
    x, y, params, loss = seed_network(SMALL)
    with pytest.raises(ga.ShapeError, match=r"shape of input 'x'.*not known.*shapes=\{'x'"):
        gp.from_pytensor(loss)
    with pytest.raises(ga.ShapeError, match=r"shape of input 'y'"):
        gp.from_pytensor(loss, shapes={"x": (4, SMALL[0])})
    with pytest.raises(ga.ShapeError, match=r"input 'x'.*\(4, 3\).*static shape \(\?, 7\)"):
        gp.from_pytensor(loss, shapes={"x": (4, 3), "y": (4,)})
    with pytest.raises(ga.ShapeError, match=r"shared variable 'W1' holds a value of shape \(7, 6\), not \(7, 5\)"):
        gp.from_pytensor(loss, shapes={"x": (4, 7), "y": (4,), "W1": (7, 5)})
    with pytest.raises(ValueError, match=r"'z' is not an input of the graph \(its inputs: x, W1"):
        gp.from_pytensor(loss, shapes={"x": (4, 7), "y": (4,), "z": (1,)})
    with pytest.raises(ga.ShapeError, match=r"pytensor.Dot.*inner dimensions differ"):
        a, b = pt.matrix("a"), pt.matrix("b")
        gp.from_pytensor(pt.dot(a, b), shapes={"a": (2, 3), "b": (4, 5)})
    with pytest.raises(TypeError, match=r"outputs\[0\] is a int"):
        gp.from_pytensor([3])


def test_a_compiled_function_graph_imports_and_evaluates_too():
    x, y, params, loss = seed_network(SMALL)
    joint = pytensor.grad(loss, params)
    function = pytensor.function([x, y], joint)  # PyTensor's default mode: fused, in place
    graph = function.maker.fgraph
    xv, yv = data(SMALL, 9)
    imported = gp.from_pytensor(graph.outputs, shapes={x: xv.shape, y: yv.shape})
    assert len(op_nodes(imported.outputs)) == len(graph.apply_nodes)
    assert sum(ga.cost.is_matmul(n) for n in op_nodes(imported.outputs)) == gp.matmul_count(graph.apply_nodes)
    assert "pytensor.Elemwise{composite}" in imported.evaluated_by_pytensor  # fused elementwise: PyTensor's perform
    for got, want in zip(ga.evaluate(imported.outputs, imported.feed({x: xv, y: yv})), function(xv, yv)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)


def test_unknown_values_in_shapes_are_errors_naming_the_op():
    x = pt.vector("x", shape=(6,))
    n = pt.iscalar("n")
    with pytest.raises(ga.ShapeError, match=r"pytensor.Subtensor.*value of input 1 \(a slice bound\)"):
        gp.from_pytensor(x[:n], shapes={"n": ()})


# --- what the issue asks to show -----------------------------------------------------------------------


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


def test_graphaudit_merge_removes_every_node_pytensors_merge_optimizer_removes():
    x, y, params, loss = seed_network(SMALL)
    separate, joint = both_forms(loss, params)
    for outputs in (separate, joint):
        imported = gp.from_pytensor(outputs, shapes={"x": (9, SMALL[0]), "y": (9,)})
        ours = ga.merge(imported.outputs)
        theirs = gp.merge_optimizer(outputs)
        assert ours.nodes_before == len(apply_nodes(outputs))  # the same graph, counted the same way
        assert ours.removed >= ours.nodes_before - theirs["nodes"]
        assert theirs["merged"], "MergeOptimizer found nothing to merge: the test would prove nothing"
        for removed, kept in theirs["merged"]:  # every merge PyTensor makes, graphaudit makes too
            for a, b in zip(removed.outputs, kept.outputs):
                assert ours.mapping[imported.node(a)] is ours.mapping[imported.node(b)]


def test_seed_mlp_duplicated_matmul_flops_equal_the_hand_count():
    x, y, params, loss = seed_network(SEED_WIDTHS, shared=False, dtype="float32")
    n, d = SEED_BATCH, SEED_WIDTHS
    report = gp.audit(loss, params, shapes={"x": (n, d[0]), "y": (n,)}, repeats=1)
    layers = range(1, len(d))
    input_gradient = {j: 2 * n * d[j] * d[j - 1] for j in layers if j >= 2}
    hand = sum((2 * (j - 1) - 1) * flops for j, flops in input_gradient.items())
    assert report.duplicated["matmul_flops"] == hand
    assert report.duplicated["by_op"]["pytensor.Dot"]["flops"] == hand
    assert report.duplicated["by_op"]["pytensor.Dot"]["nodes"] == sum(2 * (j - 1) - 1 for j in input_gradient)
    forward = sum(2 * n * d[j - 1] * d[j] for j in layers)
    weight_gradients = forward  # dW_j = h_(j-1)^T @ g_j: the same multiply-adds as the forward product
    assert report.forms["joint"].cost.matmul_flops == forward + weight_gradients + sum(input_gradient.values())
    assert report.forms["separate_merged"].cost.matmul_flops == report.forms["joint"].cost.matmul_flops
    assert report.forms["separate"].cost.matmul_flops == report.forms["joint"].cost.matmul_flops + hand
    assert report.merged_equals_joint


def test_audit_report_with_compile_check(small_audit):
    report, (x, y, params, loss) = small_audit
    separate, joint = both_forms(loss, params)
    check = report.framework["compile_check"]
    rows = {row["graph"].split(" (")[0]: row for row in check["rows"]}
    assert set(rows) == {"as built", "graphaudit merge", "PyTensor MergeOptimizer", "PyTensor compile"}
    for form, outputs in (("separate", separate), ("joint", joint)):
        applies = apply_nodes(outputs)
        assert rows["as built"][form] == {"nodes": len(applies), "dots": gp.matmul_count(applies), "seconds": None}
        assert report.forms[form].cost.nodes == len(applies)
        theirs = gp.merge_optimizer(outputs)
        assert rows["PyTensor MergeOptimizer"][form]["nodes"] == theirs["nodes"]
        assert rows["graphaudit merge"][form]["nodes"] == report.forms[f"{form}_merged"].cost.nodes <= theirs["nodes"]
        assert check["merges_graphaudit_missed"][form] == 0
        assert check["merge_optimizer_merges"][form] == len(theirs["merged"])
        compiled = pytensor.function([x, y], outputs, on_unused_input="ignore").maker.fgraph.apply_nodes
        assert rows["PyTensor compile"][form]["nodes"] == len(compiled)
        assert rows["PyTensor compile"][form]["dots"] == gp.matmul_count(compiled)
    # merge(separate) is the joint graph less the joint form's own duplicates
    assert report.forms["separate_merged"].cost.nodes == report.forms["joint"].cost.nodes - report.joint_duplicates["nodes"]
    assert report.merged_equals_joint
    text = report.to_text()
    assert "what PyTensor's compiler gets back (op nodes / matmuls):" in text
    assert re.search(r"PyTensor MergeOptimizer\s+(\d+) / (\d+)", text).groups() == tuple(
        str(rows["PyTensor MergeOptimizer"]["separate"][k]) for k in ("nodes", "dots"))
    assert "MergeOptimizer's merges that graphaudit's merge does not make: separate 0 of" in text


def test_build_time_statistics_and_deterministic_dict(small_audit):
    report, (x, y, params, loss) = small_audit
    build = report.framework["build_seconds"]
    assert build["repeats"] == 3 and build["calls"] == {"joint": 1, "separate": len(params)}
    for form in ("joint", "separate"):
        s = build[form]
        assert 0 < s["min"] <= s["q1"] <= s["median"] <= s["q3"] <= s["max"] and s["stdev"] >= 0
        assert report.forms[form].build_seconds == s["median"]
    assert build["separate_over_joint"] == pytest.approx(build["separate"]["median"] / build["joint"]["median"])
    assert "time to build the symbolic gradients, 3 builds of each form" in report.to_text()
    again = gp.audit(loss, params, shapes={"x": (9, SMALL[0]), "y": (9,)}, repeats=1)
    quiet = report.to_dict(timings=False)
    assert quiet["framework"]["build_seconds"]["joint"]["median"] is None
    assert quiet["framework"]["build_seconds"]["calls"]["separate"] == len(params)
    assert all(row[f]["seconds"] is None for row in quiet["framework"]["compile_check"]["rows"] for f in ("separate", "joint"))
    quiet.pop("framework")
    other = again.to_dict(timings=False)
    other.pop("framework")
    assert json.dumps(quiet, sort_keys=True) == json.dumps(other, sort_keys=True)


def test_audit_rejects_bad_arguments():
    x, y, params, loss = seed_network(SMALL)
    with pytest.raises(ValueError, match="floating-point scalar"):
        gp.audit(x, params)
    with pytest.raises(ValueError, match="wrt is empty"):
        gp.audit(loss, [])
    with pytest.raises(TypeError, match=r"audit: wrt\[0\] is a str"):
        gp.audit(loss, ["W1"])
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        gp.audit(loss, params, shapes={"x": (2, SMALL[0]), "y": (2,)}, repeats=0)


# --- packaging -------------------------------------------------------------------------------------


def _python(code, **env):
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=120)


def test_pytensor_is_imported_lazily_with_a_clear_message_when_missing():
    lazy = _python("import sys, graphaudit, graphaudit.frontends.pytensor; print('pytensor' in sys.modules)")
    assert lazy.returncode == 0 and lazy.stdout.strip() == "False", lazy.stderr
    missing = _python(
        "import sys; sys.modules['pytensor'] = None\n"
        "from graphaudit.frontends import pytensor as gp\n"
        "try:\n    gp.from_pytensor([])\nexcept ImportError as e:\n    print(type(e).__name__, e)"
    )
    assert "MissingFrameworkError" in missing.stdout and "pip install 'graphaudit[pytensor]'" in missing.stdout


def test_report_and_dot_are_the_same_in_a_fresh_process_with_another_hash_seed():
    code = (
        "import sys; sys.path.insert(0, 'tests')\n"
        "from test_frontend_pytensor import seed_network, SMALL\n"
        "from graphaudit.frontends import pytensor as gp\n"
        "x, y, params, loss = seed_network(SMALL)\n"
        "report = gp.audit(loss, params, shapes={'x': (3, SMALL[0]), 'y': (3,)}, repeats=1)\n"
        "print(report.to_json(timings=False)); print(report.to_dot('merged')); print(report.to_dot('separate'))"
    )
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": seed}) for seed in ("1", "2")]
    assert all(run.returncode == 0 for run in runs), runs[0].stderr + runs[1].stderr
    assert runs[0].stdout == runs[1].stdout and "pytensor.Dot" in runs[0].stdout and "digraph" in runs[0].stdout


def test_example_prints_the_seed_table_beside_the_audit():
    widths, batch = (6, 5, 4, 3, 2), 4
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "pytensor_seed.py"), "--widths", ",".join(map(str, widths)),
         "--batch", str(batch), "--reps", "3", "--compile-check"],
        capture_output=True, text=True, env=env, timeout=120, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    x, y, params, loss = seed_network(widths, dtype="float32")
    separate, joint = both_forms(loss, params)
    assert re.search(rf"one joint call over all {len(params)} parameters\s+\|\s+[\d.]+ s\s+\|\s+[\d.]+ s", out), out
    assert re.search(rf"{len(params)} separate calls\s+\|\s+[\d.]+ s\s+\|\s+[\d.]+ s", out), out
    assert re.search(r"separate / joint: [\d.]+x \(means\), [\d.]+x \(medians\)", out), out
    assert re.search(rf"^separate\s+{len(apply_nodes(separate))}\s", out, re.MULTILINE), out
    assert re.search(rf"^joint\s+{len(apply_nodes(joint))}\s", out, re.MULTILINE), out
    assert "what PyTensor's compiler gets back" in out
