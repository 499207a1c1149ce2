"""Benchmark: running the merged graph. Four training steps made of ``torch.autograd.grad`` calls, each run
four ways, timed in turn in one process (minimum of the repeats):

- ``eager``: the step as written;
- ``torch.compile``: ``torch.compile(step)`` where PyTorch compiles it (it refuses double backward: the
  PINN's and WGAN-GP's ``create_graph=True``, and the row says so);
- ``make_fx``: the step traced by ``make_fx`` on real tensors, not merged: every derivative as plain aten
  ops, no autograd left (what tracing alone gains), and ``make_fx+compile``: that graph compiled by inductor;
- ``deduplicate``: ``graphaudit.frontends.torch.deduplicate(step, ...)``, the merged FX graph run eagerly;
- ``deduplicate(compile=True)``: the same graph compiled by inductor.

Steps (``examples/torch_remedy.py``, float32, at training sizes): the seed's question (one call per
parameter of a sigmoid MLP 512-256-128-64-10, batch 128), a heat-equation PINN (a 3-hidden-layer tanh MLP of
width 64, 2,048 collocation points, u_t and u_xx nested), forces and stress of a pair potential (64 atoms,
two calls), a WGAN-GP critic step (an MLP 64-128-128-1, batch 64).

    python benchmarks/bench_remedy.py [--repeats 20]
    python benchmarks/bench_remedy.py --zoo      # the model zoo's separate calls deduplicated, against eager

Targets: ``deduplicate`` below ``eager`` on every step (it runs a subset of the kernels eager runs), and
``deduplicate(compile=True)`` below both where eager repeats matmuls.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.fx.experimental.proxy_tensor import make_fx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import torch_remedy as remedy  # noqa: E402
from torch_sciml import potential  # noqa: E402

from common import ratio_text, target  # noqa: E402

from graphaudit.frontends.torch import deduplicate  # noqa: E402


def steps(dtype=torch.float32) -> dict[str, tuple]:
    generator = torch.Generator().manual_seed(1)

    def rand(*shape):
        return torch.rand(*shape, generator=generator, dtype=dtype)

    seed = remedy.mlp((512, 256, 128, 64, 10), nn.Sigmoid, dtype=dtype)
    pinn = remedy.mlp((2, 64, 64, 64, 1), nn.Tanh, dtype=dtype)
    atoms = remedy.Energy(potential(64).to(dtype))
    critic = remedy.mlp((64, 128, 128, 1), lambda: nn.LeakyReLU(0.2), dtype=dtype)
    return {
        "seed MLP, separate calls": (remedy.seed_step(seed), (remedy.parameters(seed), rand(128, 512),
                                                              torch.randint(0, 10, (128,), generator=generator))),
        "PINN step": (remedy.pinn_step(pinn), (remedy.parameters(pinn), rand(2048, 1), rand(2048, 1))),
        "forces and stress": (remedy.forces_and_stress_step(atoms), (remedy.parameters(atoms), rand(64, 3),
                                                                     torch.eye(3, dtype=dtype))),
        "WGAN-GP critic": (remedy.wgan_gp_step(critic), (remedy.parameters(critic), rand(64, 64), rand(64, 64),
                                                         rand(64, 1))),
    }


def variants(step, args) -> dict:
    """The four ways to run ``step``: a callable each, or the one line saying why there is none."""
    compiled = torch.compile(step)
    try:
        compiled(*args)
    except Exception as error:  # what torch.compile says about this step
        compiled = str(error).strip().splitlines()[0][:90]
    found = {"eager": step, "torch.compile": compiled}
    traced = make_fx(step)(*args)
    found["make_fx"] = lambda *a: _no_grad(traced, a)
    compiled_trace = torch.compile(traced)
    found["make_fx+compile"] = lambda *a: _no_grad(compiled_trace, a)
    start = time.perf_counter()
    found["deduplicate"] = deduplicate(step, *args)
    found["trace+merge s"] = time.perf_counter() - start
    found["deduplicate(compile=True)"] = deduplicate(step, *args, compile=True)
    return found


def _no_grad(graph_module, args):
    with torch.no_grad():
        return graph_module(*args)


def minimum_times(runs: dict, args, repeats: int) -> dict[str, float]:
    """The minimum over ``repeats`` rounds of each run's seconds, the runs in turn (alternating order)."""
    times = {name: [] for name in runs}
    for run in runs.values():
        run(*args)  # warm-up: compiles, allocates
    order = list(runs)
    for round_ in range(repeats):
        for name in order if round_ % 2 == 0 else reversed(order):
            start = time.perf_counter()
            runs[name](*args)
            times[name].append(time.perf_counter() - start)
    return {name: min(seconds) for name, seconds in times.items()}


def zoo() -> None:
    """The model zoo (``zoo_models.py``: transformers from tiny configs, CNNs, recurrent nets; float64):
    one call per parameter, deduplicated; its aten and matmul calls before and after, the joint call's
    matmul calls, and the largest difference from eager PyTorch's gradients (one seed for both)."""
    import warnings

    import zoo_models

    print(f"{'model':<22}{'params':>7}{'aten calls':>16}{'matmul calls':>15}{'joint':>7}{'max |diff|':>12}")
    for name in zoo_models.MODELS:
        loss_fn, model, *inputs = zoo_models.build(name)
        params = {key: p.detach().clone().requires_grad_(True) for key, p in model.named_parameters()}
        buffers = {key: b.clone() for key, b in model.named_buffers()}
        separate, joint = remedy.zoo_steps(loss_fn, model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a BatchNorm in training writes its statistics: said elsewhere
            fast = deduplicate(separate, params, buffers, *inputs)
        torch.manual_seed(1)
        got = fast(params, buffers, *inputs)
        torch.manual_seed(1)
        want = separate(params, {key: b.clone() for key, b in buffers.items()}, *inputs)
        difference = max((float((a - b).abs().max()) for a, b in zip(got, want) if b is not None), default=0.0)
        calls = fast.report.framework["fx_nodes"]
        joint_matmuls = remedy.matmul_calls(joint, params, {key: b.clone() for key, b in buffers.items()}, *inputs)
        print(f"{name:<22}{len(params):>7}{calls['original']['nodes']:>8} -> {calls['deduplicated']['nodes']:<5}"
              f"{calls['original']['matmuls']:>7} -> {calls['deduplicated']['matmuls']:<5}{joint_matmuls:>7}"
              f"{difference:>12.1e}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--zoo", action="store_true", help="instead: the model zoo's separate calls, deduplicated")
    args = parser.parse_args()
    if args.zoo:
        zoo()
        return
    torch.manual_seed(0)
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads, float32, minimum of {args.repeats} "
          "runs in turn\n")
    columns = ["eager", "torch.compile", "make_fx", "make_fx+compile", "deduplicate", "deduplicate(compile=True)"]
    short = {"deduplicate(compile=True)": "dedup+compile", "make_fx+compile": "make_fx+comp."}
    print(f"{'step (ms)':<26}" + "".join(f"{short.get(c, c):>15}" for c in columns) + "  matmuls")
    refusals = []
    for name, (step, example) in steps().items():
        found = variants(step, example)
        runs = {k: v for k, v in found.items() if callable(v)}
        times = minimum_times(runs, example, args.repeats)
        calls = found["deduplicate"].report.framework["fx_nodes"]
        if "torch.compile" not in times:
            refusals.append(f"{name}: {found['torch.compile']}")
        cells = [f"{times[c] * 1e3:>15.2f}" if c in times else f"{'refused':>15}" for c in columns]
        print(f"{name:<26}" + "".join(cells) + f"  {calls['original']['matmuls']} -> {calls['deduplicated']['matmuls']}")
        ratios = ", ".join(f"{c} {times[c] / times['eager']:.2f}" for c in columns[1:] if c in times)
        print(f"{'':<26}/ eager: {ratios}; traced and merged in {found['trace+merge s']:.2f} s")
        target(f"{name}: deduplicate / eager", times["deduplicate"] / times["eager"], "<", 1.0, ratio_text)
        target(f"{name}: deduplicate(compile=True) / eager", times["deduplicate(compile=True)"] / times["eager"],
               "<", 1.0, ratio_text)
    for line in refusals:
        print(f"\ntorch.compile refused {line}")


if __name__ == "__main__":
    main()
