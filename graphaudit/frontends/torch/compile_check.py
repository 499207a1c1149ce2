"""What PyTorch itself gets back of the separate form's duplicated work: its FX CSE passes and torch.compile.

:func:`compile_check` takes what :func:`graphaudit.frontends.torch.audit` takes (the user's
loss, an ``nn.Module`` or a dict of named tensors, real example inputs) and builds both forms
as the user's program runs them: the forward once, then one ``torch.autograd.grad`` per
parameter (separate) or one over all of them (joint). For each form it counts op nodes and
matmuls ("dots": the calls the aten table marks ``matmul``: products, convolutions and their
backwards, attention kernels):

- the ``make_fx`` graph (fake tensors), then PyTorch's two FX CSE passes on it
  (``fx_graph_cse``, which AOTAutograd runs, and ``CSEPass``);
- inductor with ``torch._dynamo.config.trace_autograd_ops=True``, which traces the
  ``autograd.grad`` calls into one graph: the kernels in the generated code;
- eager and inductor with the default config (dynamo breaks the graph at ``autograd.grad``):
  the aten calls executed per step, read with the profiler (a dispatch mode would make
  dynamo run the frame eagerly).

Compiling runs real tensors, so it is opt-in and slow on a CPU (seconds per form even for a
tiny model). Dynamo is reset around each compile; its config is patched only inside it.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from graphaudit.frontends import require
from graphaudit.frontends.torch.ops import TABLE

FORMS = ("separate", "joint")
STEPS = 3  # timed runs of a step; the median is reported
TRACED, FX_CSE, CSE_PASS = "make_fx graph", "after fx_graph_cse (AOTAutograd's)", "after CSEPass"
INDUCTOR_TRACED, EAGER = "inductor, trace_autograd_ops: kernels", "eager: aten calls per step"
INDUCTOR_DEFAULT = "inductor, default config: aten calls/step"
# a kernel launched in the body of inductor's generated `call`: an extern kernel, an op, or a fused C++ kernel
# (named after the ops it fuses, so never a matmul: its name only tells which)
KERNEL = re.compile(r"^\s+(?:\w+ = )?(extern_kernels\.|torch\.ops\.\w+\.|cpp_fused_)(\w+)", re.M)


def is_dot(name: str) -> bool:
    """Whether aten op ``name`` (``mm``, ``convolution_backward``, mkldnn's ``_convolution_pointwise``) is a matmul."""
    return TABLE.row(f"aten.{name}").kind == "matmul" or "convolution" in name


class Programs(NamedTuple):
    """The user's program in both forms, as functions of its tensors: ``fns[form](values, fixed, *inputs)``."""

    values: list  # the parameters to differentiate
    fixed: list  # the module's other tensors (buffers, frozen parameters), copied: a step may update them
    fns: dict[str, Callable]


def programs(loss_fn: Callable, params: Any, inputs: tuple) -> Programs:
    """The forward once, then one ``autograd.grad`` per parameter (separate) or one over all (joint)."""
    torch = require("torch", "torch")
    if isinstance(params, torch.nn.Module):
        named = {n: p for n, p in params.named_parameters() if p.requires_grad}
        fixed = {n: p for n, p in params.named_parameters() if not p.requires_grad} | dict(params.named_buffers())
        model = params

        class Loss(torch.nn.Module):  # the model as a submodule, so functional_call swaps its tensors
            def __init__(self):
                super().__init__()
                self.model = model

            def forward(self, *args):
                return loss_fn(self.model, *args)

        wrapper = Loss()

        def loss(values, fixed_values, args):
            state = zip([*named, *fixed], [*values, *fixed_values])
            return torch.func.functional_call(wrapper, {f"model.{n}": v for n, v in state}, args)
    elif isinstance(params, Mapping):
        named, fixed = dict(params), {}

        def loss(values, fixed_values, args):
            return loss_fn(dict(zip(named, values)), *args)
    else:
        raise TypeError(f"compile_check: params must be an nn.Module or a dict of named tensors, "
                        f"got {type(params).__name__}")

    def separate(values, fixed_values, *args):
        value = loss(values, fixed_values, args)
        return [torch.autograd.grad(value, [p], retain_graph=True)[0] for p in values]

    def joint(values, fixed_values, *args):
        return list(torch.autograd.grad(loss(values, fixed_values, args), values))

    fixed_copies = [t.detach().clone() for t in fixed.values()]
    return Programs(list(named.values()), fixed_copies, {"separate": separate, "joint": joint})


# --- counting ----------------------------------------------------------------------------


def fx_counts(graph: Any) -> dict[str, int]:
    """Op nodes (``call_function``, FX's ``getitem`` too) and matmuls of an FX graph."""
    calls = [n for n in graph.nodes if n.op == "call_function"]
    dots = sum(1 for n in calls if hasattr(n.target, "overloadpacket") and is_dot(n.target.overloadpacket.__name__))
    return {"nodes": len(calls), "dots": dots}


def code_counts(codes: list[str]) -> dict[str, int]:
    """Kernels launched by inductor's generated code (the body of each ``call``), the matmuls among them, and
    the compiled graphs (more than one: dynamo broke the graph, and what ran between the pieces ran eagerly)."""
    names = []
    for code in codes:
        body = code[code.index("def call("):]
        body = body[:re.search(r"\n\S", body).start()]
        names += KERNEL.findall(body)
    dots = sum(kind != "cpp_fused_" and is_dot(name) for kind, name in names)
    return {"nodes": len(names), "dots": dots, "graphs": len(codes)}


def executed_counts(step: Callable[[], Any]) -> tuple[dict[str, int], float]:
    """The aten calls one run of ``step`` makes (outermost ones: ``linear`` counts, its ``addmm`` not), the
    matmuls among them (outermost matmul: ``addmm`` inside ``linear`` counts), and the median time of a step."""
    profiler = require("torch.profiler", "torch")
    with profiler.profile(activities=[profiler.ProfilerActivity.CPU]) as prof:
        step()
    calls, dots = 0, 0
    for event in prof.events():
        if not event.name.startswith("aten::"):
            continue
        ancestors = []
        parent = event.cpu_parent
        while parent is not None:
            ancestors.append(parent.name)
            parent = parent.cpu_parent
        name = event.name.removeprefix("aten::")
        calls += not any(a.startswith("aten::") for a in ancestors)
        dots += is_dot(name) and not any(a.startswith("aten::") and is_dot(a.removeprefix("aten::"))
                                         for a in ancestors)
    return {"nodes": calls, "dots": dots}, _median_seconds(step)


def _median_seconds(step: Callable[[], Any]) -> float:
    times = []
    for _ in range(STEPS):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# --- the check ---------------------------------------------------------------------------


def compile_check(loss_fn: Callable, params: Any, *inputs: Any) -> dict[str, Any]:
    """What PyTorch's CSE and torch.compile keep of the separate form, next to the joint form.

    ``loss_fn(params, *inputs)`` returns the scalar loss; ``params`` is an ``nn.Module`` (its
    parameters that require grad) or a dict of named tensors; ``inputs`` are real tensors
    (or other values). Returns the ``compile_check`` entry of a :class:`FrameworkSection`:
    ``title``, ``rows`` (each ``graph`` and per form ``nodes``, ``dots``, ``seconds``: the
    trace, the pass, the compile with its first run, or the median step) and a one-line
    ``verdict``. A row a compiler failed on says so (``nodes`` "failed", ``error`` its message).
    """
    torch = require("torch", "torch")
    proxy_tensor = require("torch.fx.experimental.proxy_tensor", "torch")
    compile_utils = require("torch._functorch.compile_utils", "torch")
    cse_pass = require("torch.fx.passes.dialect.common.cse_pass", "torch")
    program = programs(loss_fn, params, inputs)
    args = (program.values, program.fixed, *inputs)
    rows: dict[str, dict[str, dict]] = {}

    def row(label: str, form: str, measure: Callable[[], tuple[dict, float | None]]) -> None:
        """Record ``measure()``'s counts and seconds; a compiler's failure as the row's ``error``."""
        try:
            counts, seconds = measure()
        except Exception as error:  # noqa: BLE001 - PyTorch's compilers fail in many ways: the row says how
            counts, seconds = {"nodes": "failed", "dots": "-", "error": _first_line(error)}, None
        rows.setdefault(label, {})[form] = {"seconds": seconds, **counts}

    for form in FORMS:
        fn = program.fns[form]
        traced, seconds = timed(lambda: proxy_tensor.make_fx(fn, tracing_mode="fake")(*args))
        row(TRACED, form, lambda: (fx_counts(traced.graph), seconds))
        row(FX_CSE, form, lambda: timed(lambda: fx_counts(compile_utils.fx_graph_cse(traced.graph))))
        row(CSE_PASS, form, lambda: timed(lambda: fx_counts(cse_pass.CSEPass()(traced).graph_module.graph)))
        row(INDUCTOR_TRACED, form, lambda: timed(lambda: code_counts(_inductor_code(fn, args))))
        row(EAGER, form, lambda: executed_counts(lambda: fn(*args)))
        row(INDUCTOR_DEFAULT, form, lambda: executed_counts(_compiled(fn, args)))
    torch._dynamo.reset()
    table = [{"graph": label, **forms} for label, forms in rows.items()]
    return {"title": "torch.compile and PyTorch's FX CSE on the separate grads", "rows": table,
            "verdict": verdict(rows)}


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    return fn(), time.perf_counter() - start


def _first_line(error: Exception) -> str:
    return f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0]}"


def _inductor_code(fn: Callable, args: tuple) -> list[str]:
    """Inductor's generated code for ``fn`` with the ``autograd.grad`` calls traced into the graph."""
    torch = require("torch", "torch")
    torch._dynamo.reset()
    with torch._dynamo.config.patch(trace_autograd_ops=True):
        return require("torch._inductor.utils", "torch").run_and_get_code(torch.compile(fn), *args)[1]


def _compiled(fn: Callable, args: tuple) -> Callable[[], Any]:
    """A step of ``torch.compile(fn)`` with the default config, compiled (by a first run) before it is returned."""
    torch = require("torch", "torch")
    torch._dynamo.reset()
    compiled = torch.compile(fn)
    compiled(*args)
    return lambda: compiled(*args)


def verdict(rows: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """One line: whether torch.compile removes the duplicated work, by its matmul counts (or how it failed)."""
    parts, kept = [], False
    for label, how in ((INDUCTOR_TRACED, "kernels with trace_autograd_ops"), (INDUCTOR_DEFAULT, "executed per step")):
        separate, joint = rows[label]["separate"], rows[label]["joint"]
        failed = separate.get("error") or joint.get("error")
        if failed:
            parts.append(f"{how}: fails ({failed})")
        else:
            kept |= separate["dots"] > joint["dots"]
            parts.append(f"{separate['dots']} vs {joint['dots']} matmul {how}")
    cse = rows[FX_CSE]
    if cse["separate"].get("error") or cse["joint"].get("error"):
        parts.append(f"FX CSE fails ({cse['separate'].get('error') or cse['joint']['error']})")
    else:
        parts.append("FX CSE recovers it" if cse["separate"]["nodes"] <= cse["joint"]["nodes"] else
                     f"FX CSE leaves {cse['separate']['nodes']} nodes vs the joint's {cse['joint']['nodes']}")
    if all("fails" in part for part in parts[:2]):
        head = "torch.compile cannot compile these grads"
    else:
        head = f"torch.compile {'does not remove' if kept else 'removes'} the duplicated work"
    return f"{head}: separate vs joint " + "; ".join(parts)
