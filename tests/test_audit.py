"""audit and audit_graph: separate vs joint, against hand counts and against evaluation."""

import importlib.util
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import graphaudit as ga

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def mlp_widths(model_name, **size):
    if model_name == "seed":
        return list(size["widths"])
    return [size["width"]] * (size["depth"] + 1) + [10]


def hand_duplicated_matmul_flops(widths, batch):
    """Layer j (from 2) maps widths[j-1] -> widths[j]. Its input-gradient product
    (batch, widths[j]) @ (widths[j], widths[j-1]) is built by each of the 2*(j-1) calls
    for the weights and biases below it; the joint form needs one copy."""
    return sum((2 * (j - 1) - 1) * 2 * batch * widths[j] * widths[j - 1] for j in range(2, len(widths)))


def hand_joint_backward_matmul_flops(widths, batch):
    """One weight-gradient product per layer, one input-gradient product per layer from 2."""
    layers = list(zip(widths, widths[1:]))
    return sum(2 * batch * a * b for a, b in layers) + sum(2 * batch * a * b for a, b in layers[1:])


@pytest.mark.parametrize("batch, widths", [
    (128, (16384, 5000, 3000, 512, 40)),
    (7, (16384, 5000, 3000, 512, 40)),
    (32, (50, 40, 30, 20, 10)),
    (3, (9, 8, 7, 6, 5, 4, 3)),
])
def test_seed_mlp_duplicated_matmul_flops_equal_the_hand_count(batch, widths):
    model = ga.models.seed_mlp(batch=batch, widths=widths)
    report = ga.audit(model.loss, model.params)
    data = report.to_dict()
    assert data["duplicated"]["matmul_flops"] == hand_duplicated_matmul_flops(widths, batch)
    forward = sum(2 * batch * a * b for a, b in zip(widths, widths[1:]))
    joint = data["forms"]["joint"]
    assert joint["matmul_flops"] == forward + hand_joint_backward_matmul_flops(widths, batch)
    assert data["merged_equals_joint"] is True
    merged = data["forms"]["separate_merged"]
    assert merged["flops"] == data["forms"]["joint_merged"]["flops"]
    assert data["forms"]["separate"]["flops"] - merged["flops"] == data["duplicated"]["flops"]
    assert data["forms"]["separate"]["nodes"] - merged["nodes"] == data["duplicated"]["nodes"]


@pytest.mark.parametrize("depth, width, batch", [(1, 4, 2), (4, 8, 3), (16, 32, 64), (40, 5, 2)])
def test_deep_chain_hand_count_and_merged_equals_joint(depth, width, batch):
    model = ga.models.deep_chain(depth=depth, width=width, batch=batch)
    data = ga.audit(model.loss, model.params).to_dict()
    widths = [width] * (depth + 1) + [10]
    assert data["duplicated"]["matmul_flops"] == hand_duplicated_matmul_flops(widths, batch)
    assert data["merged_equals_joint"] is True


@pytest.mark.parametrize("depth", [1, 3, 6])
def test_residual_mlp_merged_equals_joint(depth):
    model = ga.models.residual_mlp(depth=depth, width=6, batch=3)
    report = ga.audit(model.loss, model.params)
    assert report.merged_equals_joint is True
    assert report.duplicated["nodes"] > 0 or depth == 1


def test_each_forward_matmul_rule_runs_once_per_parameter_at_or_below_it():
    widths = (12, 10, 8, 6, 4)
    model = ga.models.seed_mlp(batch=5, widths=widths)
    report = ga.audit(model.loss, model.params)
    rows = report.duplicated["by_forward_node"]
    for j in range(2, len(widths)):
        row = rows[f"matmul_{j}"]
        assert row["calls"] == 2 * j - 1  # w1..wj and b1..b(j-1)
        assert row["rebuilt"] == row["calls"] - 1
    assert "matmul_1" not in rows  # w1's product and x's are built once


def test_top_rows_name_the_input_gradient_products_with_their_copies():
    widths, batch = (12, 10, 8, 6, 4), 5
    model = ga.models.seed_mlp(batch=batch, widths=widths)
    top = ga.audit(model.loss, model.params).duplicated["top"]
    matmuls = [row for row in top if row["op"] == "matmul"]
    assert len(matmuls) == len(widths) - 2
    for row in matmuls:
        j = 1 + next(j for j in range(2, len(widths)) if row["shapes"] == f"{batch}x{widths[j]} @ {widths[j]}x{widths[j-1]}")
        j -= 1
        assert row["copies"] == 2 * (j - 1)
        assert row["wasted_flops"] == (row["copies"] - 1) * 2 * batch * widths[j] * widths[j - 1]
        assert row["expression"] == f"matmul(d(add_{j}), transpose(w{j}))"
        assert len(row["calls"]) == row["copies"]


def test_by_call_attributes_every_duplicate_to_a_later_call():
    model = ga.models.deep_chain(depth=3, width=4, batch=2)
    report = ga.audit(model.loss, model.params)
    by_call = report.duplicated["by_call"]
    assert sum(e["nodes"] for e in by_call.values()) == report.duplicated["nodes"]
    assert sum(e["flops"] for e in by_call.values()) == report.duplicated["flops"]
    assert "grad(cost, [w1])" not in by_call  # the first call builds everything first
    assert list(by_call)[0] == "grad(cost, [b1])"


def forms_evaluate_equal(report, feed):
    """Merged forms give bit-identical values to the forms they were merged from."""
    for name, merge in report.merges.items():
        original = ga.evaluate(report.forms[name].outputs, feed)
        merged = ga.evaluate(merge.outputs, feed)
        assert all(np.array_equal(a, b) for a, b in zip(original, merged)), name


@pytest.mark.parametrize("build", [
    lambda: ga.models.seed_mlp(batch=4, widths=(12, 10, 8, 6, 4)),
    lambda: ga.models.seed_mlp(batch=4, widths=(12, 10, 8, 6, 4), dtype="float64"),
    lambda: ga.models.deep_chain(depth=6, width=5, batch=3),
    lambda: ga.models.residual_mlp(depth=4, width=5, batch=3),
])
def test_merged_forms_evaluate_bit_identical(build):
    model = build()
    report = ga.audit(model.loss, model.params)
    feed = model.make_feed(seed=3)
    forms_evaluate_equal(report, feed)
    joint = ga.evaluate(report.forms["joint"].outputs, feed)
    separate = ga.evaluate(report.forms["separate"].outputs, feed)
    for a, b in zip(joint, separate):
        assert np.array_equal(a, b)  # same ops in the same order: the very same numbers


def test_measure_times_the_forms_and_checks_they_agree():
    model = ga.models.deep_chain(depth=3, width=8, batch=4)
    report = ga.audit(model.loss, model.params, measure=True, feed=model.make_feed(), repeats=2)
    measured = report.to_dict()["measured"]
    assert measured["repeats"] == 2
    assert list(measured["seconds"]) == ["separate", "joint", "separate_merged"]
    assert all(seconds > 0 for seconds in measured["seconds"].values())
    assert measured["versus"] == {"separate": "joint", "separate_merged": "joint"}
    assert measured["max_abs_difference"] == 0.0
    assert set(report.to_dict(timings=False)["measured"]["seconds"].values()) == {None}
    assert "numpy run time (median of 2): separate " in report.to_text()
    assert "numpy run time" in report.to_text()


def test_measure_without_a_feed_is_a_clear_error():
    model = ga.models.deep_chain(depth=2, width=3, batch=2)
    with pytest.raises(ValueError, match="feed"):
        ga.audit(model.loss, model.params, measure=True)


def test_report_dict_has_the_documented_keys_and_is_json():
    model = ga.models.seed_mlp(batch=4, widths=(12, 10, 8, 6, 4))
    report = ga.audit(model.loss, model.params)
    data = json.loads(report.to_json())
    assert data["wrt"] == ["w1", "b1", "w2", "b2", "w3", "b3", "w4", "b4"]
    assert set(data["forms"]) == {"separate", "joint", "separate_merged", "joint_merged"}
    for form in data["forms"].values():
        assert {"nodes", "backward_nodes", "flops", "matmul_flops", "bytes", "build_seconds"} <= set(form)
        assert all(isinstance(form[k], int) for k in ("nodes", "flops", "matmul_flops", "bytes"))
    assert {"nodes", "flops", "matmul_flops", "by_op", "by_call", "by_forward_node", "top"} <= set(data["duplicated"])
    assert data["measured"] is None
    assert data["merged_equals_joint"] is True
    # both forms read the same forward nodes: every forward node the backward pass needs, once
    forms = data["forms"]
    forward = {name: f["nodes"] - f["backward_nodes"] for name, f in forms.items()}
    assert len(set(forward.values())) == 1
    assert forward["separate"] < sum(1 for n in ga.topological_order([model.loss]) if not n.is_leaf)


def test_text_report_shows_the_table_and_the_verdict():
    model = ga.models.seed_mlp(batch=4, widths=(12, 10, 8, 6, 4))
    text = str(ga.audit(model.loss, model.params))
    for word in ("separate merged", "joint merged", "merge(separate) == merge(joint): yes",
                 "top duplicated subexpressions", "matmul(d(add_3), transpose(w3))"):
        assert word in text


REPORT_SCRIPT = """
import graphaudit as ga
m = ga.models.seed_mlp()
print(ga.audit(m.loss, m.params).to_json(timings=False))
"""


@pytest.mark.subprocess
def test_report_json_is_identical_across_processes_and_hash_seeds():
    outputs = [
        subprocess.run([sys.executable, "-c", REPORT_SCRIPT], capture_output=True, text=True, check=True,
                       env={"PYTHONHASHSEED": seed, "PATH": ""}).stdout
        for seed in ("0", "12345")
    ]
    assert outputs[0] == outputs[1]
    assert json.loads(outputs[0])["duplicated"]["nodes"] > 0


def load_example(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_jacobian_rows_rebuild_the_same_forward_derivative_terms():
    rows, feed = load_example("jacobian_rows").build(inputs=6, hidden=5, outputs=4)
    report = ga.audit_graph(rows)
    by_op = report.duplicated["by_op"]
    others = len(rows) - 1
    tanh_layers = 2
    assert by_op["sub"]["nodes"] == tanh_layers * others  # 1 - h*h of each tanh, once per row
    assert by_op["transpose"]["nodes"] == tanh_layers * others  # transpose of each weight
    assert "matmul" not in by_op  # the products carry row-specific adjoints
    forms_evaluate_equal(report, feed)


def test_two_losses_summed_separately_merge_to_a_correct_graph():
    summed, of_sum, params, feed = load_example("two_losses").build(depth=3, width=6, batch=4)
    report = ga.audit_graph(summed)
    assert report.duplicated["nodes"] > 0
    assert report.kind == "graph" and set(report.forms) == {"original", "original_merged"}
    forms_evaluate_equal(report, feed)
    for a, b in zip(ga.evaluate(summed, feed), ga.evaluate(of_sum, feed)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_audit_graph_of_a_graph_without_duplicates_reports_none():
    x = ga.placeholder("x", (3,), "float64")
    report = ga.audit_graph([ga.exp(x) + 1.0])
    assert report.duplicated["nodes"] == 0 and report.duplicated["top"] == []
    assert report.forms["original"].cost == report.merged.cost


def reference_duplicated_work(order, result, names):
    """Duplicated work counted node by node, as the report defines it (no top list)."""
    from graphaudit.analysis.cost import is_matmul, node_bytes, node_flops
    from graphaudit.analysis.duplicates import _call_key

    dups = [n for n in order if n in result.duplicates and not n.is_leaf]
    totals = {"nodes": len(dups), "flops": sum(map(node_flops, dups)),
              "matmul_flops": sum(node_flops(n) for n in dups if is_matmul(n)), "bytes": sum(map(node_bytes, dups))}
    by_op, by_call, call_keys = {}, {}, {}
    for n in dups:
        entry = by_op.setdefault(n.op, {"nodes": 0, "flops": 0, "bytes": 0})
        entry["nodes"] += 1
        entry["flops"] += node_flops(n)
        entry["bytes"] += node_bytes(n)
        entry = by_call.setdefault(_call_key(n.call, call_keys), {"nodes": 0, "flops": 0, "matmul_flops": 0})
        entry["nodes"] += 1
        entry["flops"] += node_flops(n)
        entry["matmul_flops"] += node_flops(n) if is_matmul(n) else 0
    calls, cost = {}, {}
    for n in order:
        if n.origin is not None and not n.is_leaf:
            calls.setdefault(n.origin, set()).add(n.call.index)
            if n in result.duplicates:
                entry = cost.setdefault(n.origin, [0, 0])
                entry[0] += 1
                entry[1] += node_flops(n)
    by_forward = {ga.core.describe.name_of(o, names): {"op": o.op, "shape": list(o.shape), "calls": len(calls[o]),
                                                  "rebuilt": len(calls[o]) - 1, "nodes": c[0], "flops": c[1],
                                                  "source": None}  # no sources given
                  for o, c in cost.items()}
    return {**totals, "by_op": by_op, "by_call": by_call, "by_forward_node": by_forward}


@pytest.mark.parametrize("build", [lambda: ga.models.residual_mlp(depth=3, width=4, batch=2),
                                   lambda: ga.models.deep_chain(depth=5, width=3, batch=2)])
def test_duplicated_work_on_positions_equals_the_node_by_node_count(build):
    from graphaudit.core.describe import forward_names
    from graphaudit.analysis.duplicates import duplicated_work

    model = build()
    separate = [ga.grad(model.loss, p) for p in model.params]
    result = ga.merge(separate)
    names = forward_names(ga.topological_order([model.loss]))
    found = duplicated_work(result, names)
    expected = reference_duplicated_work(result.source, result, names)
    assert list(found["by_call"].items()) == list(expected["by_call"].items())  # same order, too
    assert found["by_op"] == expected["by_op"] and found["by_forward_node"] == expected["by_forward_node"]
    assert {k: found[k] for k in ("nodes", "flops", "matmul_flops", "bytes")} == {
        k: expected[k] for k in ("nodes", "flops", "matmul_flops", "bytes")}


# --- the verdict on merge(separate) == merge(joint) --------------------------------------------------


def small_mlp_forms():
    model = ga.models.seed_mlp(batch=4, widths=(12, 10, 8, 6, 4))
    names = [p.name for p in model.params]
    return ga.separate_grads(model.loss, model.params), ga.grad(model.loss, model.params), names


def merged_line(report):
    return next(line for line in report.to_text().splitlines() if line.startswith("merge(separate) == merge(joint)"))


def test_equal_merged_forms_have_no_difference():
    separate, joint, names = small_mlp_forms()
    report = ga.compare_forms(separate, joint, wrt=names)
    assert report.merged_equals_joint is True
    assert report.to_dict()["merged_difference"] == {"separate_only": 0, "joint_only": 0, "flops": 0, "bytes": 0,
                                                     "views": 0, "ops": {}}
    assert merged_line(report) == "merge(separate) == merge(joint): yes"


def test_merged_forms_that_differ_by_a_view_are_equal_but_for_it():
    separate, joint, names = small_mlp_forms()
    # the separate call for w1 hands its gradient back through a reshape to its own shape (as an importer may)
    separate[0] = ga.reshape(separate[0], separate[0].shape)
    report = ga.compare_forms(separate, joint, wrt=names)
    assert report.merged_equals_joint is False
    assert report.to_dict()["merged_difference"] == {
        "separate_only": 1, "joint_only": 0, "flops": 0, "bytes": 0, "views": 1,
        "ops": {"reshape": {"separate_only": 1, "joint_only": 0}}}
    assert merged_line(report) == ("merge(separate) == merge(joint): equal but for 1 view, 0 FLOP "
                                   "(reshape x1 only in the separate)")
    # the merged forms still cost the same
    costs = {name: report.forms[name].cost for name in ("separate_merged", "joint_merged")}
    assert costs["separate_merged"].nodes == costs["joint_merged"].nodes + 1
    assert (costs["separate_merged"].flops, costs["separate_merged"].bytes) == (costs["joint_merged"].flops,
                                                                                costs["joint_merged"].bytes)


def test_merged_forms_that_differ_by_work_are_not_equal():
    separate, joint, names = small_mlp_forms()
    w1 = joint[0]
    joint[0] = w1 + w1  # one more elementwise add: w1.size FLOPs, w1.size floats written
    separate[1] = ga.transpose(ga.transpose(separate[1]))  # and two views in the separate form
    report = ga.compare_forms(separate, joint, wrt=names)
    assert report.merged_equals_joint is False
    difference = report.to_dict()["merged_difference"]
    assert difference == {"separate_only": 2, "joint_only": 1, "flops": w1.size, "bytes": w1.size * w1.dtype.itemsize,
                          "views": 2, "ops": {"add": {"separate_only": 0, "joint_only": 1},
                                              "transpose": {"separate_only": 2, "joint_only": 0}}}
    flops, written = ga.core.describe.si(w1.size, "FLOP"), ga.core.describe.si(w1.size * w1.dtype.itemsize, "B")
    assert merged_line(report) == (f"merge(separate) == merge(joint): NO: 2 nodes only in the separate (transpose x2), "
                                   f"1 only in the joint (add x1); {flops} and {written} between them")


def test_merged_forms_with_the_same_nodes_in_other_places_are_not_equal():
    separate, joint, names = small_mlp_forms()
    report = ga.compare_forms(separate, [joint[1], joint[0], *joint[2:]], wrt=names)
    assert report.merged_equals_joint is False and report.to_dict()["merged_difference"]["separate_only"] == 0
    assert merged_line(report).endswith("NO: the same nodes, but the gradients are different ones of them")


def test_reports_without_both_merged_forms_have_no_difference():
    model = ga.models.seed_mlp(batch=4, widths=(12, 10, 8, 6, 4))
    assert ga.audit(model.loss, model.params, materialize=False).to_dict()["merged_difference"] is None
    assert ga.audit_graph(model.loss).to_dict()["merged_difference"] is None
