"""cost: FLOPs and bytes from shapes, against hand counts."""

import numpy as np

import graphaudit as ga
from graphaudit.analysis.cost import node_bytes, node_flops, total_cost


def test_matmul_is_two_m_k_n():
    a = ga.placeholder("a", (5, 7))
    b = ga.placeholder("b", (7, 3))
    assert node_flops(a @ b) == 2 * 5 * 7 * 3


def test_batched_matmul_counts_every_product_of_the_batch():
    a = ga.placeholder("a", (4, 1, 5, 7))
    b = ga.placeholder("b", (6, 7, 3))
    assert node_flops(a @ b) == 4 * 6 * 2 * 5 * 7 * 3


def test_elementwise_reduction_and_data_movement():
    x = ga.placeholder("x", (6, 4))
    assert node_flops(ga.exp(x)) == 24
    assert node_flops(x + ga.placeholder("b", (4,))) == 24
    assert node_flops(ga.sum(x, axis=1)) == 24
    assert node_flops(ga.transpose(x)) == 0
    assert node_flops(ga.reshape(x, (24,))) == 0
    assert node_flops(x) == 0


def test_bytes_are_what_an_operation_writes():
    x = ga.placeholder("x", (6, 4), "float64")
    assert node_bytes(ga.exp(x)) == 6 * 4 * 8
    assert node_bytes(ga.cast(x, "float32")) == 6 * 4 * 4
    assert node_bytes(x) == 0


def test_views_write_nothing():
    """transpose, reshape, broadcast and basic slices are views of their input: 0 bytes, and still 0 FLOPs."""
    x = ga.placeholder("x", (6, 4), "float64")
    views = [ga.transpose(x), ga.reshape(x, (24,)), ga.broadcast_to(x, (2, 6, 4)), x[1:3], x[2]]
    assert [node_bytes(v) for v in views] == [0, 0, 0, 0, 0]
    copies = [ga.concat([x, x]), x[ga.arange(6), ga.constant(np.zeros(6, np.int64))], x[1:3] * 2.0]
    assert [node_bytes(c) for c in copies] == [12 * 4 * 8, 6 * 8, 2 * 4 * 8]
    product = ga.transpose(x) @ x  # (4, 6) @ (6, 4): only the product's 4x4 result is written
    cost = total_cost(ga.topological_order([product]))
    assert cost.bytes == 4 * 4 * 8 and cost.flops == 2 * 4 * 6 * 4 and cost.nodes == 2


def test_seed_bytes_count_no_transposed_weights():
    """Each layer's backward transposes its weight (a view); the bytes are the written activations only."""
    widths, batch = (6, 5, 4, 3), 2
    model = ga.models.seed_mlp(batch=batch, widths=widths)
    joint = ga.grad(model.loss, model.params)
    order = [n for n in ga.topological_order(joint) if not n.is_leaf]
    written = sum(n.size * n.dtype.itemsize for n in order if n.op not in ("transpose", "reshape", "broadcast_to", "slice"))
    assert any(n.op == "transpose" for n in order)
    assert total_cost(order).bytes == written


def test_total_cost_of_the_seed_forward_pass_matches_the_hand_count():
    widths, batch = (16384, 5000, 3000, 512, 40), 128
    model = ga.models.seed_mlp(batch=batch, widths=widths)
    cost = total_cost(ga.topological_order([model.loss]))
    forward_matmul = sum(2 * batch * a * b for a, b in zip(widths, widths[1:]))
    assert cost.matmul_flops == forward_matmul
    assert cost.backward_nodes == 0 and cost.backward_flops == 0
    elementwise = sum(2 * batch * b for b in widths[1:-1])  # bias add + sigmoid per hidden layer
    head = batch * widths[-1] * (1 + 5 + 1)  # bias add, softmax, log
    loss = batch + 1  # mean over the picked entries, then negate
    assert cost.flops == forward_matmul + elementwise + head + loss


def test_merge_costs_equal_total_cost_of_the_original_and_the_merged_graph():
    from graphaudit.analysis.cost import MergedNodeCosts, merge_costs

    model = ga.models.residual_mlp(depth=3, width=4, batch=2)
    separate = [ga.grad(model.loss, p) for p in model.params]
    result = ga.merge(separate)
    costs = MergedNodeCosts(result)
    assert len(costs.first) == result.nodes_after  # one cost-rule evaluation per merged operation
    original, merged = merge_costs(result, costs)
    assert original == total_cost(ga.topological_order(separate))
    assert merged == total_cost(result.order)
