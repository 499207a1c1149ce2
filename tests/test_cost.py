"""cost: FLOPs and bytes from shapes, against hand counts."""

import graphaudit as ga
from graphaudit.cost import node_bytes, node_flops, total_cost


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
    from graphaudit.cost import ClassCosts, merge_costs

    model = ga.models.residual_mlp(depth=3, width=4, batch=2)
    separate = [ga.grad(model.loss, p) for p in model.params]
    result = ga.merge(separate)
    costs = ClassCosts(result)
    assert len(costs.first) == result.nodes_after  # one cost-rule evaluation per merged operation
    original, merged = merge_costs(result, costs)
    assert original == total_cost(ga.topological_order(separate))
    assert merged == total_cost(result.order)
