"""A deep chain of sigmoid layers: the separate form grows quadratically with depth.

``depth`` sigmoid layers of ``width`` units and a softmax layer (graphaudit.models.deep_chain).
The call for the parameters of layer j rebuilds the input-gradient of every layer above
it, so the separate form's backward work grows with depth**2 while the joint form's grows
with depth. The script builds both forms, times building each (median of --reps), counts
their op nodes, and evaluates both at the given size to check that they agree.

    python examples/deep_chain.py --depth 16 --width 32 --batch 64
"""

from __future__ import annotations

import argparse

import graphaudit as ga
from seed_mlp import compare  # the comparison shared by the examples (examples/seed_mlp.py)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depth", type=int, default=16, help="sigmoid layers (default: 16)")
    parser.add_argument("--width", type=int, default=32, help="units per layer (default: 32)")
    parser.add_argument("--batch", type=int, default=64, help="batch size (default: 64)")
    parser.add_argument("--classes", type=int, default=10, help="softmax classes (default: 10)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--reps", type=int, default=5, help="builds per form to time (default: 5)")
    args = parser.parse_args(argv)
    if min(args.depth, args.width, args.batch, args.classes, args.reps) < 1:
        parser.error("--depth, --width, --batch, --classes and --reps must be positive")

    model = ga.models.deep_chain(depth=args.depth, width=args.width, batch=args.batch, classes=args.classes,
                                 dtype=args.dtype)
    title = (f"deep chain: {args.depth} sigmoid layers of {args.width}, {args.classes} classes, batch {args.batch}, "
             f"{args.dtype}, {len(model.params)} parameters")
    return compare(model, title, args.reps, check_model=model, check_title=" (as built)")


if __name__ == "__main__":
    raise SystemExit(main())
