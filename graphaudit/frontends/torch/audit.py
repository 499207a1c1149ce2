"""Does PyTorch repeat the backward work? The user's own ``autograd.grad`` calls, one per parameter vs one joint.

:func:`audit` traces the user's program once on fake tensors (:mod:`.capture`): the forward,
one ``torch.autograd.grad`` per parameter, one joint call; imports the FX graph
(:mod:`.importer`) and compares the two forms with the core :func:`graphaudit.compare_forms`.
Optionally it asks what PyTorch's own FX CSE and inductor keep (``compile_check=True``,
:mod:`.compile_check`) and times both forms in eager PyTorch (``measure=True``). PyTorch's
figures go in a :class:`TorchSection`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from graphaudit.analysis.audit import audit_graph
from graphaudit.analysis.timing import Run
from graphaudit.core.describe import seconds_text
from graphaudit.frontends import require
from graphaudit.frontends.common import (
    AuditOptions, BuiltForms, CliFrontend, FrameworkSection, TargetError, a_type, attach_section, audit_forms,
)
import graphaudit.frontends.torch.capture as capturing
from graphaudit.frontends.torch.aten import numpy_dtype, op_key
from graphaudit.frontends.torch.importer import from_fx
from graphaudit.frontends.torch.ops import TABLE
from graphaudit.frontends.torch.version import supported_torch
from graphaudit.core.graph import GradCall, parameter, placeholder
from graphaudit.analysis.advice import AdviceWords
from graphaudit.analysis.report import Report


def audit(
    loss_fn: Callable,
    *example_inputs: Any,
    params: Any,
    compile_check: bool = False,
    measure: bool = False,
    commutative: bool = False,
    semantic: bool = False,
    repeats: int = 5,
    materialize: bool = True,
) -> Report:
    """Audit one ``torch.autograd.grad`` per parameter against one joint call, as the user's program runs them.

    ``params`` is an ``nn.Module`` (every parameter that requires grad, named by its module
    path: ``layers.1.linear1.bias``) or a dict of named tensors; ``loss_fn(params,
    *example_inputs)`` returns a scalar. The inputs may be real, meta or fake tensors:
    auditing allocates none of the model's tensors. ``compile_check=True`` adds what FX CSE
    and inductor keep of the separate grads; ``measure=True`` (real tensors only) times the
    two forms in eager PyTorch, median of ``repeats`` (``report.measured``). The report's
    ``framework`` is a :class:`TorchSection`. ``semantic=True`` (needs egglog) adds what
    equality saturation finds beyond value numbering (``report.semantic``).

    ``materialize=False`` traces the forward and the joint call only, and counts the separate
    form from the joint form (:func:`graphaudit.count_forms`): the same figures in about the
    time of one trace, whatever the number of parameters. What only the built separate form
    has (its pictures, ``compile_check``, ``measure``, ``semantic``) is refused.
    """
    options = AuditOptions(commutative=commutative, semantic=semantic, repeats=repeats, measure=measure,
                           compile_check=compile_check, materialize=materialize)
    return audit_forms(TorchForms(loss_fn, params, example_inputs), options)


class TorchForms:
    """The user's program traced once on fake tensors: the forward, one ``autograd.grad`` per parameter
    (unless counted) and one joint call (:func:`graphaudit.frontends.common.audit_forms`'s front-end)."""

    def __init__(self, loss_fn: Callable, params: Any, inputs: tuple):
        supported_torch()
        if not callable(loss_fn):
            raise TypeError(f"audit: loss_fn must be a function, got {type(loss_fn).__name__}")
        self.loss_fn, self.params, self.inputs = loss_fn, params, inputs

    def build(self, options: AuditOptions) -> BuiltForms:
        start = time.perf_counter()
        captured = capturing.capture(self.loss_fn, self.params, self.inputs, separate_calls=options.materialize)
        self.trace_seconds = time.perf_counter() - start
        self.named = captured.named
        if options.measure or options.compile_check:
            _check_real(self.named, "measure=True" if options.measure else "compile_check=True")
        start = time.perf_counter()
        wrt = list(self.named.params)
        calls = [GradCall([name]) for name in wrt] + [GradCall(wrt)]  # the trace tags the joint call len(wrt)
        outputs, names, sources = from_fx(captured.graph, _leaves(self.named), calls)
        self.import_seconds = time.perf_counter() - start
        self.fx_nodes = _fx_counts(captured.traced, len(wrt), options.materialize)
        separate = outputs[: len(wrt)] if options.materialize else None
        return BuiltForms(wrt, outputs[-len(wrt):], separate, names, sources)

    def section(self, built: BuiltForms, report: Report) -> TorchSection:
        return TorchSection(name="PyTorch", version=supported_torch().__version__, parameters=len(built.wrt),
                            fx_nodes=self.fx_nodes, trace_seconds=self.trace_seconds,
                            import_seconds=self.import_seconds)

    def compile_check(self, built: BuiltForms, report: Report) -> dict[str, Any]:
        checker = require("graphaudit.frontends.torch.compile_check", "torch")
        return checker.compile_check(self.loss_fn, self.params, *self.inputs)

    def timed_runs(self) -> tuple[str, dict[str, Run], dict[str, Any]]:
        """A step (forward and grads) of each form in eager PyTorch, and its backward alone.

        The parameters are read, never written (detached aliases that require grad); buffers are
        cloned, so a BatchNorm updates copies.
        """
        named = self.named
        wrt = [p.detach().requires_grad_(True) for p in named.params.values()]
        values = (wrt, [t.detach().clone() for t in named.fixed.values()], list(named.inputs.values()))
        names = list(named.params)

        def forward():
            return capturing.run_loss(self.loss_fn, self.params, named, values, self.inputs)

        def separate(loss):
            return [g for p, n in zip(wrt, names) for g in capturing.grad(loss, [p], [n], retain_graph=True)]

        def joint(loss):
            return capturing.grad(loss, wrt, names, retain_graph=False)

        runs = {
            "separate": Run(lambda: separate(forward())),
            "joint": Run(lambda: joint(forward()), versus=None),
            "separate backward": Run(separate, setup=forward, versus="joint backward"),
            "joint backward": Run(joint, setup=forward, versus=None),
        }
        return "eager step (forward and grads; backward alone)", runs, {}


def audit_function(fn: Callable, *example_inputs: Any, params: Any, commutative: bool = False) -> Report:
    """What merging equal subexpressions removes from ``fn(params, *example_inputs)`` as PyTorch runs it.

    For patterns other than one grad call per parameter: per-sample gradients in a loop, a
    Jacobian row by row, ``torch.func.vmap(torch.func.grad(...))``. ``fn`` returns tensors (a
    list, a tuple, any pytree); it is traced on fake tensors like :func:`audit`'s program, and
    the report (:func:`graphaudit.audit_graph`'s, forms ``original`` and ``merged``) costs them.
    Its section's ``fx_nodes`` has one form, ``original``.
    """
    torch = supported_torch()
    start = time.perf_counter()
    captured = capturing.capture_function(fn, params, example_inputs)
    trace_seconds = time.perf_counter() - start
    start = time.perf_counter()
    outputs, _, sources = from_fx(captured.graph, _leaves(captured.named), [])
    import_seconds = time.perf_counter() - start
    if not outputs:
        raise ValueError("audit_function: fn returned no tensors")
    report = audit_graph(outputs, commutative=commutative, sources=sources)
    calls = sum(1 for n in captured.traced.graph.nodes if n.op == "call_function")
    products = sum(1 for n in captured.traced.graph.nodes if n.op == "call_function"
                   and hasattr(n.target, "_schema") and TABLE.row(op_key(n.target)[0]).kind == "matmul")
    section = TorchSection(name="PyTorch", version=torch.__version__, parameters=len(captured.named.params),
                           fx_nodes={"original": {"nodes": calls, "matmuls": products}},
                           trace_seconds=trace_seconds, import_seconds=import_seconds)
    return attach_section(report, section)


def _leaves(named: capturing.Named) -> list:
    """One leaf per placeholder: parameters for the differentiated tensors, placeholders for the rest."""
    leaves = [parameter(name, tuple(p.shape), numpy_dtype(p.dtype)) for name, p in named.params.items()]
    return leaves + [placeholder(name, tuple(t.shape), numpy_dtype(t.dtype))
                     for name, t in [*named.fixed.items(), *named.inputs.items()]]


def _fx_counts(graph_module: Any, parameters: int, traced_separate: bool = True) -> dict[str, dict[str, int]]:
    """Per form, the aten calls PyTorch runs (the first trace; ``getitem`` and ``detach`` left out) and products
    among them.

    Both forms hold the one forward; the separate form the calls ``0 .. parameters-1``, the
    joint form call ``parameters``. A trace without the separate calls has the joint form only.
    """
    torch = require("torch", "torch")
    counts = {form: {"nodes": 0, "matmuls": 0} for form in ("separate", "joint") if traced_separate or form == "joint"}
    for fx_node in graph_module.graph.nodes:
        if fx_node.op != "call_function" or not isinstance(fx_node.target, torch._ops.OpOverload):
            continue
        key = op_key(fx_node.target)[0]
        if key == "aten.detach":
            continue
        call = (fx_node.meta.get("custom") or {}).get(capturing.GRAD_CALL)
        forms = ("separate", "joint") if call is None else ("joint",) if call == parameters else ("separate",)
        for form in (f for f in forms if f in counts):
            counts[form]["nodes"] += 1
            counts[form]["matmuls"] += TABLE.row(key).kind == "matmul"
    return counts


# --- eager run times -----------------------------------------------------------------------------


def _check_real(named: capturing.Named, option: str) -> None:
    """``measure`` and ``compile_check`` run the program: every tensor must hold data (not meta, not fake)."""
    fake_tensor = require("torch._subclasses.fake_tensor", "torch")
    for group in named[:3]:
        for name, tensor in group.items():
            if tensor.is_meta or isinstance(tensor, fake_tensor.FakeTensor):
                where = "meta" if tensor.is_meta else "fake"
                raise ValueError(f"audit: {option} runs the program on real tensors, but {name} is a {where} tensor")


# --- the report's PyTorch section ------------------------------------------------------------------


MANY_PARAMETERS = 20  # from here on, the report suggests counting: most of the trace is the separate calls


class TorchSection(FrameworkSection):
    """PyTorch's figures in a report (``report.framework``; ``to_dict()["framework"]``).

    ``name``, ``version`` and ``parameters``; ``fx_nodes`` (per form, the traced FX graph's
    aten calls as ``nodes`` and its products as ``matmuls``; both forms count the one
    forward); ``trace_seconds`` (``make_fx`` of the whole program) and ``import_seconds``;
    ``compile_check`` (only with ``compile_check=True``: the rows of :mod:`.compile_check`
    and its ``verdict``). The eager run times (``measure=True``) are the report's ``measured``.
    """

    def lines(self) -> list[str]:
        lines = super().lines()
        check = self.get("compile_check")
        if check is not None and check.get("verdict"):
            lines.append(check["verdict"])
        return lines

    def advice_words(self) -> AdviceWords:
        """Eager PyTorch runs every call's backward as asked, and torch.compile keeps the duplicates
        (or refuses double backward): nothing recovers the work but the joint call."""
        return AdviceWords("one `torch.autograd.grad(loss, list(model.parameters()))`")

    def closing_lines(self) -> list[str]:
        """The trace: what was traced, what it held, and how long it took."""
        fx = self["fx_nodes"]
        took = f"{seconds_text(self['trace_seconds'])}; imported in {seconds_text(self['import_seconds'])}"
        if "original" in fx:  # audit_function: the user's function as it is
            lines = ["", f"PyTorch {self['version']}: one make_fx trace of the function ({took}); "
                         f"FX aten calls {fx['original']['nodes']}, products {fx['original']['matmuls']}"]
        elif "separate" not in fx:  # counted: the separate calls were never traced
            lines = ["", f"PyTorch {self['version']}: one make_fx trace of the forward and the joint call ({took}); "
                         f"the {self['parameters']} autograd.grad calls counted from it, not traced; FX aten calls "
                         f"joint {fx['joint']['nodes']}, products {fx['joint']['matmuls']}"]
        else:
            lines = [
                "",
                f"PyTorch {self['version']}: one make_fx trace of the forward, {self['parameters']} autograd.grad "
                f"calls and one joint call ({took}); FX aten calls separate {fx['separate']['nodes']} vs joint "
                f"{fx['joint']['nodes']}, products {fx['separate']['matmuls']} vs {fx['joint']['matmuls']}",
            ]
            if self["parameters"] >= MANY_PARAMETERS:
                lines.append(f"(with {self['parameters']} parameters, audit(..., materialize=False), CLI --count, "
                             "counts the separate calls from the joint call's trace: the same figures, one trace)")
        return lines


# --- the command line ----------------------------------------------------------------------------


class TorchTarget(NamedTuple):
    """What a PyTorch target function returns: ``loss_fn(params, *inputs)`` is a scalar."""

    loss_fn: Callable[..., Any]
    params: Any
    inputs: tuple
    name: str


def recognise(result: Any, name: str) -> TorchTarget | None:
    """``result`` as a target when it is ``(loss_fn, params, *inputs)`` with ``params`` an ``nn.Module``
    or a dict of torch tensors; None otherwise. Imports nothing: no torch object exists unless
    torch is imported already."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(result, (tuple, list)) or len(result) < 2:
        return None
    loss_fn, params, *inputs = result
    if isinstance(loss_fn, torch.nn.Module) and callable(params) and not isinstance(params, torch.nn.Module):
        raise TargetError(f"{name} returned ({type(loss_fn).__name__} model, loss_fn, ...): its first item is a model "
                          f"where the loss function belongs; return {CLI.returns}")
    is_module = isinstance(params, torch.nn.Module)
    is_dict = isinstance(params, Mapping) and any(isinstance(v, torch.Tensor) for v in params.values())
    if not (is_module or is_dict):
        return None
    if not callable(loss_fn):
        raise TargetError(f"{name} must return {CLI.returns}: loss_fn is {a_type(loss_fn)}, not a function")
    if is_dict:
        bad = [key for key, value in params.items() if not isinstance(value, torch.Tensor)]
        if bad:
            raise TargetError(f"{name}: params[{bad[0]!r}] is {a_type(params[bad[0]])}, not a torch tensor")
    return TorchTarget(loss_fn, params, tuple(inputs), name)


def audit_target(target: TorchTarget, options: AuditOptions, own: Mapping[str, Any]) -> Report:
    """:func:`audit` of a command-line target."""
    return audit_forms(TorchForms(target.loss_fn, target.params, target.inputs), options)


CLI = CliFrontend(
    name="PyTorch",
    returns="(loss_fn, params, *inputs) for PyTorch",
    options=frozenset({"measure", "repeats", "commutative", "semantic", "compile_check", "count"}),
    recognise=recognise,
    audit=audit_target,
    example="examples/torch_seed_mlp.py:target",
    module="torch",
    extra="torch",
)
