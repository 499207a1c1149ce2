"""The remedy: run the merged graph. :func:`deduplicate` gives back ``fn`` with every duplicated
subexpression computed once.

PyTorch users cannot get that program any other way: inductor keeps every duplicate of separate
grad calls, FX's CSE recovers only the simplest, and ``torch.compile`` refuses double backward,
so a PINN's or an interatomic potential's training step stays in eager mode. graphaudit
already builds the merged graph to count it; here it runs it.

How: ``fn`` is traced like :func:`~.function.audit_function`'s program (``make_fx`` on fake
tensors, each ``torch.autograd.grad`` call a grad call named by its line, then again without
writes), imported, and merged by the report's own merge (:func:`graphaudit.audit_graph`:
multi-result ops split, views and ``as_strided`` reads as the importer has them, random
draws never merged). Then the merge is written back into that FX graph: every FX node whose
value equals an earlier one's is replaced by it, and what nothing reads any more is removed
(random draws stay, so the draws are those ``fn`` makes, in its order). What is left is an FX
``GraphModule`` of aten ops with no autograd in it, which eager PyTorch runs as it is and
inductor compiles (``compile=True``), double backward included.

The result is checked once against ``fn`` on the example arguments (the same seed for both,
so that random draws match), carries the audit report (``.report``: what was removed), and
refuses in one line a call whose tensors differ in shape, dtype or device from the traced ones,
or whose other arguments differ (they are constants of the trace): call :func:`deduplicate`
again for new shapes. Its results are plain tensors, without autograd history: the gradients
``fn`` computes, computed once.
"""

from __future__ import annotations

import inspect
import operator
import warnings
from collections.abc import Callable
from typing import Any

from graphaudit.analysis.audit import audit_graph
from graphaudit.analysis.report import Report
from graphaudit.core.graph import Node
from graphaudit.frontends import require
from graphaudit.frontends.common import attach_section
import graphaudit.frontends.torch.aten as aten
import graphaudit.frontends.torch.capture as capturing
from graphaudit.frontends.common.calls import user_calls_data
from graphaudit.frontends.torch.function import TorchFunctionSection, trace_calls
from graphaudit.frontends.torch.importer import aten_calls
from graphaudit.frontends.torch.untouched import untouched
from graphaudit.frontends.torch.version import supported_torch

CHECK_SEED = 0  # the seed both fn and the merged graph run under when checked against each other


class Deduplicated:
    """``fn`` with every duplicated subexpression computed once; call it as ``fn``.

    ``graph_module`` is the merged program (an FX ``GraphModule`` of aten ops taking the
    tensors of ``fn``'s arguments, flattened); ``report`` is the audit of ``fn``'s program,
    whose merged form is what runs; ``matmuls`` counts the matmul and convolution calls it
    makes, ``fn``'s own in ``report.framework['fx_nodes']``.
    """

    def __init__(self, fn: Callable, graph_module: Any, run: Callable, report: Report, arguments: list,
                 in_spec: Any, out_spec: Any, names: list[str]):
        self.__wrapped__ = fn
        self.graph_module = graph_module
        self.report = report
        self.matmuls = aten_calls(graph_module.graph.nodes)["matmuls"]
        self._run = run
        self._arguments = arguments  # fn's flattened arguments as traced: tensors by (shape, dtype, device)
        self._in_spec, self._names = in_spec, names
        self._out_spec = out_spec  # fn's result: its pytree spec, and which leaves are None (no gradient)

    def __call__(self, *args: Any) -> Any:
        torch = require("torch", "torch")
        pytree = require("torch.utils._pytree", "torch")
        flat, spec = pytree.tree_flatten(args)
        if spec != self._in_spec:
            raise ValueError(f"deduplicate: called with arguments shaped {spec}, traced with {self._in_spec}: "
                             "call deduplicate again for these")
        tensors = []
        for name, given, traced in zip(self._names, flat, self._arguments):
            if isinstance(traced, tuple):
                if not isinstance(given, torch.Tensor) or _signature(given) != traced:
                    what = _describe(_signature(given)) if isinstance(given, torch.Tensor) else type(given).__name__
                    raise ValueError(f"deduplicate: {name} is {what}, traced as {_describe(traced)}: "
                                     "call deduplicate again for the new shapes")
                tensors.append(given)
            elif not _same_constant(given, traced):
                raise ValueError(f"deduplicate: {name} is {given!r}, traced as {traced!r} (a constant of the trace): "
                                 "call deduplicate again for it")
        with torch.no_grad():
            results = iter(self._run(*tensors))
        spec, nones = self._out_spec
        return pytree.tree_unflatten([None if none else next(results) for none in nones], spec)

    def __repr__(self) -> str:
        name = getattr(self.__wrapped__, "__qualname__", "fn")
        forms = self.report.forms
        return (f"<deduplicated {name}: {forms['original_merged'].cost.nodes} of {forms['original'].cost.nodes} "
                f"nodes, {self.matmuls} matmul calls>")


def deduplicate(fn: Callable, *example_args: Any, compile: bool = False) -> Deduplicated:
    """``fn`` (a function of tensors and pytrees of tensors that may call ``torch.autograd.grad``,
    ``create_graph=True`` included), traced on ``example_args`` and merged: a :class:`Deduplicated`
    that runs the merged graph, eagerly or, with ``compile=True``, compiled by inductor.

    Tensors ``fn`` reads from elsewhere (a module it closes over) are held by the merged graph
    as they are, by reference: an in-place update (an optimizer's step) is seen, a tensor
    replaced by another is not; pass them as arguments (``torch.func.functional_call``) to be
    sure. Writes ``fn`` makes to its arguments or to those tensors (a BatchNorm's running
    statistics) are not made by the merged graph: a warning names them.
    """
    torch = supported_torch()
    pytree = require("torch.utils._pytree", "torch")
    if not callable(fn):
        raise TypeError(f"deduplicate: fn must be a function, got {type(fn).__name__}")
    flat, in_spec = pytree.tree_flatten(example_args)
    names = _argument_names(fn, example_args)
    for name, leaf in zip(names, flat):
        if isinstance(leaf, torch.Tensor) and (leaf.device.type != "cpu" or leaf.is_meta):
            raise ValueError(f"deduplicate: {name} is on {leaf.device}; graphaudit traces CPU tensors: pass CPU "
                             "examples (the merged graph is made for the device it was traced on)")
    positions = [i for i, leaf in enumerate(flat) if isinstance(leaf, torch.Tensor)]
    graded = [i for i in positions if flat[i].requires_grad]
    named = capturing.Named(params={names[i]: flat[i] for i in graded}, fixed={},
                            inputs={names[i]: flat[i] for i in positions if i not in graded}, is_module=False)
    order = graded + [i for i in positions if i not in graded]  # the trace's placeholders, as fn's leaves
    out_spec = []

    def run(values: tuple) -> list:
        leaves = list(flat)
        for i, value in zip(order, [*values[0], *values[2]]):
            leaves[i] = value
        result = fn(*pytree.tree_unflatten(leaves, in_spec))
        out_flat, spec = pytree.tree_flatten(result)
        bad = [type(leaf).__name__ for leaf in out_flat if leaf is not None and not isinstance(leaf, torch.Tensor)]
        if bad:
            raise TypeError(f"deduplicate: fn must return tensors (any pytree of them, None for no gradient), "
                            f"it returned a {bad[0]}")
        out_spec[:] = [(spec, [leaf is None for leaf in out_flat])]
        return [leaf for leaf in out_flat if leaf is not None]

    traced = trace_calls(run, named)
    report = audit_graph(traced.outputs, sources=traced.importer.sources)
    _warn_about_writes(traced.captured.traced, [names[i] for i in order])
    original = aten_calls(traced.captured.traced.graph.nodes)
    graph_module = merged_graph_module(traced, report, len(traced.outputs))  # rewrites the trace's graph
    section = TorchFunctionSection(name="PyTorch", version=torch.__version__, parameters=len(graded),
                                   fx_nodes={"original": original,
                                             "deduplicated": aten_calls(graph_module.graph.nodes)},
                                   trace_seconds=traced.trace_seconds, import_seconds=traced.import_seconds,
                                   user_calls=user_calls_data(traced.calls))
    report = attach_section(report, section)
    run_merged = torch.compile(graph_module, fullgraph=True) if compile else graph_module
    arguments = [_signature(leaf) if isinstance(leaf, torch.Tensor) else leaf for leaf in flat]
    deduplicated = Deduplicated(fn, graph_module, run_merged, report, arguments, in_spec, out_spec[0], names)
    _check(fn, deduplicated, example_args)
    return deduplicated


def merged_graph_module(traced: Any, report: Report, returned: int) -> Any:
    """The traced program's FX graph (without writes) with the merge written back: each FX node whose
    node merged into an earlier one's reads that one instead, then what nothing reads is removed;
    flat arguments (the placeholders, in order) and the first ``returned`` results."""
    torch = require("torch", "torch")
    fx = traced.captured.graph
    result = report.merges[report.audited_form]
    position = {id(node): i for i, node in enumerate(result.source)}
    first: dict[int, Any] = {}  # canonical position -> the first FX node with that value
    for fx_node in list(fx.graph.nodes):
        node = traced.importer.env.get(fx_node)
        if not isinstance(node, Node) or id(node) not in position:
            continue
        canonical = int(result.canonical[position[id(node)]])
        if canonical in first:
            fx_node.replace_all_uses_with(first[canonical])
        else:
            first[canonical] = fx_node
    output = next(n for n in fx.graph.nodes if n.op == "output")
    output.args = (tuple(require("torch.utils._pytree", "torch").tree_leaves(output.args)[:returned]),)
    fx.graph.set_codegen(torch.fx.graph.CodeGen())  # flat tensors in, a tuple out: no pytree specs left
    _without_hidden_writes(fx.graph)
    _one_call_per_output_mask(fx.graph)
    for fx_node in reversed(list(fx.graph.nodes)):
        if fx_node.op == "call_function" and not fx_node.users and _removable(fx_node):
            fx.graph.erase_node(fx_node)
    fx.graph.lint()
    return torch.fx.GraphModule(fx, fx.graph)


def _one_call_per_output_mask(graph: Any) -> None:
    """Backward calls that differ only in the results they ask for (``convolution_backward`` with
    ``output_mask`` [True, False, False] in one grad call, [False, True, False] in the next) as one
    call asking for all of them, as the joint call makes it: the merge has made their inputs the
    same nodes, and the graph counts each result as its own node either way."""
    torch = require("torch", "torch")
    first: dict[tuple, Any] = {}
    for fx_node in list(graph.nodes):
        target = fx_node.target
        if not isinstance(target, torch._ops.OpOverload) or aten.OUTPUT_MASK not in fx_node.kwargs and \
                not any(a.name == aten.OUTPUT_MASK for a in target._schema.arguments[:len(fx_node.args)]):
            continue
        position = [a.name for a in target._schema.arguments].index(aten.OUTPUT_MASK)
        args, kwargs = list(fx_node.args), dict(fx_node.kwargs)
        mask = args[position] if position < len(args) else kwargs.pop(aten.OUTPUT_MASK)
        if position < len(args):
            args[position] = None
        key = (target, _hashable(args), _hashable(sorted(kwargs.items())))
        if key not in first:
            first[key] = fx_node
            continue
        kept = first[key]
        kept_mask = _mask_of(kept, position)
        union = [a or b for a, b in zip(kept_mask, mask)]
        if position < len(kept.args):
            kept.args = (*kept.args[:position], union, *kept.args[position + 1:])
        else:
            kept.kwargs = {**kept.kwargs, aten.OUTPUT_MASK: union}
        results = {user.args[1]: user for user in kept.users if user.target is operator.getitem}
        for user in list(fx_node.users):
            index = user.args[1]
            if index not in results:
                with graph.inserting_after(kept):
                    results[index] = graph.call_function(operator.getitem, (kept, index))
                results[index].meta = dict(user.meta)
            user.replace_all_uses_with(results[index])


def _mask_of(fx_node: Any, position: int) -> list[bool]:
    return list(fx_node.args[position] if position < len(fx_node.args) else fx_node.kwargs[aten.OUTPUT_MASK])


def _hashable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    return value


def _removable(fx_node: Any) -> bool:
    """Whether an FX node nothing reads can go: not a random draw (the draws stay fn's), not a check."""
    torch = require("torch", "torch")
    target = fx_node.target
    if not isinstance(target, torch._ops.OpOverload):
        return True  # getitem
    return bool(target._schema.returns) and not aten.is_random(target) and not target._schema.is_mutable


def _check(fn: Callable, deduplicated: Deduplicated, example_args: tuple) -> None:
    """``deduplicated`` against ``fn`` on copies of the example arguments, both under one seed."""
    torch = require("torch", "torch")
    pytree = require("torch.utils._pytree", "torch")

    def copies() -> tuple:
        return pytree.tree_map(lambda t: t.detach().clone().requires_grad_(t.requires_grad)
                               if isinstance(t, torch.Tensor) else t, example_args)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(CHECK_SEED)
        with untouched():  # fn may write to what it reads from elsewhere (a module's buffers): put back
            expected = pytree.tree_leaves(fn(*copies()))
        torch.manual_seed(CHECK_SEED)
        got = pytree.tree_leaves(deduplicated(*copies()))
    for k, (want, have) in enumerate(zip(expected, got)):
        if want is None or have is None:
            if want is not have:
                raise RuntimeError(f"deduplicate: result {k} of the merged graph is {have!r}, fn's is {want!r}; "
                                   "please report this with fn")
            continue
        try:
            torch.testing.assert_close(have, want.detach(), equal_nan=True)
        except AssertionError as error:
            first_line = str(error).strip().splitlines()[0]
            raise RuntimeError(f"deduplicate: result {k} of the merged graph differs from fn's ({first_line}); "
                               "please report this with fn") from None


def _written(fx_node: Any) -> list[Any]:
    """The FX nodes an aten call writes to (:func:`.aten.written_values`)."""
    torch = require("torch", "torch")
    if not isinstance(fx_node.target, torch._ops.OpOverload):
        return []
    return aten.written_values(fx_node.target, fx_node.args, fx_node.kwargs)


def _without_hidden_writes(graph: Any) -> None:
    """``native_batch_norm`` in training without its running statistics: the same results (training
    normalises by the batch's), and no write into the tensors the caller passed."""
    torch = require("torch", "torch")
    for fx_node in graph.nodes:
        if fx_node.target is torch.ops.aten.native_batch_norm.default and _written(fx_node):
            fx_node.args = (*fx_node.args[:3], None, None, *fx_node.args[5:])


def _warn_about_writes(traced: Any, placeholder_names: list[str]) -> None:
    """A warning naming what ``fn`` writes to (its arguments, tensors it reads from elsewhere): the merged
    graph does not write them."""
    placeholders = [n for n in traced.graph.nodes if n.op == "placeholder"]
    written = [value for n in traced.graph.nodes for value in _written(n)]
    names = sorted({placeholder_names[placeholders.index(value)] for value in written if value.op == "placeholder"})
    elsewhere = len({value.target for value in written if value.op == "get_attr"})
    if elsewhere:
        names.append(f"{elsewhere} tensor{'s' * (elsewhere > 1)} it reads from elsewhere (a module's buffers)")
    if names:
        warnings.warn(f"deduplicate: fn writes to {', '.join(names)}; the merged graph computes fn's results "
                      "without making those writes", stacklevel=3)


def _argument_names(fn: Callable, example_args: tuple) -> list[str]:
    """A name per leaf of ``example_args``: fn's parameter name and the path inside (``params['w1']``)."""
    pytree = require("torch.utils._pytree", "torch")
    try:
        arguments = [p.name for p in inspect.signature(fn).parameters.values()
                     if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        arguments = []
    arguments += [f"arg{i}" for i in range(len(arguments), len(example_args))]
    return [arguments[path[0].idx] + pytree.keystr(path[1:])
            for path, _ in pytree.tree_flatten_with_path(tuple(example_args))[0]]


def _signature(tensor: Any) -> tuple:
    return tuple(tensor.shape), tensor.dtype, tensor.device


def _describe(signature: tuple) -> str:
    shape, dtype, device = signature
    return f"{str(dtype).removeprefix('torch.')}{list(shape)} on {device}"


def _same_constant(given: Any, traced: Any) -> bool:
    try:
        return type(given) is type(traced) and bool(given == traced)
    except Exception:  # a value whose == is not a truth value: not the one traced
        return False
