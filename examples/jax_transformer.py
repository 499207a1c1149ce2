"""A transformer block in JAX, params as a dict pytree: per-parameter ``jax.grad`` vs one joint call.

One pre-norm block, as Flax or Equinox users write it: ``h = x + attention(layer_norm(x))``,
``out = h + mlp(layer_norm(h))`` (multi-head self-attention with a causal mask, a GELU MLP),
and a mean squared error against a target. The parameters are a nested dict
(``params['attn']['wq']``, ...); graphaudit flattens it, traces one ``jax.grad`` per leaf and
one joint ``jax.grad``, merges and costs them, and with ``--xla`` (the default) asks what
XLA's optimised HLO keeps.

    python examples/jax_transformer.py
    python examples/jax_transformer.py --batch 2 --seq 8 --d-model 16 --heads 2 --d-ff 32 --measure
    graphaudit audit examples/jax_transformer.py:target --xla
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from graphaudit.frontends.jax import audit


def init_params(d_model: int = 256, heads: int = 4, d_ff: int = 1024, seed: int = 0) -> dict:
    """The block's parameters as a nested dict (weights ~ N(0, 1/fan_in), norms at 1 and 0)."""
    if d_model % heads:
        raise ValueError(f"d_model ({d_model}) must be a multiple of heads ({heads})")
    rng = np.random.default_rng(seed)

    def dense(fan_in: int, fan_out: int) -> np.ndarray:
        return np.float32(1 / np.sqrt(fan_in)) * rng.standard_normal((fan_in, fan_out), dtype=np.float32)

    def norm() -> dict:
        return {"scale": np.ones(d_model, np.float32), "bias": np.zeros(d_model, np.float32)}

    return {
        "ln1": norm(),
        "attn": {name: dense(d_model, d_model) for name in ("wq", "wk", "wv", "wo")},
        "ln2": norm(),
        "mlp": {"w1": dense(d_model, d_ff), "b1": np.zeros(d_ff, np.float32),
                "w2": dense(d_ff, d_model), "b2": np.zeros(d_model, np.float32)},
    }


def layer_norm(p: dict, x):
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean((x - mean) ** 2, axis=-1, keepdims=True)
    return (x - mean) / jnp.sqrt(var + 1e-5) * p["scale"] + p["bias"]


def attention(p: dict, x, heads: int):
    batch, seq, d_model = x.shape

    def split(t):  # (batch, seq, d_model) -> (batch, heads, seq, d_model / heads)
        return t.reshape(batch, seq, heads, d_model // heads).transpose(0, 2, 1, 3)

    q, k, v = split(x @ p["wq"]), split(x @ p["wk"]), split(x @ p["wv"])
    scores = q @ k.transpose(0, 1, 3, 2) * np.float32(1 / np.sqrt(d_model // heads))
    causal = jnp.tril(jnp.ones((seq, seq), bool))
    weights = jax.nn.softmax(jnp.where(causal, scores, -1e9), axis=-1)
    return (weights @ v).transpose(0, 2, 1, 3).reshape(batch, seq, d_model) @ p["wo"]


def block(params: dict, x, heads: int):
    h = x + attention(params["attn"], layer_norm(params["ln1"], x), heads)
    mlp = params["mlp"]
    return h + jax.nn.gelu(layer_norm(params["ln2"], h) @ mlp["w1"] + mlp["b1"]) @ mlp["w2"] + mlp["b2"]


def make_loss(heads: int):
    """``loss(params, x, target)``: the mean squared error of the block's output."""

    def loss(params, x, target):
        return jnp.mean((block(params, x, heads) - target) ** 2)

    return loss


def build(batch: int = 8, seq: int = 128, d_model: int = 256, heads: int = 4, d_ff: int = 1024, seed: int = 0):
    """``(fn, args, argnums)`` for :func:`graphaudit.frontends.jax.audit`: differentiate ``params``."""
    params = init_params(d_model, heads, d_ff, seed)
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((batch, seq, d_model), dtype=np.float32)
    target_values = rng.standard_normal((batch, seq, d_model), dtype=np.float32)
    return make_loss(heads), (params, x, target_values), 0


def target():
    """The CLI target: ``graphaudit audit examples/jax_transformer.py:target --xla``."""
    return build()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8, help="batch size (default: 8)")
    parser.add_argument("--seq", type=int, default=128, help="sequence length (default: 128)")
    parser.add_argument("--d-model", type=int, default=256, help="model width (default: 256)")
    parser.add_argument("--heads", type=int, default=4, help="attention heads (default: 4)")
    parser.add_argument("--d-ff", type=int, default=1024, help="MLP width (default: 1024)")
    parser.add_argument("--no-xla", action="store_true", help="skip compiling the two forms with XLA")
    parser.add_argument("--measure", action="store_true", help="time the jitted forms")
    parser.add_argument("--repeats", type=int, default=5, help="runs per form for --measure (default: 5)")
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON to PATH")
    args = parser.parse_args(argv)
    sizes = (args.batch, args.seq, args.d_model, args.heads, args.d_ff, args.repeats)
    if min(sizes) < 1:
        parser.error("--batch, --seq, --d-model, --heads, --d-ff and --repeats must be positive")
    if args.d_model % args.heads:
        parser.error(f"--d-model ({args.d_model}) must be a multiple of --heads ({args.heads})")

    fn, arguments, argnums = build(args.batch, args.seq, args.d_model, args.heads, args.d_ff)
    report = audit(fn, *arguments, argnums=argnums, xla=not args.no_xla, measure=args.measure, repeats=args.repeats)
    print(f"transformer block in JAX: batch {args.batch}, seq {args.seq}, d_model {args.d_model}, "
          f"{args.heads} heads, d_ff {args.d_ff}, {len(report.wrt)} parameter arrays\n")
    print(report.to_text())
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            file.write(report.to_json() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
