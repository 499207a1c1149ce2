"""Benchmark: one trace for every parameter, JAX. An audit that counts the separate ``jax.grad`` traces from the
joint trace (``audit(..., materialize=False)``) against ``jax.make_jaxpr(jax.grad(loss))`` of the joint grad, and
against the audit that traces every separate grad.

The model is a deep stack of small residual blocks as transformers have them (a layer norm with scale and bias,
then a two-layer MLP with GELU; six leaves a block), width 16, batch 32, on ``jax.ShapeDtypeStruct``s (nothing
allocated). Times are medians of runs taken in turn.

    python benchmarks/bench_counting_jax.py [--blocks 20] [--large 170]

Targets (ratios measured in this run): counted audit <= 2x the plain trace on the model with more than 100
leaves; built / counted >= 5x there; the large model (1,000+ leaves) counted in seconds.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

from graphaudit.frontends.jax import audit


def stack(blocks: int, width: int = 16) -> tuple:
    """The loss and its arguments, as shapes: ``params`` a dict of blocks, each six leaves."""
    f32 = jnp.float32
    block = {"scale": jax.ShapeDtypeStruct((width,), f32), "bias": jax.ShapeDtypeStruct((width,), f32),
             "up": jax.ShapeDtypeStruct((width, 4 * width), f32), "up_b": jax.ShapeDtypeStruct((4 * width,), f32),
             "down": jax.ShapeDtypeStruct((4 * width, width), f32), "down_b": jax.ShapeDtypeStruct((width,), f32)}
    params = {f"block{i:03d}": dict(block) for i in range(blocks)}

    def loss(params, x):
        for name in sorted(params):
            p = params[name]
            mean = x.mean(-1, keepdims=True)
            h = (x - mean) / jnp.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + 1e-5) * p["scale"] + p["bias"]
            x = x + jax.nn.gelu(h @ p["up"] + p["up_b"]) @ p["down"] + p["down_b"]
        return jnp.mean(x ** 2)

    return loss, params, jax.ShapeDtypeStruct((32, width), f32)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--large", type=int, default=170)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    loss, params, x = stack(args.blocks)
    leaves = len(jax.tree_util.tree_leaves(params))
    runs = {"plain trace": lambda: jax.make_jaxpr(jax.grad(loss))(params, x),
            "counted audit": lambda: audit(loss, params, x, argnums=0, materialize=False),
            "built audit": lambda: audit(loss, params, x, argnums=0)}
    seconds = {name: [] for name in runs}
    for _ in range(args.repeats):  # in turn, so that load hits them alike
        for name, run in runs.items():
            seconds[name].append(timed(run))
    median = {name: statistics.median(s) for name, s in seconds.items()}
    counted = audit(loss, params, x, argnums=0, materialize=False)
    built = audit(loss, params, x, argnums=0)
    assert counted.duplicated == built.duplicated and counted.forms["separate"].cost == built.forms["separate"].cost
    print(f"{args.blocks} blocks, {leaves} leaves (counted == built on every figure)")
    for name, value in median.items():
        print(f"  {name:<14} {value:8.3f} s")
    trace, imported = counted.forms["joint"].build_seconds, counted.framework["import_seconds"]["joint"]
    merge = counted.forms["joint_merged"].build_seconds
    print(f"  counted audit: trace {trace:.3f} s, import {imported:.3f} s, merge {merge:.3f} s, the rest "
          f"(counting, report) {median['counted audit'] - trace - imported - merge:.3f} s")
    over_trace = median["counted audit"] / median["plain trace"]
    built_over_counted = median["built audit"] / median["counted audit"]
    print(f"TARGET counted / plain trace = {over_trace:.2f}x (<= 2): {'met' if over_trace <= 2 else 'MISSED'}")
    print(f"TARGET built / counted = {built_over_counted:.1f}x (>= 5): {'met' if built_over_counted >= 5 else 'MISSED'}")

    loss, params, x = stack(args.large)
    leaves = len(jax.tree_util.tree_leaves(params))
    large = timed(lambda: audit(loss, params, x, argnums=0, materialize=False))
    plain = timed(lambda: jax.make_jaxpr(jax.grad(loss))(params, x))
    report = audit(loss, params, x, argnums=0, materialize=False)
    print(f"{args.large} blocks, {leaves} leaves: counted audit {large:.2f} s (plain trace {plain:.2f} s); "
          f"separate form {report.forms['separate'].cost.nodes:,} nodes counted, "
          f"{report.duplicated['flops']:,} FLOPs duplicated")
    print(f"TARGET {leaves} leaves counted in seconds (< 30 s): {'met' if large < 30 else 'MISSED'}")


if __name__ == "__main__":
    main()
