"""The seed experiment (docs/seed.md): one joint grad call against one call per parameter.

Builds the seed network (sigmoid layers 16384 -> 5000 -> 3000 -> 512, softmax over 40
classes, batch 128; building allocates no arrays), takes the joint gradient
grad(loss, [w1, b1, ..., w4, b4]) and the separate gradients grad(loss, w1), ...,
times building each form (median of --reps), counts their op nodes (non-leaf nodes),
and checks numerically that both forms give the same gradients.

Evaluating at the seed's size takes gigabytes and minutes, so by default (--check small)
the numerical check runs on a copy of the network with the same depth, every width
capped at --check-width and the batch at 8, in float64. --check full evaluates the
network as built (use it with small --widths); --check none skips the check.

    python examples/seed_mlp.py
    python examples/seed_mlp.py --batch 4 --widths 6,5,4,3,2 --check full
"""

from __future__ import annotations

import argparse
import statistics
import textwrap
import time

import numpy as np

import graphaudit as ga


def both_forms(model):
    """``(joint, separate)``: one grad call over all parameters, and one call per parameter."""
    joint = ga.grad(model.loss, model.params)
    separate = [ga.grad(model.loss, p) for p in model.params]
    return joint, separate


def median_time(build, reps: int) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        build()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def op_nodes(outputs) -> tuple[int, int]:
    """``(op nodes, backward op nodes)`` the outputs depend on; leaves are not ops."""
    ops = [n for n in ga.topological_order(outputs) if not n.is_leaf]
    return len(ops), sum(n.is_backward for n in ops)


def check(model, seed: int = 0) -> tuple[bool, bool, float]:
    """Evaluate both forms on one feed: ``(close, bit_identical, max |joint - separate|)``."""
    feed = model.make_feed(seed=seed)
    joint, separate = both_forms(model)
    joint_values = ga.evaluate(joint, feed)
    separate_values = ga.evaluate(separate, feed)
    pairs = list(zip(joint_values, separate_values))
    gap = max(float(np.max(np.abs(a - b))) for a, b in pairs)
    tolerance = 1e-12 if model.loss.dtype == np.float64 else 1e-5
    close = all(np.allclose(a, b, rtol=tolerance, atol=tolerance) for a, b in pairs)
    return close, all(np.array_equal(a, b) for a, b in pairs), gap


def compare(model, title: str, reps: int, check_model=None, check_title: str = "") -> int:
    """Print the comparison of the two forms; returns the exit status (1 if the check fails)."""
    joint, separate = both_forms(model)
    rows = [
        ("joint", 1, *op_nodes(joint), median_time(lambda: ga.grad(model.loss, model.params), reps)),
        ("separate", len(model.params), *op_nodes(separate),
         median_time(lambda: [ga.grad(model.loss, p) for p in model.params], reps)),
    ]
    print(title)
    print(f"{'form':<10} {'grad calls':>10} {'op nodes':>10} {'backward ops':>13} {'build time':>12}")
    for form, calls, ops, backward, seconds in rows:
        print(f"{form:<10} {calls:>10} {ops:>10} {backward:>13} {seconds * 1e3:>10.3f}ms")
    (_, _, ops_j, back_j, time_j), (_, _, ops_s, back_s, time_s) = rows
    print(f"{'separate/joint':<21} {ops_s / ops_j:>10.2f}x {back_s / back_j:>12.2f}x {time_s / time_j:>11.2f}x"
          f"   (build time: median of {reps})")
    per_call = "  ".join(f"{p.name}:{op_nodes([g])[1]}" for p, g in zip(model.params, separate))
    print(textwrap.fill(per_call, width=100, initial_indent="backward ops per separate call: ",
                        subsequent_indent="    "))
    if check_model is None:
        print("numerical check: skipped")
        return 0
    close, identical, gap = check(check_model)
    verdict = "bit-identical" if identical else ("agree" if close else "DISAGREE")
    print(f"numerical check{check_title}: joint and separate gradients {verdict} (max |diff| = {gap:.3g})")
    return 0 if close else 1


def widths_arg(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"widths must be comma-separated integers, got {text!r}") from None
    if len(widths) < 2 or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"need at least two positive widths, got {text!r}")
    return widths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=128, help="batch size (default: the seed's 128)")
    parser.add_argument("--widths", type=widths_arg, default=(16384, 5000, 3000, 512, 40),
                        help="layer widths, input first (default: 16384,5000,3000,512,40)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--reps", type=int, default=20, help="builds per form to time (default: 20)")
    parser.add_argument("--check", choices=["small", "full", "none"], default="small",
                        help="evaluate both forms on a capped copy (small, default), as built (full), or not")
    parser.add_argument("--check-width", type=int, default=16, help="width cap for --check small (default: 16)")
    args = parser.parse_args(argv)
    if args.batch < 1 or args.reps < 1 or args.check_width < 1:
        parser.error("--batch, --reps and --check-width must be positive")

    model = ga.models.seed_mlp(batch=args.batch, widths=args.widths, dtype=args.dtype)
    title = (f"seed MLP: batch {args.batch}, widths {'-'.join(map(str, args.widths))}, {args.dtype}, "
             f"{len(model.params)} parameters")
    check_model, check_title = None, ""
    if args.check == "full":
        check_model, check_title = model, " (as built)"
    elif args.check == "small":
        widths = tuple(min(w, args.check_width) for w in args.widths)
        batch = min(args.batch, 8)
        check_model = ga.models.seed_mlp(batch=batch, widths=widths, dtype="float64")
        check_title = f" (widths {'-'.join(map(str, widths))}, batch {batch}, float64)"
    return compare(model, title, args.reps, check_model, check_title)


if __name__ == "__main__":
    raise SystemExit(main())
