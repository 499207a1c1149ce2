"""Eight schools (non-centred), the classic hierarchical model, and graphaudit's audit of its gradient.

A sampler such as NUTS needs the gradient of ``model.logp()`` w.r.t. every value variable
(``mu``, ``tau_log__``, ``theta_tilde``). PyMC asks PyTensor for it in one joint call;
the audit compares that with one ``pytensor.grad`` call per value variable, and with
``--compile-check`` says what PyTensor's own MergeOptimizer and compile rewrites keep.

    python examples/pymc_eight_schools.py
    python examples/pymc_eight_schools.py --compile-check --reps 20
    graphaudit audit examples/pymc_eight_schools.py:model --compile-check
"""

from __future__ import annotations

import argparse

import numpy as np

# Rubin (1981): estimated effects of coaching in eight schools, and their standard errors
EFFECTS = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
ERRORS = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def model():
    """The non-centred eight schools model: theta = mu + tau * theta_tilde."""
    import pymc as pm

    with pm.Model() as eight_schools:
        mu = pm.Normal("mu", mu=0.0, sigma=5.0)
        tau = pm.HalfCauchy("tau", beta=5.0)
        theta_tilde = pm.Normal("theta_tilde", mu=0.0, sigma=1.0, shape=len(EFFECTS))
        theta = pm.Deterministic("theta", mu + tau * theta_tilde)
        pm.Normal("y", mu=theta, sigma=ERRORS, observed=EFFECTS)
    return eight_schools


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=20, help="builds of each form to time (default: 20)")
    parser.add_argument("--compile-check", action="store_true",
                        help="also run PyTensor's MergeOptimizer and default compile rewrites on both forms")
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error("--reps must be positive")

    from graphaudit.frontends.pymc import audit

    print(audit(model(), compile_check=args.compile_check, repeats=args.reps).to_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
