"""Benchmark: does running graphaudit's merged graph under ``jax.jit`` pay for JAX (issue 29)?

XLA's CSE runs once per computation and never merges across a loop body: the LSTM of
``examples/jax_lstm.py`` (a ``lax.scan``), its separate per-leaf ``jax.grad``s in one ``jit``, keeps
17 dots against the joint grad's 8. graphaudit imports the scans unrolled and merges across the
steps; the question is whether evaluating that merged graph under ``jit`` beats what JAX itself
offers. Each size runs these variants, all on the example's loss and parameters:

- ``(a) joint``: one ``jax.grad`` of every leaf;
- ``(a') joint, unrolled``: the same with ``lax.scan(..., unroll=True)`` (the reference for the
  unrolled variants: what one joint grad of a straight-line program costs);
- ``(b) separate``: one ``jax.grad`` per leaf, all returned from one jitted function (the example's
  separate form);
- ``(c) separate, unrolled``: (b) with the scans unrolled by JAX itself (``unroll=True``);
- ``(d) merged``: graphaudit's merged graph of (b) (``audit(...).merged``, scans unrolled by the
  importer), every node binding its primitive inside one ``jax.jit``;
- ``(d') merged, loops whole``: the same with ``loop_budget=0`` (scans imported whole, not unrolled).

Columns: the optimised HLO's instructions and dots (``dot`` ops and matmul custom-calls, as
``graphaudit.frontends.jax.compiled.hlo_counts`` counts them), the dots executed per call (a
``while`` body's dots times its known trip count), the compile time, the run time (minimum of
``--repeats`` calls, the variants in turn, alternating order, ``block_until_ready``, arguments on
the device once; float32) and the largest relative error of the gradients against (a) in float64.

    python benchmarks/bench_remedy_jax.py [--repeats 50] [--sizes 12x4x8x16,32x32x32x64]

Targets (issue 29): (d) below (b) and (c) in executed dots and in time; if JAX's own unrolling (c)
already executes the joint's dots, graphaudit needs no evaluator of its own for JAX. Variants that
compile to the same optimised HLO (the line after each table names them) differ in time by noise only.
Finding (JAX 0.10.2 CPU): (a'), (c) and (d) compile to the same HLO, and (a) is the fastest at both sizes,
so graphaudit keeps no JAX ``deduplicate`` (README, "Removing the duplicated work").
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)  # float64 for the gradient check; timings stay float32

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import jax_lstm  # noqa: E402

from common import ratio_text, table, target, title  # noqa: E402

from graphaudit.core.graph import topological_order  # noqa: E402
from graphaudit.frontends.jax import audit  # noqa: E402
from graphaudit.frontends.jax.arguments import FlatFunction  # noqa: E402
from graphaudit.frontends.jax.compiled import _CONTRACTION_TARGET, _INSTRUCTION, _opcode, hlo_counts  # noqa: E402
from graphaudit.frontends.jax.ops import bind  # noqa: E402

SIZES = "12x4x8x16,32x32x32x64"  # steps x batch x inputs x hidden: the example's default, a training-like one
_HEADER = re.compile(r"^(?:ENTRY\s+)?%?([\w.\-]+)\s*\(.*\{$")
_TRIP_COUNT = re.compile(r'known_trip_count"?:\{"n":"(\d+)"')


def executed_dots(text: str) -> int | None:
    """Dots one call of an optimised HLO module executes: a ``while`` body's dots times its known
    trip count, a called or fused computation's where it is called; None if a loop's count is unknown."""
    computations: dict[str, list[str]] = {}
    entry = current = None
    for line in text.splitlines():
        stripped = line.strip()
        if current is None:
            match = _HEADER.match(stripped)
            if match:
                current = match.group(1)
                computations[current] = []
                entry = current if stripped.startswith("ENTRY") else entry
        elif stripped == "}":
            current = None
        else:
            computations[current].append(line)
    memo: dict[str, int | None] = {}

    def count(name: str) -> int | None:
        if name not in memo:
            total: int | None = 0
            for line in computations[name]:
                match = _INSTRUCTION.match(line)
                if match is None:
                    continue
                opcode = _opcode(match.group(1))
                if opcode in ("dot", "convolution") or (opcode == "custom-call" and _CONTRACTION_TARGET.search(line)):
                    total += 1
                if opcode == "while":
                    trips = _TRIP_COUNT.search(line)
                    body = count(re.search(r"body=%?([\w.\-]+)", line).group(1))
                    total = None if trips is None or body is None or total is None else total + body * int(trips[1])
                else:
                    for called in re.findall(r"(?:calls|to_apply)=%?([\w.\-]+)", line):
                        inner = count(called)
                        total = None if inner is None or total is None else total + inner
            memo[name] = total
        return memo[name]

    return count(entry)


def opcode_counts(text: str) -> dict[str, int]:
    """How many instructions of each opcode an HLO module holds (equal for programs XLA made the same)."""
    counts: dict[str, int] = {}
    for line in text.splitlines():
        match = _INSTRUCTION.match(line)
        if match is not None:
            opcode = _opcode(match.group(1))
            counts[opcode] = counts.get(opcode, 0) + 1
    return counts


def merged_function(fn, args: tuple, loop_budget: int | None = None):
    """graphaudit's merged graph of the separate grads of ``fn`` as a function of the flat leaves
    (each node binds its JAX primitive), to jit; the audit's report beside it."""
    options = {} if loop_budget is None else {"loop_budget": loop_budget}
    report = audit(fn, *args, **options)
    names = FlatFunction(fn, args, (0,)).names
    outputs = report.merged.outputs
    order = topological_order(outputs)
    leaves = [(node, names.index(node.name)) for node in order if node.op in ("placeholder", "parameter")]

    def run(*flat_leaves):
        env = {node: flat_leaves[position] for node, position in leaves}
        for node in order:
            if node.op == "constant":
                env[node] = node.value
            elif node not in env:
                env[node] = bind(node, *(env[i] for i in node.inputs))
        return tuple(env[o] for o in outputs)

    return run, report


def variants(steps: int, batch: int, inputs: int, hidden: int, dtype) -> tuple[dict, list]:
    """The six variants as functions of the flat leaves (the separate ones return the gradients in the
    order of the flat leaves), and those leaves, in ``dtype``."""
    fn, args, _ = jax_lstm.build(steps, batch, inputs, hidden)
    args = jax.tree_util.tree_map(lambda a: np.asarray(a, dtype), args)

    def unrolled(params, xs, ys):
        return jax_lstm.lstm_loss(params, xs, ys, unroll=True)

    flat, flat_unrolled = FlatFunction(fn, args, (0,)), FlatFunction(unrolled, args, (0,))
    merged, report = merged_function(fn, args)
    merged_whole, _ = merged_function(fn, args, loop_budget=0)
    found = {
        "(a) joint": flat.joint(),
        "(a') joint, unrolled": flat_unrolled.joint(),
        "(b) separate": flat.separate_in_one,
        "(c) separate, unrolled": flat_unrolled.separate_in_one,
        "(d) merged": merged,
        "(d') merged, loops whole": merged_whole,
    }
    assert flat.wrt == list(range(len(flat.wrt))) and report.wrt == [flat.names[i] for i in flat.wrt]
    return found, list(flat.leaves)


def max_error(size: tuple[int, ...]) -> dict[str, float]:
    """Every variant's largest relative error against (a), in float64."""
    found, leaves = variants(*size, np.float64)
    expected = [np.asarray(g) for g in jax.jit(found["(a) joint"])(*leaves)]
    errors = {}
    for name, function in found.items():
        got = [np.asarray(g) for g in jax.jit(function)(*leaves)]
        assert all(g.dtype == np.float64 for g in got), name
        errors[name] = max(float(np.max(np.abs(g - e)) / max(np.max(np.abs(e)), 1e-300))
                           for g, e in zip(got, expected))
    return errors


def measure(size: tuple[int, ...], repeats: int) -> list[dict]:
    """Counts and minimum run time of every variant in float32, the variants in turn."""
    found, leaves = variants(*size, np.float32)
    leaves = jax.block_until_ready(jax.device_put(leaves))
    rows = {}
    for name, function in found.items():
        start = time.perf_counter()
        compiled = jax.jit(function).lower(*leaves).compile()
        seconds = time.perf_counter() - start
        text = compiled.as_text()
        assert " f64[" not in text, f"{name}: float64 in the float32 program"
        rows[name] = {"variant": name, **hlo_counts(text), "executed": executed_dots(text), "compile": seconds,
                      "opcodes": opcode_counts(text), "run": compiled, "times": []}
        jax.block_until_ready(compiled(*leaves))  # warm-up
    order = list(rows)
    for round_ in range(repeats):
        for name in order if round_ % 2 == 0 else reversed(order):
            run = rows[name]["run"]
            start = time.perf_counter()
            jax.block_until_ready(run(*leaves))
            rows[name]["times"].append(time.perf_counter() - start)
    return [{**row, "ms": 1e3 * min(row.pop("times")), "run": None} for row in rows.values()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--sizes", default=SIZES, help=f"steps x batch x inputs x hidden, comma-separated "
                                                       f"(default {SIZES})")
    options = parser.parse_args()
    device = jax.devices()[0]
    print(f"JAX {jax.__version__} on {device.platform} ({device.device_kind}); float32 timings, minimum of "
          f"{options.repeats} calls in turn; errors against (a) in float64")
    for text in options.sizes.split(","):
        size = tuple(int(v) for v in text.split("x"))
        title(f"LSTM: {size[0]} steps, batch {size[1]}, {size[2]} inputs, {size[3]} hidden units")
        errors = max_error(size)
        rows = measure(size, options.repeats)
        table(["variant", "HLO instructions", "dots in HLO", "dots executed", "compile s", "run ms", "max rel. err"],
              [[r["variant"], r["instructions"], r["dots"], r["executed"], f"{r['compile']:.2f}", f"{r['ms']:.3f}",
                f"{errors[r['variant']]:.1e}"] for r in rows])
        by = {r["variant"]: r for r in rows}
        same = [r["variant"] for r in rows if r["opcodes"] == by["(a') joint, unrolled"]["opcodes"]]
        print(f"the same optimised HLO, opcode by opcode: {', '.join(same)}")
        merged, separate, unrolled = by["(d) merged"], by["(b) separate"], by["(c) separate, unrolled"]
        name = "x".join(map(str, size))
        target(f"LSTM {name}: (d) merged / (b) separate, executed dots", merged["executed"] / separate["executed"],
               "<", 1.0, ratio_text)
        target(f"LSTM {name}: (d) merged / (c) JAX-unrolled, executed dots", merged["executed"] / unrolled["executed"],
               "<", 1.0, ratio_text)
        target(f"LSTM {name}: (d) merged / (b) separate, time", merged["ms"] / separate["ms"], "<", 1.0, ratio_text)
        target(f"LSTM {name}: (d) merged / (c) JAX-unrolled, time", merged["ms"] / unrolled["ms"], "<", 1.0,
               ratio_text)


if __name__ == "__main__":
    main()
