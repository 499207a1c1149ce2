"""An LSTM over a sequence in JAX, written with ``lax.scan``: per-parameter ``jax.grad`` vs one joint call.

One LSTM layer (input, forget, cell and output gates from one fused product per step:
``z = x_t @ wx + h @ wh + b``) reads a sequence, a linear read-out maps every hidden state
to a prediction, and the loss is the mean squared error against a target sequence.
graphaudit imports the ``scan`` of the forward pass and the reverse ``scan`` of each
backward pass with their bodies, unrolls them for the analysis (within its node budget),
and finds the steps that separate ``jax.grad`` traces repeat.

    python examples/jax_lstm.py
    python examples/jax_lstm.py --steps 24 --batch 4 --inputs 8 --hidden 16 --no-xla
    graphaudit audit examples/jax_lstm.py:target --xla
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from graphaudit.frontends.jax import audit


def init_params(inputs: int = 8, hidden: int = 16, outputs: int = 4, seed: int = 0) -> dict:
    """The layer's parameters: gate weights ~ N(0, 1/fan_in), biases at 0, a linear read-out."""
    rng = np.random.default_rng(seed)

    def dense(fan_in: int, fan_out: int) -> np.ndarray:
        return np.float32(1 / np.sqrt(fan_in)) * rng.standard_normal((fan_in, fan_out), dtype=np.float32)

    return {"wx": dense(inputs, 4 * hidden), "wh": dense(hidden, 4 * hidden), "b": np.zeros(4 * hidden, np.float32),
            "wy": dense(hidden, outputs)}


def lstm_loss(params: dict, xs, ys, unroll: bool = False):
    """Mean squared error of the read-out of every hidden state; ``xs`` is (steps, batch, inputs);
    ``unroll=True`` has JAX unroll the scan (``benchmarks/bench_remedy_jax.py``)."""
    hidden = params["wh"].shape[0]
    zeros = jnp.zeros((xs.shape[1], hidden), xs.dtype)

    def step(carry, x):
        h, c = carry
        i, f, g, o = jnp.split(x @ params["wx"] + h @ params["wh"] + params["b"], 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    _, hs = jax.lax.scan(step, (zeros, zeros), xs, unroll=unroll)
    return jnp.mean((hs @ params["wy"] - ys) ** 2)


def build(steps: int = 12, batch: int = 4, inputs: int = 8, hidden: int = 16, outputs: int = 4, seed: int = 0):
    """``(fn, args, argnums)``: the loss, ``(params, xs, ys)`` drawn from N(0, 1), and ``argnums=0``."""
    if min(steps, batch, inputs, hidden, outputs) < 1:
        raise ValueError("steps, batch, inputs, hidden and outputs must be positive")
    rng = np.random.default_rng(seed + 1)
    xs = rng.standard_normal((steps, batch, inputs), dtype=np.float32)
    ys = rng.standard_normal((steps, batch, outputs), dtype=np.float32)
    return lstm_loss, (init_params(inputs, hidden, outputs, seed), xs, ys), 0


def target():
    """The CLI target: ``graphaudit audit examples/jax_lstm.py:target --xla``."""
    return build()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12, help="sequence length (default: 12)")
    parser.add_argument("--batch", type=int, default=4, help="batch size (default: 4)")
    parser.add_argument("--inputs", type=int, default=8, help="input features (default: 8)")
    parser.add_argument("--hidden", type=int, default=16, help="hidden units (default: 16)")
    parser.add_argument("--no-xla", action="store_true", help="skip compiling the two forms with XLA")
    parser.add_argument("--measure", action="store_true", help="time the jitted forms")
    args = parser.parse_args(argv)
    if min(args.steps, args.batch, args.inputs, args.hidden) < 1:
        parser.error("--steps, --batch, --inputs and --hidden must be positive")

    fn, arguments, argnums = build(args.steps, args.batch, args.inputs, args.hidden)
    report = audit(fn, *arguments, argnums=argnums, xla=not args.no_xla, measure=args.measure)
    print(f"LSTM in JAX (lax.scan): {args.steps} steps, batch {args.batch}, {args.inputs} inputs, "
          f"{args.hidden} hidden units, {len(report.wrt)} parameters\n")
    print(report.to_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
