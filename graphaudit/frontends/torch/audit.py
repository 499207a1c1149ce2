"""Does PyTorch repeat the backward work? The user's own ``autograd.grad`` calls, one per parameter vs one joint.

:func:`audit` traces the user's program once on fake tensors (:mod:`.capture`): the forward,
one ``torch.autograd.grad`` per parameter, one joint call; imports the FX graph
(:mod:`.importer`) and compares the two forms with the core :func:`graphaudit.compare_forms`.
Optionally it asks what PyTorch's own FX CSE and inductor keep (``compile_check=True``,
:mod:`.compile_check`) and times both forms in eager PyTorch (``measure=True``). PyTorch's
figures go in a :class:`TorchSection`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from graphaudit.analysis.timing import Run
from graphaudit.frontends import require
from graphaudit.frontends.common import AuditOptions, BuiltForms, audit_forms
import graphaudit.frontends.torch.capture as capturing
from graphaudit.frontends.torch.importer import aten_calls, from_fx
from graphaudit.frontends.torch.version import supported_torch
from graphaudit.core.graph import GradCall
from graphaudit.analysis.report import Report
from graphaudit.frontends.torch.section import TorchSection


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
        outputs, names, sources = from_fx(captured.graph, capturing.graph_leaves(self.named), calls)
        self.import_seconds = time.perf_counter() - start
        self.fx_nodes = _fx_counts(captured.traced, len(wrt), options.materialize)
        separate = outputs[: len(wrt)] if options.materialize else None
        return BuiltForms(wrt, outputs[-len(wrt):], separate, names, sources)

    def section(self, built: BuiltForms, report: Report) -> TorchSection:
        section = TorchSection(name="PyTorch", version=supported_torch().__version__, parameters=len(built.wrt),
                               fx_nodes=self.fx_nodes, trace_seconds=self.trace_seconds,
                               import_seconds=self.import_seconds)
        if self.named.no_gradient:
            section["no_gradient"] = list(self.named.no_gradient)
        return section

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


def _fx_counts(graph_module: Any, parameters: int, traced_separate: bool = True) -> dict[str, dict[str, int]]:
    """Per form, the aten calls PyTorch runs (the first trace; ``getitem`` and ``detach`` left out) and products
    among them.

    Both forms hold the one forward; the separate form the calls ``0 .. parameters-1``, the
    joint form call ``parameters``. A trace without the separate calls has the joint form only.
    """
    forms: dict[str, list] = {form: [] for form in ("separate", "joint") if traced_separate or form == "joint"}
    for fx_node in graph_module.graph.nodes:
        call = (fx_node.meta.get("custom") or {}).get(capturing.GRAD_CALL)
        for form in ("separate", "joint") if call is None else ("joint",) if call == parameters else ("separate",):
            if form in forms:
                forms[form].append(fx_node)
    return {form: aten_calls(nodes) for form, nodes in forms.items()}


# --- eager run times -----------------------------------------------------------------------------


def _check_real(named: capturing.Named, option: str) -> None:
    """``measure`` and ``compile_check`` run the program: every tensor must hold data (not meta, not fake)."""
    fake_tensor = require("torch._subclasses.fake_tensor", "torch")
    for group in named[:3]:
        for name, tensor in group.items():
            if tensor.is_meta or isinstance(tensor, fake_tensor.FakeTensor):
                where = "meta" if tensor.is_meta else "fake"
                raise ValueError(f"audit: {option} runs the program on real tensors, but {name} is a {where} tensor")
