"""The user's own derivative calls: :func:`audit_function` of a function that calls ``torch.autograd.grad`` inside.

Scientific-ML code (a PINN's u_t, u_x, u_xx; an interatomic potential's forces and stress;
a MAML inner step) is made of the user's grad calls, not of one call per parameter. While
``fn`` is traced, ``torch.autograd.grad`` is wrapped: each call from the user's code (not from inside PyTorch,
as ``torch.func.grad``'s) runs under the FX meta key
the audit's own calls use (:data:`.capture.GRAD_CALL`), so the nodes its backward builds
belong to it, and it is a grad call of the report named by its line (``mlip.py:14``, then
``mlip.py:14#2`` for its next pass in a Python loop). The duplicated work then reads by call,
by forward node and by top subexpression as for the separate/joint question.

Each call also says what it differentiates (:attr:`UserCall.differentiates`): its
``outputs`` are returned from the trace too, imported and value-numbered, so two calls on
the same output (``energy`` twice, or ``u.sum()`` written twice) are known to be two halves of
one call, and the report's advice says what one call over both inputs saves
(:mod:`graphaudit.analysis.call_advice`). A name bound before the trace (``from
torch.autograd import grad``) is not wrapped: the section says how many calls it saw.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from graphaudit.analysis.audit import audit_graph
from graphaudit.analysis.merge import merge
from graphaudit.analysis.report import Report
from graphaudit.core.source import is_library_file
from graphaudit.frontends import require
from graphaudit.frontends.common import attach_section
from graphaudit.frontends.common.calls import UserCall, UserCalls, user_calls_data, user_calls_lines
import graphaudit.frontends.torch.capture as capturing
from graphaudit.frontends.torch.importer import Importer, aten_calls, import_fx
from graphaudit.frontends.torch.section import TorchSection
from graphaudit.frontends.torch.version import supported_torch

KIND = "torch.autograd.grad"


class _Calls(UserCalls):
    """The user's grad calls met while tracing, in order, with the output tensors each differentiated."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the calls met: ``make_fx`` may run the program more than once, and the last run is the graph."""
        super().__init__()
        self.outputs: list[list[Any]] = []

    def new(self, frame: Any, outputs: Any) -> int:
        """A new call made from ``frame`` (its user's line) on ``outputs``; its number."""
        self.named(KIND, frame)
        self.outputs.append(list(outputs) if isinstance(outputs, (list, tuple)) else [outputs])
        return len(self.calls) - 1


@contextlib.contextmanager
def _wrapped(torch: Any, calls: _Calls) -> Iterator[None]:
    """``torch.autograd.grad`` running each call under its own :data:`.capture.GRAD_CALL` tag."""
    traceback = require("torch.fx.traceback", "torch")
    original = torch.autograd.grad

    @functools.wraps(original)
    def grad(outputs: Any, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        caller = sys._getframe(1)
        if is_library_file(caller.f_code.co_filename):  # torch.func.grad, or grad calling itself: not the user's
            return original(outputs, inputs, *args, **kwargs)
        with traceback.annotate({capturing.GRAD_CALL: calls.new(caller, outputs)}):
            return original(outputs, inputs, *args, **kwargs)

    torch.autograd.grad = grad
    try:
        yield
    finally:
        torch.autograd.grad = original


class TracedCalls(NamedTuple):
    """A program of the user's grad calls, traced and imported (:func:`trace_calls`)."""

    captured: capturing.Capture
    importer: Importer  # which node each FX node became; its sources
    outputs: list  # the nodes of the program's own results (not what the calls differentiated)
    calls: list[UserCall]
    trace_seconds: float
    import_seconds: float


def trace_calls(run: Callable[[tuple], Any], named: capturing.Named, module: Any = None) -> TracedCalls:
    """``run((params, fixed, inputs))`` (the user's function on those tensors) traced on fakes, each
    ``torch.autograd.grad`` call it makes a :class:`UserCall`, and imported; ``module``'s submodule paths
    name its forward nodes."""
    torch = supported_torch()
    pytree = require("torch.utils._pytree", "torch")
    calls = _Calls()
    returned = [0]  # how many of the program's outputs are run's (the rest: what the calls differentiated)

    def program(param_values: list, fixed_values: list, input_values: list):
        calls.reset()
        with capturing.module_paths(module) if module is not None else contextlib.nullcontext(), \
                _wrapped(torch, calls):
            result = run((param_values, fixed_values, input_values))
        leaves = [leaf for leaf in pytree.tree_leaves(result) if isinstance(leaf, torch.Tensor)]
        returned[0] = len(leaves)
        return leaves + [t for outputs in calls.outputs for t in outputs]

    start = time.perf_counter()
    captured = capturing.trace_program(program, named)
    trace_seconds = time.perf_counter() - start
    start = time.perf_counter()
    importer = import_fx(captured.graph, capturing.graph_leaves(named), calls.calls)
    import_seconds = time.perf_counter() - start
    outputs, differentiated = importer.outputs[:returned[0]], importer.outputs[returned[0]:]
    if not outputs:
        raise ValueError("audit_function: fn returned no tensors")
    _note_what_each_call_differentiates(calls, differentiated)
    return TracedCalls(captured, importer, outputs, calls.calls, trace_seconds, import_seconds)


def audit_function(fn: Callable, *example_inputs: Any, params: Any, commutative: bool = False) -> Report:
    """What merging equal subexpressions removes from ``fn(params, *example_inputs)`` as PyTorch runs it,
    each ``torch.autograd.grad`` call of ``fn`` a grad call of the report (see the module docstring).

    For patterns other than one grad call per parameter: derivatives of a PINN, forces and
    stress, per-sample gradients in a loop, a Jacobian row by row, ``torch.func.vmap(torch.func.grad(...))``.
    ``fn`` returns tensors (a list, a tuple, any pytree); it is traced on fake tensors like
    :func:`~.audit.audit`'s program, and the report (:func:`graphaudit.audit_graph`'s, forms
    ``original`` and ``original_merged``) costs them. Its section's ``fx_nodes`` has one form,
    ``original``, and ``user_calls`` lists the calls seen.
    """
    torch = supported_torch()
    if not callable(fn):
        raise TypeError(f"audit_function: fn must be a function, got {type(fn).__name__}")
    named = capturing.named_tensors(fn, params, example_inputs)
    traced = trace_calls(lambda values: capturing.run_loss(fn, params, named, values, example_inputs), named,
                         module=params if named.is_module else None)
    report = audit_graph(traced.outputs, commutative=commutative, sources=traced.importer.sources)
    section = TorchFunctionSection(name="PyTorch", version=torch.__version__, parameters=len(named.params),
                           fx_nodes={"original": aten_calls(traced.captured.traced.graph.nodes)},
                           trace_seconds=traced.trace_seconds, import_seconds=traced.import_seconds,
                           user_calls=user_calls_data(traced.calls))
    return attach_section(report, section)


class TorchFunctionSection(TorchSection):
    """:class:`TorchSection` of an :func:`audit_function` report, with ``user_calls``: the
    ``torch.autograd.grad`` calls seen (``kind``, ``where``, ``source``), as the rows name them."""

    def lines(self) -> list[str]:
        return user_calls_lines(self["user_calls"], "PyTorch: fn made no torch.autograd.grad call that graphaudit "
                                "saw (a name bound before the trace, `from torch.autograd import grad`, is not seen): "
                                "all work counts as forward")


def _note_what_each_call_differentiates(calls: _Calls, differentiated: list) -> None:
    """Each call's ``differentiates``: the ids of its outputs once merged, so equal outputs give equal keys."""
    merged = merge(differentiated).mapping if differentiated else {}
    position = 0
    for call, outputs in zip(calls.calls, calls.outputs):
        nodes = differentiated[position:position + len(outputs)]
        position += len(outputs)
        call.differentiates = tuple(sorted(merged[node].id for node in nodes))
