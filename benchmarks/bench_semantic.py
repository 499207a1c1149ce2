"""Benchmark: semantic merging (equality saturation, ``ga.merge(..., semantic=True)``) vs value numbering.

Random tensor DAGs of add, mul, matmul and transpose over 4x4 matrices, in which a quarter
of the nodes rebuild an earlier node as written (a syntactic duplicate) and a quarter
rebuild one written differently (operands swapped, a transpose of a transpose, a product
as the transpose of the transposed product). Per size, in one process: the operations,
the classes value numbering finds (``ga.merge``), with commutative inputs sorted
(``commutative=True``), and after saturating with the default rules (the e-classes of
the operations, and the nodes of the semantic merged graph, which leaves behind the classes
only merged nodes read); egglog's load and saturate times; the whole semantic merge against
the syntactic merge of the same graph. Then the growth exponent of the semantic merge's time.

    python benchmarks/bench_semantic.py                      # ~1k, ~10k, ~100k ops
    python benchmarks/bench_semantic.py --sizes 1000 1000000
"""

from __future__ import annotations

import argparse
import random

import numpy as np

import graphaudit as ga
from common import count_text, loglog_slope, median_time, ratio_text, seconds_text, table, target, title

SIZES = (1_000, 10_000, 100_000)
REPEATS, BUDGET = 5, 10.0
WINDOW = 64  # operands are drawn from the last WINDOW nodes: deep graphs, as backward passes are


def random_dag(ops: int, seed: int = 0) -> list[ga.Node]:
    """A random DAG of about ``ops`` operations; its outputs are the nodes nothing else reads."""
    rng = random.Random(seed)
    pool = [ga.placeholder(f"x{i}", (4, 4)) for i in range(8)]
    built: list[ga.Node] = []
    read: set[int] = set()
    while len(built) < ops:
        choice = rng.random()
        if built and choice < 0.25:  # the same node again, as written
            old = rng.choice(built)
            node = ga.apply(old.op, old.inputs, **dict(old.attrs))
        elif built and choice < 0.5:  # the same value, written differently
            node = _rewritten(rng.choice(built), rng)
        else:
            a, b = rng.choice(pool[-WINDOW:]), rng.choice(pool[-WINDOW:])
            op = rng.choice(("add", "mul", "matmul", "transpose"))
            node = ga.transpose(a) if op == "transpose" else ga.apply(op, (a, b))
        read.update(i.id for i in node.inputs)
        built.append(node)
        pool.append(node)
    return [node for node in built if node.id not in read]


def _rewritten(node: ga.Node, rng: random.Random) -> ga.Node:
    if node.op in ("add", "mul"):
        return ga.apply(node.op, node.inputs[::-1])
    if node.op == "matmul":
        a, b = node.inputs
        return ga.transpose(ga.transpose(b) @ ga.transpose(a))
    return ga.transpose(ga.transpose(node)) if rng.random() < 0.5 else ga.apply(node.op, node.inputs, **dict(node.attrs))


def row(ops: int) -> dict:
    outputs = random_dag(ops)
    syntactic = median_time(lambda: ga.merge(outputs), repeats=REPEATS, budget=BUDGET)
    commutative = ga.merge(outputs, commutative=True)
    semantic = median_time(lambda: ga.merge(outputs, semantic=True), repeats=REPEATS, budget=BUDGET)
    stats = semantic.result.saturation
    return {
        "ops": syntactic.result.nodes_before, "syntactic": syntactic.result.nodes_after,
        "commutative": commutative.nodes_after, "semantic": semantic.result.nodes_after,
        "eclasses": len(np.unique(semantic.result.canonical[~semantic.result.leaf])),
        "stopped": stats.stopped, "iterations": stats.iterations, "load": stats.load_seconds,
        "saturate": stats.saturate_seconds, "merge_seconds": syntactic.seconds, "semantic_seconds": semantic.seconds,
        "timings": (str(syntactic), str(semantic)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="operations per graph")
    args = parser.parse_args()
    ga.merge([ga.placeholder("warm", (1,)) + 1.0], semantic=True)  # egglog's import is not part of a row
    title("semantic merge (egglog, default rules, associativity off) vs value numbering")
    rows = [row(ops) for ops in args.sizes]
    table(
        ["ops", "syntactic classes", "commutative merge", "e-classes", "merged graph", "iterations", "load", "saturate",
         "syntactic merge", "semantic merge", "semantic / syntactic"],
        [[count_text(r["ops"]), count_text(r["syntactic"]), count_text(r["commutative"]),
          count_text(r["eclasses"]), count_text(r["semantic"]),
          f"{r['iterations']} ({r['stopped']})", seconds_text(r["load"]), seconds_text(r["saturate"]),
          r["timings"][0], r["timings"][1], ratio_text(r["semantic_seconds"] / r["merge_seconds"])] for r in rows],
    )
    if len(rows) > 1:
        slope = loglog_slope([r["ops"] for r in rows], [r["semantic_seconds"] for r in rows])
        print(f"growth exponent of the semantic merge's time: {slope:.2f} (1.0 = linear)")
    near = min(rows, key=lambda r: abs(np.log(r["ops"] / 100_000)))  # the target is at 100k ops
    target(f"semantic merge within 10x of the syntactic merge at {count_text(near['ops'])} ops",
           near["semantic_seconds"] / near["merge_seconds"], "<", 10.0, ratio_text)


if __name__ == "__main__":
    main()
