"""An AR(1) series written with ``pytensor.scan`` inside a ``pm.CustomDist``, and graphaudit's audit of it.

PyMC derives the log density of a CustomDist from its generative graph; here that graph
is a Scan, so ``model.logp()`` holds a Scan, and each ``pytensor.grad`` call builds a
backward Scan of its own. graphaudit unrolls the Scans for the analysis when both forms
unrolled fit the node budget (``--loop-budget``; else it compares each loop as one node
costing body x steps), and the report lists each Scan and how it was treated.

    python examples/pymc_ar_scan.py
    python examples/pymc_ar_scan.py --steps 50 --compile-check
    python examples/pymc_ar_scan.py --loop-budget 0     # every Scan whole
    graphaudit audit examples/pymc_ar_scan.py:model
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

STEPS = 20


def ar1(x0, rho, sigma, steps: int, size):
    """x_t ~ Normal(rho * x_{t-1}, sigma), for t = 1..steps: the generative graph, a Scan."""
    import pymc as pm
    import pytensor
    from pymc.pytensorf import collect_default_updates

    def step(previous, rho, sigma):
        following = pm.Normal.dist(mu=rho * previous, sigma=sigma)
        return following, collect_default_updates([following])

    with warnings.catch_warnings():  # the step's random draw has an update, so scan's old signature it is
        warnings.simplefilter("ignore", DeprecationWarning)
        series, _ = pytensor.scan(step, outputs_info=[x0], non_sequences=[rho, sigma], n_steps=steps)
    return series


def model(steps: int = STEPS, seed: int = 0):
    """AR(1) with unknown ``rho`` and ``sigma``, observed on a simulated series of ``steps`` values."""
    import pymc as pm
    import pytensor.tensor as pt

    observed = np.cumsum(np.random.default_rng(seed).standard_normal(steps)) * 0.3
    with pm.Model() as ar_model:
        rho = pm.Normal("rho", mu=0.0, sigma=0.5)
        sigma = pm.HalfNormal("sigma", sigma=1.0)
        pm.CustomDist("x", pt.as_tensor(np.float64(0.0)), rho, sigma, steps,
                      dist=lambda x0, rho, sigma, steps, size: ar1(x0, rho, sigma, steps, size),
                      observed=observed)
    return ar_model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=STEPS, help=f"length of the series (default: {STEPS})")
    parser.add_argument("--reps", type=int, default=5, help="builds of each form to time (default: 5)")
    parser.add_argument("--loop-budget", type=int, default=None,
                        help="unroll the Scans when both forms unrolled fit in this many nodes (default: graphaudit's)")
    parser.add_argument("--compile-check", action="store_true",
                        help="also run PyTensor's MergeOptimizer and default compile rewrites on both forms")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.reps < 1:
        parser.error("--steps and --reps must be positive")

    from graphaudit.frontends.pymc import audit

    options = {} if args.loop_budget is None else {"loop_budget": args.loop_budget}
    print(audit(model(args.steps), compile_check=args.compile_check, repeats=args.reps, **options).to_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
