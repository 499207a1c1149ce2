"""A Jacobian computed row by row: one grad call per output element.

Each row's backward pass differentiates the same hidden layers, so every row rebuilds
the same forward-derivative terms (``1 - h*h`` of each tanh, the products through the
weights). ``audit_graph`` shows how much of that merging removes.

    python examples/jacobian_rows.py --inputs 64 --hidden 128 --outputs 16
"""

import argparse

import numpy as np

import graphaudit as ga


def build(inputs: int = 64, hidden: int = 128, outputs: int = 16):
    """The rows of d y / d x for ``y = tanh(tanh(x @ w1) @ w2)``, and a feed."""
    x = ga.parameter("x", (1, inputs), "float64")
    w1 = ga.placeholder("w1", (inputs, hidden), "float64")
    w2 = ga.placeholder("w2", (hidden, outputs), "float64")
    y = ga.tanh(ga.tanh(x @ w1) @ w2)
    rows = [ga.grad(y[0, i], x) for i in range(outputs)]
    rng = np.random.default_rng(0)
    feed = {
        x: rng.standard_normal((1, inputs)),
        w1: rng.standard_normal((inputs, hidden)) / np.sqrt(inputs),
        w2: rng.standard_normal((hidden, outputs)) / np.sqrt(hidden),
    }
    return rows, feed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--outputs", type=int, default=16)
    args = parser.parse_args()
    rows, feed = build(args.inputs, args.hidden, args.outputs)
    report = ga.audit_graph(rows)
    print(report)
    merged = report.merges["original"]
    same = all(np.array_equal(a, b) for a, b in zip(ga.evaluate(rows, feed), ga.evaluate(merged.outputs, feed)))
    print(f"\nmerged rows equal the original rows bit for bit: {same}")


if __name__ == "__main__":
    main()
