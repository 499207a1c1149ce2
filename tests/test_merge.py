"""merge: value numbering, and digests as its export form."""

import json
import subprocess
import sys

import numpy as np
import pytest

import graphaudit as ga
from graphaudit.analysis.merge import digests, merge


def op_count(outputs):
    return sum(1 for n in ga.topological_order(outputs) if not n.is_leaf)


def small_separate(model):
    return [ga.grad(model.loss, p) for p in model.params]


def test_equal_subexpressions_merge_and_values_stay_bit_identical():
    x = ga.placeholder("x", (3, 4), "float64")
    w = ga.parameter("w", (4, 2), "float64")
    a = ga.sigmoid(x @ w)
    b = ga.sigmoid(x @ w)  # the same expression, built twice
    out = [ga.sum(a * 2.0), ga.sum(b * 2.0)]
    result = merge(out)
    assert result.nodes_before == op_count(out) == 8
    assert result.nodes_after == op_count(result.outputs) == 4
    assert result.outputs[0] is result.outputs[1]
    rng = np.random.default_rng(1)
    feed = {x: rng.standard_normal((3, 4)), w: rng.standard_normal((4, 2))}
    for original, merged in zip(ga.evaluate(out, feed), ga.evaluate(result.outputs, feed)):
        assert np.array_equal(original, merged)


def test_merge_is_idempotent_and_never_grows():
    model = ga.models.deep_chain(depth=5, width=4, batch=3)
    outputs = small_separate(model)
    once = merge(outputs)
    twice = merge(once.outputs)
    assert once.nodes_after <= once.nodes_before
    assert twice.nodes_before == twice.nodes_after == once.nodes_after
    assert not twice.duplicates
    assert all(a is b for a, b in zip(once.outputs, twice.outputs))


def test_merge_mutates_nothing():
    model = ga.models.deep_chain(depth=3, width=4, batch=3)
    outputs = small_separate(model)
    before = [(n, n.inputs, n.op, n.attrs) for n in ga.topological_order(outputs)]
    merge(outputs)
    after = [(n, n.inputs, n.op, n.attrs) for n in ga.topological_order(outputs)]
    assert before == after


def test_impure_ops_are_never_merged():
    a = ga.uniform((3,), key=7)
    b = ga.uniform((3,), key=7)
    result = merge([a + 1.0, b + 1.0])
    assert result.outputs[0] is not result.outputs[1]
    assert result.nodes_after == result.nodes_before == 4
    da, db = digests([a, b]).values()
    assert da != db


@pytest.fixture
def draw_ops():
    """Two imported ops that draw a mask the shape of their input: one always random, one
    deterministic when its ``p`` is 0 (as attention with dropout probability 0 is)."""
    from graphaudit.core.ops import OPS
    from graphaudit.core.ops.registry import define_imported, elementwise_cost

    saved = dict(OPS)
    define_imported("test.draw", kind="random", cost=elementwise_cost, pure=False)
    define_imported("test.dropout", kind="random", cost=elementwise_cost, pure=False,
                    pure_when=lambda node: node.attr("p") == 0)
    yield
    OPS.clear()
    OPS.update(saved)


def imported(op, inputs, **attrs):
    from graphaudit.frontends.common import imported_node

    return imported_node(op, inputs, list(attrs.items()), inputs[0].shape, inputs[0].dtype, call=None)


def test_copies_merging_makes_of_one_draw_are_that_one_draw(draw_ops):
    # A forward pass where the draw reads one of two equal views (x @ w on a 3-D x views x once per
    # product): merging each gradient form rebuilds the draw over the merged view. The two copies
    # are the one draw the program makes, so the merged forms merge with each other.
    x = ga.placeholder("x", (3, 4), "float64")
    first, second = ga.reshape(x, (12,)), ga.reshape(x, (12,))
    drawn = imported("test.draw", [second])
    forward = drawn * first
    separate, joint = [ga.sum(forward * 2.0)], [ga.sum(forward * 2.0)]
    merged_separate, merged_joint = merge(separate), merge(joint)
    copies = [n for m in (merged_separate, merged_joint) for n in ga.topological_order(m.outputs)
              if n.op == "test.draw"]
    assert len(copies) == 2 and copies[0] is not copies[1] and copies[0].draw is copies[1].draw is drawn
    both = merge(merged_separate.outputs + merged_joint.outputs)
    assert both.outputs[0] is both.outputs[1]
    assert sum(n.op == "test.draw" for n in ga.topological_order(both.outputs)) == 1
    report = ga.compare_forms(separate, joint, wrt=["x"])
    assert report.merged_equals_joint
    digest = digests(copies)
    assert digest[copies[0]] == digest[copies[1]]


def test_two_draws_over_equal_inputs_stay_two(draw_ops):
    x = ga.placeholder("x", (5,), "float64")
    a, b = imported("test.draw", [ga.exp(x)]), imported("test.draw", [ga.exp(x)])
    result = merge([a + 1.0, b + 1.0])
    assert result.outputs[0] is not result.outputs[1]
    assert result.nodes_before - result.nodes_after == 1  # only exp(x)
    digest = digests([a, b])
    assert digest[a] != digest[b]
    again = merge(result.outputs)  # copies of copies keep their draw: still two
    assert again.outputs[0] is not again.outputs[1]


def test_purity_is_decided_per_call_where_the_arguments_decide_it(draw_ops):
    x = ga.placeholder("x", (5,), "float64")
    deterministic = [imported("test.dropout", [x], p=0.0) for _ in range(2)]
    random = [imported("test.dropout", [x], p=0.5) for _ in range(2)]
    merged = merge(deterministic + random).outputs
    assert merged[0] is merged[1]
    assert merged[2] is not merged[3]


@pytest.mark.parametrize(
    "left, right",
    [(0.0, -0.0), (1, 1.0), (np.float32(1), np.float64(1)), (np.zeros(2), np.zeros(3))],
)
def test_constants_that_differ_in_dtype_shape_or_bytes_stay_apart(left, right):
    x = ga.placeholder("x", (2,), "float64")
    out = [x * ga.constant(left), x * ga.constant(right)] if np.ndim(left) == 0 else [
        ga.sum(ga.constant(left)), ga.sum(ga.constant(right))]
    result = merge(out)
    assert result.outputs[0] is not result.outputs[1]


def test_nan_constants_merge_by_their_bytes():
    quiet = np.array(np.nan)
    payload = np.frombuffer((quiet.view(np.uint64) | np.uint64(1)).tobytes(), dtype=np.float64)[0]
    x = ga.placeholder("x", (), "float64")
    same = merge([x + ga.constant(np.nan), x + ga.constant(np.nan)])
    assert same.outputs[0] is same.outputs[1]
    other = merge([x + ga.constant(np.nan), x + ga.constant(payload)])
    assert other.outputs[0] is not other.outputs[1]


def test_commutative_inputs_merge_only_when_asked():
    a = ga.placeholder("a", (2,), "float64")
    b = ga.placeholder("b", (2,), "float64")
    out = [a + b, b + a, a * b, b * a, a - b, b - a]
    plain = merge(out)
    assert plain.nodes_after == 6
    ordered = merge(out, commutative=True)
    assert ordered.nodes_after == 4  # add and mul merge; sub is not commutative
    feed = {a: np.array([1.5, -2.0]), b: np.array([0.25, 3.0])}
    for original, merged in zip(ga.evaluate(out, feed), ga.evaluate(ordered.outputs, feed)):
        assert np.array_equal(original, merged)


def test_leaves_merge_by_identity_not_by_name():
    a1 = ga.placeholder("a", (2,), "float64")
    a2 = ga.placeholder("a", (2,), "float64")
    result = merge([ga.exp(a1), ga.exp(a2)])
    assert result.outputs[0] is not result.outputs[1]


def test_duplicates_share_the_digest_of_their_canonical_node():
    model = ga.models.residual_mlp(depth=3, width=4, batch=2)
    outputs = small_separate(model)
    result = merge(outputs)
    digest = digests(outputs)
    assert result.duplicates
    merged_digest = digests(result.outputs)
    for duplicate, canonical in result.duplicates.items():
        assert digest[duplicate] == merged_digest[canonical]
    # distinct canonical nodes have distinct digests (no false merges in the export form)
    canonical = [n for n in ga.topological_order(result.outputs)]
    assert len({merged_digest[n] for n in canonical}) == len(canonical)


DIGEST_SCRIPT = """
import graphaudit as ga
from graphaudit.analysis.merge import digests
m = ga.models.seed_mlp()
outs = ga.grad(m.loss, m.params)
d = digests(outs)
print([d[o] for o in outs])
"""


@pytest.mark.subprocess
def test_digests_are_stable_across_processes():
    runs = [
        subprocess.run([sys.executable, "-c", DIGEST_SCRIPT], capture_output=True, text=True, check=True,
                       env={"PYTHONHASHSEED": seed, "PATH": ""}).stdout
        for seed in ("1", "2")
    ]
    assert runs[0] == runs[1] and len(runs[0]) > 100


@pytest.mark.slow
def test_a_million_node_chain_merges_without_recursion():
    x = ga.placeholder("x", (2,), "float64")
    h = x
    for _ in range(200_000):
        h = ga.neg(h)
    twin = x
    for _ in range(200_000):
        twin = ga.neg(twin)
    result = merge([h, twin])
    assert result.outputs[0] is result.outputs[1]
    assert result.nodes_after == 200_000


def reference_classes(outputs, commutative=False):
    """Value numbering the slow, obvious way: node-keyed dicts over topological_order."""
    canonical, by_key = {}, {}
    for node in ga.topological_order(outputs):
        if node.op in ("placeholder", "parameter") or (not node.is_leaf and not ga.core.ops.get_op(node.op).pure):
            canonical[node] = node
            continue
        if node.op == "constant":
            key = ("constant", node.dtype.str, node.shape, node.value.tobytes())
        else:
            ids = [canonical[i].id for i in node.inputs]
            if commutative and ga.core.ops.get_op(node.op).commutative:
                ids.sort()
            key = (node.op, node.attrs, *ids)
        canonical[node] = by_key.setdefault(key, node)
    return canonical


def assert_matches_reference(outputs, commutative=False):
    result = merge(outputs, commutative=commutative)
    reference = reference_classes(outputs, commutative)
    assert result.source == ga.topological_order(outputs)
    position = {node: p for p, node in enumerate(result.source)}
    assert [position[reference[n]] for n in result.source] == result.canonical.tolist()
    assert result.leaf.tolist() == [n.is_leaf for n in result.source]
    for node, merged in result.mapping.items():  # the merged node stands for its class
        canonical = reference[node]
        assert (merged.op, merged.attrs, merged.shape) == (canonical.op, canonical.attrs, canonical.shape)
        assert [result.mapping[i] for i in canonical.inputs] == list(merged.inputs)
    return result


@pytest.mark.parametrize("commutative", [False, True])
def test_positions_and_classes_match_a_plain_dict_value_numbering(commutative):
    model = ga.models.residual_mlp(depth=3, width=4, batch=2)
    a = ga.placeholder("a", (2, 4), "float64")
    wide = [ga.concat([a, a * 2.0, a], axis=0), ga.concat([a, a * 2.0, a], axis=0), a + 2.0, 2.0 + a]
    result = assert_matches_reference(small_separate(model) + wide, commutative)
    assert result.outputs[-4] is result.outputs[-3]  # three inputs: the general path
    assert (result.outputs[-2] is result.outputs[-1]) == commutative


@pytest.mark.parametrize("old_chain", [0, 20_000])
def test_old_nodes_far_below_the_newest_are_found_and_merged(old_chain):
    old = ga.placeholder("old", (3,), "float64")
    for _ in range(old_chain):  # many old nodes: the walk's window grows to take them in
        old = ga.neg(old)
    for _ in range(50_000):  # ids burnt between the old nodes and the new graph: a sparse graph
        ga.core.graph.new_id_mark()
    x = ga.placeholder("x", (3,), "float64")
    out = [ga.exp(old * x), ga.exp(old * x), ga.neg(old)]
    for _ in range(50_000):
        ga.core.graph.new_id_mark()
    out.append(ga.exp(old * x))
    result = assert_matches_reference(out)
    assert result.outputs[0] is result.outputs[1] is result.outputs[3]
    assert result.nodes_after == 3 + old_chain


PLACEMENT_SCRIPT = """
import json, sys
import graphaudit as ga
from graphaudit.analysis.merge import _reachable, merge
runs = []
for burnt in (0, 12_000, 100_000):  # ids burnt before the graph
    for _ in range(burnt):
        ga.core.graph.new_id_mark()
    model = ga.models.deep_chain(depth=4, width=3, batch=2)
    out = [ga.grad(model.loss, p) for p in model.params]
    table = _reachable(out)[1]
    runs.append([type(table).__name__, merge(out).canonical.tolist(), merge(out, commutative=True).canonical.tolist()])
json.dump(runs, sys.stdout)
"""


@pytest.mark.subprocess
def test_merge_is_the_same_wherever_the_graph_sits_among_the_ids():
    # In a new process: a graph from id 0 (swept by ids), one a little above it (swept by
    # offsets, its table padded down to id 0), and one far above it (a dict for a table).
    runs = json.loads(subprocess.run([sys.executable, "-c", PLACEMENT_SCRIPT], capture_output=True, text=True,
                                     check=True).stdout)
    assert [table for table, *_ in runs] == ["list", "list", "dict"]
    out = small_separate(ga.models.deep_chain(depth=4, width=3, batch=2))
    expected = [assert_matches_reference(out, commutative).canonical.tolist() for commutative in (False, True)]
    assert all(classes == expected for _, *classes in runs)


def test_mapping_duplicates_and_copies_agree_with_the_arrays():
    model = ga.models.deep_chain(depth=4, width=3, batch=2)
    result = merge(small_separate(model))
    assert list(result.mapping) == result.source
    assert set(result.duplicates) == {n for p, n in enumerate(result.source) if result.canonical[p] != p}
    for node in result.order:
        assert result.copies(node) == sum(1 for m in result.mapping.values() if m is node)
    assert result.removed == len([n for n in result.duplicates if not n.is_leaf])


def test_merging_an_empty_list_gives_an_empty_result():
    result = merge([])
    assert result.outputs == result.order == result.source == [] and result.nodes_after == 0


def test_a_long_chain_below_the_only_output_is_found():
    x = ga.placeholder("x", (2,), "float64")
    h = x
    for _ in range(100_000):  # all older than the output: the walk's table grows down to them
        h = ga.neg(h)
    out = [ga.exp(h), ga.exp(h)]
    result = merge(out)
    assert result.source == ga.topological_order(out)
    assert result.nodes_before == 100_002 and result.nodes_after == 100_001
