"""Benchmark 1: building the gradient graphs, graphaudit vs PyTensor, separate and joint forms.

The seed MLP and deep chains of L sigmoid layers (width 32, softmax over 10 classes, mean
NLL), the same architecture in both libraries. Separate = one grad call per parameter, as a
user writes it (the targets compare these). The column "separate_grads" is how ``ga.audit``
builds the same graph: one forward walk, each call replaying the turns it shares with an
earlier call, and each vjp rule replayed after its first run.
PyTensor's separate build grows with L^2 (the slowest column by far): a
PyTensor measurement predicted (L^2 scaling from the row above) to exceed
``--pytensor-limit`` seconds is not run: by default L=256 (~3 min or more, about 5 GB).

    python benchmarks/bench_grad.py [--pytensor-limit 150]
"""

from __future__ import annotations

import argparse

import pytensor

import graphaudit as ga
from common import (
    SEED_WIDTHS,
    chain_widths,
    median_time,
    pytensor_mlp,
    pytensor_separate,
    ratio_text,
    separate_form,
    table,
    target,
    title,
)

DEPTHS = (16, 64, 128, 256)
REPEATS, BUDGET = 20, 3.0  # per measurement: at most REPEATS runs, fewer once BUDGET seconds are spent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pytensor-limit", type=float, default=150.0,
                        help="skip a PyTensor separate build predicted to take longer (seconds, default 150)")
    args = parser.parse_args(argv)

    title("1. grad construction: graphaudit vs PyTensor (median time to build the symbolic gradients)")
    cases = [("seed MLP", ga.models.seed_mlp(), SEED_WIDTHS, None)]
    cases += [(f"chain L={d}", ga.models.deep_chain(d), chain_widths(d), d) for d in DEPTHS]

    first = cases[0]  # warm-up, untimed: the first calls in a process pay for imports and caches
    _, _, params, loss = pytensor_mlp(first[2])
    pytensor.grad(loss, params)
    separate_form(first[1])

    rows, ratios, notes = [], {}, []
    previous = None  # (depth, PyTensor separate seconds) of the row above, for the prediction
    for name, model, widths, depth in cases:
        _, _, params, loss = pytensor_mlp(widths)
        ga_separate = median_time(lambda: separate_form(model), repeats=REPEATS, budget=BUDGET)
        ga_replayed = median_time(lambda: ga.separate_grads(model.loss, model.params), repeats=REPEATS,
                                  budget=BUDGET)
        ga_joint = median_time(lambda: ga.grad(model.loss, model.params), repeats=REPEATS, budget=BUDGET)
        pt_joint = median_time(lambda: pytensor.grad(loss, params), repeats=REPEATS, budget=BUDGET)
        predicted = previous[1] * (depth / previous[0]) ** 2 if previous and depth else 0.0
        if predicted > args.pytensor_limit:
            pt_separate = None
            notes.append(f"{name}: PyTensor separate not run: predicted ~{predicted:.0f} s "
                         f"(L^2 scaling from L={previous[0]}) > --pytensor-limit {args.pytensor_limit:.0f} s")
        else:
            pt_separate = median_time(lambda: pytensor_separate(loss, params), repeats=REPEATS, budget=BUDGET)
            if depth:
                previous = (depth, pt_separate.seconds)
        ratios[name] = (pt_separate.seconds / ga_separate.seconds if pt_separate else None,
                        pt_joint.seconds / ga_joint.seconds)
        rows.append([name, len(model.params), str(ga_separate), str(ga_replayed), str(ga_joint),
                     str(pt_separate or "not run"),
                     str(pt_joint), ratio_text(ratios[name][0]) if pt_separate else "-", ratio_text(ratios[name][1])])
        del ga_separate, ga_replayed, ga_joint, pt_separate, pt_joint  # the built graphs: a big live heap slows the next timings

    table(["model", "params", "graphaudit separate", "graphaudit separate_grads", "graphaudit joint", "PyTensor separate", "PyTensor joint",
           "PyTensor/ga separate", "PyTensor/ga joint"], rows)
    print(f"times are medians, (n) = runs: at most {REPEATS}, fewer once {BUDGET:.0f} s are spent; "
          f"PyTensor {pytensor.__version__}")
    for note in notes:
        print(note)
    target("grad L=128 separate, PyTensor/graphaudit", ratios["chain L=128"][0], ">=", 50, ratio_text,
           "PyTensor not run")
    target("grad seed separate, PyTensor/graphaudit", ratios["seed MLP"][0], ">=", 10, ratio_text)
    target("grad seed joint, PyTensor/graphaudit", ratios["seed MLP"][1], ">=", 10, ratio_text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
