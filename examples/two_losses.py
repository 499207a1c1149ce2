"""Two losses on one trunk: gradients taken separately and summed, vs the gradient of the sum.

``grad(loss_a, params)`` and ``grad(loss_b, params)`` each run the backward pass through
the shared trunk; ``grad(loss_a + loss_b, params)`` runs it once with summed adjoints.
``audit_graph`` shows what merging recovers from the first form (the two trunk passes
carry different adjoints, so most of the trunk's backward work is not a duplicate).

    python examples/two_losses.py --depth 4 --width 32 --batch 16
"""

import argparse

import numpy as np

import graphaudit as ga


def build(depth: int = 4, width: int = 32, batch: int = 16):
    """``(summed separate grads, grad of the sum, params, feed)`` for a two-headed MLP."""
    x = ga.placeholder("x", (batch, width), "float64")
    labels = ga.placeholder("labels", (batch,), "int64")
    target = ga.placeholder("target", (batch, 1), "float64")
    h, params = x, []
    for layer in range(1, depth + 1):
        w = ga.parameter(f"w{layer}", (width, width), "float64")
        params.append(w)
        h = ga.tanh(h @ w)
    head_a = ga.parameter("head_a", (width, 10), "float64")
    head_b = ga.parameter("head_b", (width, 1), "float64")
    params += [head_a, head_b]
    loss_a = ga.models.nll_loss(h @ head_a, labels)
    loss_b = ga.mean((h @ head_b - target) ** 2)
    grads_a = ga.grad(loss_a, params, disconnected="zero")
    grads_b = ga.grad(loss_b, params, disconnected="zero")
    summed = [a + b for a, b in zip(grads_a, grads_b)]
    of_sum = ga.grad(loss_a + loss_b, params)
    rng = np.random.default_rng(0)
    feed = {x: rng.standard_normal((batch, width)), labels: rng.integers(0, 10, batch),
            target: rng.standard_normal((batch, 1))}
    for p in params:
        feed[p] = rng.standard_normal(p.shape) / np.sqrt(p.shape[0])
    return summed, of_sum, params, feed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    summed, of_sum, params, feed = build(args.depth, args.width, args.batch)
    report = ga.audit_graph(summed)
    print(report)
    sum_cost = ga.total_cost(ga.topological_order(of_sum))
    print(f"\ngrad of the sum: {sum_cost.nodes} nodes, {sum_cost.flops} FLOPs "
          f"(summed separate grads, merged: {report.merged.cost.nodes} nodes, "
          f"{report.merged.cost.flops} FLOPs)")
    gap = max(np.max(np.abs(a - b)) for a, b in zip(ga.evaluate(summed, feed), ga.evaluate(of_sum, feed)))
    print(f"max |summed - grad of sum| = {gap:.3g}")


if __name__ == "__main__":
    main()
