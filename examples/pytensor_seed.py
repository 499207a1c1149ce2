"""The seed experiment (docs/seed.md) in PyTensor, Theano's successor, then graphaudit's audit of it.

The seed's program, written afresh: shared float32 weights, sigmoid layers
16384 -> 5000 -> 3000 -> 512, softmax over 40 classes, and the loss
-mean(log(softmax(h @ W4 + b4))[arange(n), y]). It builds the symbolic gradients both ways,
one pytensor.grad(loss, params) call and one pytensor.grad(loss, [p]) call per parameter,
--reps times each, and prints the seed's table (mean and std of the build time, plus median
and quartiles), then graphaudit's audit of the two forms, imported from PyTensor.
--compile-check adds what PyTensor's own MergeOptimizer and its default compile rewrites keep
of each form.

The weights hold zeros made by np.zeros and shared with borrow=True: the operating system
hands out such pages lazily, so even the seed's 328 MB W1 costs nothing until it is read,
and nothing here reads it. The batch size (--batch) is only needed by the audit, which
must know the shapes; building the gradients does not depend on it.

    python examples/pytensor_seed.py
    python examples/pytensor_seed.py --reps 20 --compile-check
    python examples/pytensor_seed.py --widths 6,5,4,3,2 --batch 4 --reps 5 --compile-check
"""

from __future__ import annotations

import argparse

import numpy as np
from seed_mlp import widths_arg  # the same --widths as examples/seed_mlp.py


def seed_network(widths, dtype="float32"):
    """``(x, y, params, loss)``: the seed's network as a PyTensor user writes it."""
    import pytensor
    import pytensor.tensor as pt

    x = pt.matrix("x", dtype=dtype)
    y = pt.ivector("y")
    params, h = [], x
    for layer, (fan_in, fan_out) in enumerate(zip(widths, widths[1:]), start=1):
        w = pytensor.shared(np.zeros((fan_in, fan_out), dtype=dtype), name=f"W{layer}", borrow=True)
        b = pytensor.shared(np.zeros(fan_out, dtype=dtype), name=f"b{layer}", borrow=True)
        params += [w, b]
        h = pt.dot(h, w) + b
        h = pt.sigmoid(h) if layer < len(widths) - 1 else pt.special.softmax(h, axis=-1)
    loss = -pt.mean(pt.log(h)[pt.arange(y.shape[0]), y])
    return x, y, params, loss


def target(batch: int = 128):
    """The CLI target, at the seed's size: ``graphaudit audit examples/pytensor_seed.py:target``."""
    x, y, params, loss = seed_network((16384, 5000, 3000, 512, 40))
    return loss, params, {x: (batch, 16384), y: (batch,)}


def seed_table(build: dict, parameters: int) -> str:
    """The seed's table (method, mean, std), with the median and quartiles beside it."""
    rows = [("one joint call over all %d parameters" % parameters, build["joint"]),
            ("%d separate calls" % build["calls"]["separate"], build["separate"])]
    lines = [
        f"| {'method':<40} | {'mean':>9} | {'std':>9} | {'median':>9} | {'quartiles':>19} |",
        f"|{'-' * 42}|{'-' * 11}|{'-' * 11}|{'-' * 11}|{'-' * 21}|",
    ]
    for method, s in rows:
        lines.append(
            f"| {method:<40} | {s['mean']:>7.4f} s | {s['stdev']:>7.4f} s | {s['median']:>7.4f} s | "
            f"{s['q1']:.4f} .. {s['q3']:.4f} s |"
        )
    ratio_mean = build["separate"]["mean"] / build["joint"]["mean"]
    lines.append(f"separate / joint: {ratio_mean:.2f}x (means), {build['separate_over_joint']:.2f}x (medians)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=widths_arg, default=(16384, 5000, 3000, 512, 40),
                        help="layer widths, input first (default: 16384,5000,3000,512,40)")
    parser.add_argument("--batch", type=int, default=128, help="batch size for the audit's shapes (default: 128)")
    parser.add_argument("--reps", type=int, default=100, help="builds of each form to time (default: the seed's 100)")
    parser.add_argument("--compile-check", action="store_true",
                        help="also run PyTensor's MergeOptimizer and default compile rewrites on both forms")
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON to PATH")
    args = parser.parse_args(argv)
    if args.batch < 1 or args.reps < 1:
        parser.error("--batch and --reps must be positive")

    import pytensor

    from graphaudit.frontends.pytensor import audit

    x, y, params, loss = seed_network(args.widths)
    print(f"seed MLP in PyTensor {pytensor.__version__}: widths {'-'.join(map(str, args.widths))}, "
          f"batch {args.batch}, float32, {len(params)} parameters")
    report = audit(loss, params, shapes={x: (args.batch, args.widths[0]), y: (args.batch,)},
                   compile_check=args.compile_check, repeats=args.reps)
    print()
    print(f"time to build the gradient graph, {args.reps} builds of each form:")
    print(seed_table(report.framework["build_seconds"], len(params)))
    print()
    print(report.to_text())
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            handle.write(report.to_json() + "\n")
        print(f"\nreport written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
