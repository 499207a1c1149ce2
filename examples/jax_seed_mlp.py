"""The seed experiment in JAX: one ``jax.grad`` per parameter against one joint ``jax.grad``.

The seed's network (docs/seed.md: sigmoid layers 16384 -> 5000 -> 3000 -> 512, softmax over 40
classes, mean NLL, batch 128), written as a JAX function of its eight parameters and the
data. graphaudit traces ``jax.grad(loss, argnums=i)`` for each parameter and
``jax.grad(loss, argnums=(0, ..., 7))`` once, imports the jaxprs, merges them, and with
``--xla`` (the default) compiles both forms to see what XLA's CSE gets back.

Tracing and compiling use ``jax.ShapeDtypeStruct`` arguments: nothing is allocated.
``--measure`` draws the arrays (about 400 MB at the seed's size) and times the jitted forms.

    python examples/jax_seed_mlp.py
    python examples/jax_seed_mlp.py --batch 4 --widths 6,5,4,3,2 --measure
    graphaudit audit examples/jax_seed_mlp.py:target --xla
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from graphaudit.frontends.jax import audit

SEED_WIDTHS = (16384, 5000, 3000, 512, 40)


def mlp_loss(params, x, y):
    """``-mean(log(softmax(L_last))[arange(n), y])`` of a sigmoid MLP; ``params = [w1, b1, w2, b2, ...]``."""
    h = x
    layers = len(params) // 2
    for layer in range(layers):
        h = h @ params[2 * layer] + params[2 * layer + 1]
        if layer < layers - 1:
            h = jax.nn.sigmoid(h)
    logp = jnp.log(jax.nn.softmax(h))
    return -jnp.mean(logp[jnp.arange(h.shape[0]), y])


def loss(w1, b1, w2, b2, w3, b3, w4, b4, x, y):
    """The seed's four layers, one argument per parameter (so that reports name them)."""
    return mlp_loss([w1, b1, w2, b2, w3, b3, w4, b4], x, y)


def build(batch: int = 128, widths: Sequence[int] = SEED_WIDTHS, concrete: bool = False, seed: int = 0):
    """``(fn, args, argnums)``: the loss, its arguments ``w1, b1, ..., x, y`` and the parameters' positions.

    With ``concrete=False`` the arguments are ``jax.ShapeDtypeStruct`` (enough to trace and
    compile); with ``concrete=True`` arrays: inputs ~ N(0, 1), weights ~ N(0, 1/fan_in),
    biases ~ N(0, 0.01).
    """
    widths = [int(w) for w in widths]
    if len(widths) != len(SEED_WIDTHS) or min(widths) < 1 or batch < 1:
        raise ValueError(f"need {len(SEED_WIDTHS)} positive widths (four layers) and a positive batch, "
                         f"got {widths}, batch={batch}")
    shapes = []
    for fan_in, fan_out in zip(widths, widths[1:]):
        shapes += [(fan_in, fan_out), (fan_out,)]
    if concrete:
        rng = np.random.default_rng(seed)
        params = [np.float32(1 / np.sqrt(s[0]) if len(s) == 2 else 0.1) * rng.standard_normal(s, dtype=np.float32)
                  for s in shapes]
        x = rng.standard_normal((batch, widths[0]), dtype=np.float32)
        y = rng.integers(0, widths[-1], size=batch).astype(np.int32)
        args = (*params, x, y)
    else:
        params = [jax.ShapeDtypeStruct(s, jnp.float32) for s in shapes]
        x = jax.ShapeDtypeStruct((batch, widths[0]), jnp.float32)
        args = (*params, x, jax.ShapeDtypeStruct((batch,), jnp.int32))
    return loss, args, tuple(range(len(params)))


def target():
    """The CLI target: ``graphaudit audit examples/jax_seed_mlp.py:target --xla``."""
    return build()


def widths_arg(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"widths must be comma-separated integers, got {text!r}") from None
    if len(widths) != len(SEED_WIDTHS) or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"need {len(SEED_WIDTHS)} positive widths (four layers), got {text!r}")
    return widths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=128, help="batch size (default: the seed's 128)")
    parser.add_argument("--widths", type=widths_arg, default=SEED_WIDTHS,
                        help="layer widths, input first (default: 16384,5000,3000,512,40)")
    parser.add_argument("--no-xla", action="store_true", help="skip compiling the two forms with XLA")
    parser.add_argument("--measure", action="store_true", help="draw arrays and time the jitted forms")
    parser.add_argument("--repeats", type=int, default=5, help="runs per form for --measure (default: 5)")
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON to PATH")
    args = parser.parse_args(argv)
    if args.batch < 1 or args.repeats < 1:
        parser.error("--batch and --repeats must be positive")

    fn, arguments, argnums = build(args.batch, args.widths, concrete=args.measure)
    report = audit(fn, *arguments, argnums=argnums, xla=not args.no_xla, measure=args.measure, repeats=args.repeats)
    print(f"seed MLP in JAX: batch {args.batch}, widths {'-'.join(map(str, args.widths))}, float32, "
          f"{len(argnums)} parameters\n")
    print(report.to_text())
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            file.write(report.to_json() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
