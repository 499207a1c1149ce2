"""The user's PyTorch program, traced twice on fake tensors: as PyTorch runs it, then without writes.

The first trace, :func:`capture`, runs ``loss_fn(model, *inputs)`` once, then one
``torch.autograd.grad`` per parameter (``retain_graph=True``), each inside
``torch.fx.traceback.annotate({"grad_call": i})``, then one joint call over all the parameters,
and traces it all with ``make_fx`` on fake tensors (a ``FakeTensorMode`` on the CPU; never
``meta``, which would switch attention to another kernel): nothing is allocated or computed,
whatever the model's size. One trace holds both forms, so both read the very same forward
nodes. Its aten ops are exactly eager PyTorch's, writes included: ``relu_``, a BatchNorm's
``add_`` to ``num_batches_tracked``, and autograd's own ``copy_`` into a view of a fresh
gradient (``adaptive_avg_pool2d(h, 1)`` on a ``channels_last`` input restrides its result with
``as_strided_``; its backward writes the gradient through one ``as_strided`` view of a zero
buffer and reads it back through another).

What its meta says (``preserve_node_meta``):

- ``custom["grad_call"]``: which call built a backward node (absent on forward nodes);
- ``seq_nr``: the autograd sequence number of the forward op a backward node differentiates,
  set by the hooks AOTAutograd uses (``setup_stacktrace_preservation_hooks``);
- ``custom["module"]``: the ``nn.Module`` path of a forward node, set by global module
  hooks (the user's model gets none of its own).

A graph of values cannot say "this write changes what that view reads", so the second trace,
:func:`functional`, asks PyTorch to say it in values: ``make_fx`` again, of
``torch.func.functionalize`` of the first graph run node by node (an ``fx.Interpreter``), on
the first trace's fake placeholders. Every write becomes its out-of-place op (``relu`` for
``relu_``; ``copy`` then ``as_strided_scatter`` into the base for a ``copy_`` through a
view), and a view read after a write to its base is made again from the new base. Views stay
views (``remove="mutations"``), so every op keeps its name, cost row and layout (removing views
too would make each a ``*_copy`` that writes its bytes). The user's program itself cannot be
functionalized (its ``autograd.grad`` finds no ``grad_fn`` on functorch's wrapped tensors);
its aten graph can. The Interpreter makes each node's meta the current one, and the tracer
copies ``custom`` and ``stack_trace`` (``preserve_node_meta``) and ``seq_nr``
(``_preserve_node_seq_nr``) to the nodes made from it, so provenance survives. A program
that writes nothing (no in-place op, no BatchNorm, no dropout) is traced once: its first
graph is already functional. The importer reads the second graph; the report's count of
aten calls is the first's, what PyTorch runs.

Parameters are an ``nn.Module``'s (swapped for fakes through ``torch.func.functional_call``,
buffers too, so a BatchNorm writes to fakes) or a dict of named tensors. Nothing the user
passed is changed. :func:`named_leaves` gives the user's tensors by the names the imported
graphs' leaves carry, to evaluate them.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from graphaudit import progress
from graphaudit.core.graph import parameter, placeholder
from graphaudit.core.source import is_library_file
from graphaudit.frontends import require
from graphaudit.frontends.torch.aten import numpy_dtype
from graphaudit.frontends.torch.untouched import untouched

GRAD_CALL = "grad_call"  # the custom meta key naming the grad call that built a node
MODULE = "module"  # the custom meta key holding a forward node's nn.Module path


class Named(NamedTuple):
    """The tensors of the user's program, by name, split by what the audit does with them."""

    params: dict[str, Any]  # differentiated: parameters that require grad
    fixed: dict[str, Any]  # read, not differentiated: buffers and frozen parameters
    inputs: dict[str, Any]  # the tensors among the inputs, named by argument and position
    is_module: bool
    no_gradient: tuple[str, ...] = ()  # parameters the loss does not reach: read as fixed, listed in the report


class Capture(NamedTuple):
    """The traced program: its FX graphs, whose placeholders are ``named``'s tensors in order."""

    graph: Any  # torch.fx.GraphModule without writes (the second trace): what the importer reads
    named: Named
    traced: Any  # torch.fx.GraphModule of the aten ops eager PyTorch runs (the first trace)


def named_tensors(loss_fn: Callable, params: Any, inputs: tuple) -> Named:
    """The parameters, fixed tensors and tensor inputs of an audit, named; a ValueError for none to differentiate."""
    torch = require("torch", "torch")
    if isinstance(params, torch.nn.Module):
        state = dict(params.named_parameters())
        differentiated = {name: p for name, p in state.items() if p.requires_grad}
        fixed = {name: p for name, p in state.items() if not p.requires_grad}
        fixed.update(params.named_buffers())
        is_module = True
    elif isinstance(params, Mapping):
        bad = [name for name, value in params.items() if not isinstance(value, torch.Tensor)]
        if bad:
            raise TypeError(f"audit: params[{bad[0]!r}] is a {type(params[bad[0]]).__name__}, not a torch tensor")
        differentiated, fixed, is_module = {str(name): p for name, p in params.items()}, {}, False
    else:
        raise TypeError(f"audit: params must be an nn.Module or a dict of named tensors, got {type(params).__name__}")
    if not differentiated:
        raise ValueError(f"audit: {type(params).__name__} has no parameters that require grad: nothing to audit")
    for name, p in differentiated.items():
        if not p.is_floating_point():
            raise TypeError(f"audit: cannot differentiate {name}: its dtype is {p.dtype}, not floating point")
    return Named(differentiated, fixed, _input_tensors(loss_fn, inputs), is_module)


def _input_tensors(loss_fn: Callable, inputs: tuple) -> dict[str, Any]:
    """The tensors among ``inputs``, named by ``loss_fn``'s argument names and their path inside."""
    torch = require("torch", "torch")
    pytree = require("torch.utils._pytree", "torch")
    try:
        arguments = [p.name for p in inspect.signature(loss_fn).parameters.values()][1:]
    except (TypeError, ValueError):
        arguments = []
    arguments += [f"input{i}" for i in range(len(arguments), len(inputs))]
    named = {}
    for (path, leaf) in pytree.tree_flatten_with_path(tuple(inputs))[0]:
        if isinstance(leaf, torch.Tensor):
            named[arguments[path[0].idx] + pytree.keystr(path[1:])] = leaf
    return named


def named_leaves(loss_fn: Callable, *example_inputs: Any, params: Any) -> dict[str, Any]:
    """``{name: numpy array}`` of the parameters, fixed tensors (buffers, frozen parameters) and tensor
    inputs, named as :func:`~.audit.audit` names its graphs' leaves (``0.weight``, ``1.running_mean``,
    ``x``, ``batch['x']``): the feed for :func:`graphaudit.evaluate` of a report's forms. The arrays
    are copies; the tensors must hold values (not meta, not fake)."""
    fake_tensor = require("torch._subclasses.fake_tensor", "torch")
    named = named_tensors(loss_fn, params, example_inputs)
    leaves = {}
    for name, tensor in [*named.params.items(), *named.fixed.items(), *named.inputs.items()]:
        if tensor.is_meta or isinstance(tensor, fake_tensor.FakeTensor):
            where = "meta" if tensor.is_meta else "fake"
            raise ValueError(f"named_leaves: {name} is a {where} tensor: it holds no values to evaluate with")
        try:
            leaves[name] = tensor.detach().cpu().numpy().copy()
        except TypeError:
            raise TypeError(f"named_leaves: {name} is {tensor.dtype}, which numpy has no type for") from None
    return leaves


def graph_leaves(named: Named) -> list:
    """One leaf per placeholder of a traced program: parameters for the differentiated tensors,
    placeholders for the rest."""
    leaves = [parameter(name, tuple(p.shape), numpy_dtype(p.dtype)) for name, p in named.params.items()]
    return leaves + [placeholder(name, tuple(t.shape), numpy_dtype(t.dtype))
                     for name, t in [*named.fixed.items(), *named.inputs.items()]]


def fake_like(tensor: Any) -> Any:
    """An empty tensor of ``tensor``'s shape, strides and dtype on the CPU (made inside a fake mode)."""
    torch = require("torch", "torch")
    fake = torch.empty_strided(tuple(tensor.shape), tuple(tensor.stride()), dtype=tensor.dtype, device="cpu")
    return fake.requires_grad_(tensor.requires_grad and tensor.is_floating_point())


@contextlib.contextmanager
def module_paths(model: Any):
    """Annotate every op that ``model``'s submodules run with their path (``layers.1.linear1``)."""
    torch = require("torch", "torch")
    traceback = require("torch.fx.traceback", "torch")
    paths = {id(module): path for path, module in model.named_modules() if path}
    stack: list = []

    def enter(module, args):
        if id(module) in paths:
            stack.append(traceback.annotate({MODULE: paths[id(module)]}))
            stack[-1].__enter__()

    def leave(module, args, output):
        if id(module) in paths:
            stack.pop().__exit__(None, None, None)

    hooks = [torch.nn.modules.module.register_module_forward_pre_hook(enter),
             torch.nn.modules.module.register_module_forward_hook(leave, always_call=True)]
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


def run_loss(loss_fn: Callable, params: Any, named: Named, values: Sequence[list], inputs: tuple) -> Any:
    """``loss_fn`` (or any function of the same arguments) on other tensors: ``values`` holds the
    parameters', the fixed tensors' and the tensor inputs' (in :class:`Named`'s order); the
    non-tensor inputs are the user's."""
    torch = require("torch", "torch")
    pytree = require("torch.utils._pytree", "torch")
    param_values, fixed_values, input_values = values
    flat, spec = pytree.tree_flatten(tuple(inputs))
    replaced = iter(input_values)
    args = pytree.tree_unflatten([next(replaced) if isinstance(x, torch.Tensor) else x for x in flat], spec)
    if not named.is_module:  # the user's dict, in its order, parameters with no gradient included
        given = {**dict(zip(named.params, param_values)), **dict(zip(named.fixed, fixed_values))}
        return loss_fn({name: given[name] for name in [*named.params, *named.fixed] if name in given}, *args)

    class Loss(torch.nn.Module):  # the model as a submodule, so that functional_call swaps its tensors
        def __init__(self):
            super().__init__()
            self.model = params

        def forward(self, *args):
            return loss_fn(self.model, *args)

    state = {f"model.{name}": value for name, value in
             [*zip(named.params, param_values), *zip(named.fixed, fixed_values)]}
    return torch.func.functional_call(Loss(), state, args)


def _program(loss_fn: Callable, params: Any, named: Named, inputs: tuple, separate_calls: bool) -> Callable:
    """``program(params, fixed, inputs)``: the user's forward once, the separate calls (unless not
    ``separate_calls``: the joint call's trace is enough to count them), the joint call."""
    traceback = require("torch.fx.traceback", "torch")
    hooks = require("torch._functorch._aot_autograd.logging_utils", "torch")
    names = list(named.params)

    def program(param_values: list, fixed_values: list, input_values: list):
        with module_paths(params) if named.is_module else contextlib.nullcontext():
            loss = run_loss(loss_fn, params, named, (param_values, fixed_values, input_values), inputs)
        check_loss(loss)
        hooks.setup_stacktrace_preservation_hooks([loss.grad_fn])
        separate = []
        for i, (name, p) in enumerate(zip(names, param_values) if separate_calls else ()):
            with traceback.annotate({GRAD_CALL: i}):
                separate += grad(loss, [p], [name], retain_graph=True)
            progress.step("torch.autograd.grad calls traced", i + 1, len(names), name)
        with traceback.annotate({GRAD_CALL: len(names)}):
            joint = grad(loss, param_values, names, retain_graph=False)
        return [*separate, *joint]

    return program


def check_loss(loss: Any) -> None:
    """A scalar tensor that depends on the parameters, or an error saying what the loss is instead."""
    torch = require("torch", "torch")
    if not isinstance(loss, torch.Tensor):
        raise TypeError(f"audit: loss_fn must return a scalar tensor, got {type(loss).__name__}")
    if loss.dim() != 0:
        raise ValueError(f"audit: loss_fn must return a scalar, got a tensor of shape {tuple(loss.shape)}")
    if loss.grad_fn is None:
        raise ValueError("audit: the loss does not depend on any parameter (it has no grad_fn)")


def grad(loss: Any, wrt: list, names: list[str], retain_graph: bool) -> list:
    """``torch.autograd.grad``; a parameter the loss does not use is named in the error."""
    torch = require("torch", "torch")
    grads = torch.autograd.grad(loss, wrt, retain_graph=retain_graph, allow_unused=True)
    unused = [name for name, g in zip(names, grads) if g is None]
    if unused:
        raise ValueError(f"audit: the loss does not use parameter {unused[0]}: it has no gradient to audit")
    return list(grads)


def capture(loss_fn: Callable, params: Any, inputs: tuple, separate_calls: bool = True) -> Capture:
    """Trace ``loss_fn(params, *inputs)`` and both forms of its gradients on fake tensors (the joint
    form only, without ``separate_calls``)."""
    named = without_gradient(loss_fn, params, named_tensors(loss_fn, params, inputs), inputs)
    return trace_program(_program(loss_fn, params, named, inputs, separate_calls), named)


def without_gradient(loss_fn: Callable, params: Any, named: Named, inputs: tuple) -> Named:
    """``named`` with the parameters the loss does not reach (a PINN residual's last bias) moved to the
    fixed tensors and listed in ``no_gradient``: found by one forward and joint grad on fake tensors."""
    torch = require("torch", "torch")
    fake_mode = require("torch._subclasses.fake_tensor", "torch").FakeTensorMode(allow_non_fake_inputs=True)
    with fake_mode, untouched():
        values = [[fake_like(t) for t in group.values()] for group in (named.params, named.fixed, named.inputs)]
        for p in values[0]:
            p.requires_grad_(True)
        loss = run_loss(loss_fn, params, named, values, inputs)
        check_loss(loss)
        grads = torch.autograd.grad(loss, values[0], allow_unused=True)
    unused = [name for name, g in zip(named.params, grads) if g is None]
    if not unused:
        return named
    if len(unused) == len(named.params):
        raise ValueError("audit: the loss does not depend on any parameter")
    params_left = {name: p for name, p in named.params.items() if name not in unused}
    fixed = {**named.fixed, **{name: named.params[name] for name in unused}}
    return named._replace(params=params_left, fixed=fixed, no_gradient=tuple(unused))


def trace_program(program: Callable, named: Named) -> Capture:
    """``make_fx`` of ``program(params, fixed, inputs)`` on fakes of ``named``'s tensors, node meta kept;
    then the same without writes."""
    # A tensor the program reads from elsewhere (the rest of a module, when params names some of its
    # tensors) is a constant of the trace: the fake mode takes it as it is.
    fake_mode = require("torch._subclasses.fake_tensor", "torch").FakeTensorMode(allow_non_fake_inputs=True)
    proxy_tensor = require("torch.fx.experimental.proxy_tensor", "torch")
    traceback = require("torch.fx.traceback", "torch")
    with fake_mode:
        fakes = [[fake_like(t) for t in group.values()] for group in (named.params, named.fixed, named.inputs)]
    for p in fakes[0]:
        p.requires_grad_(True)

    @functools.wraps(program)  # make_fx names the placeholders after program's arguments
    def program_untouched(*values):
        with untouched():
            return program(*values)

    with traceback.preserve_node_meta(), users_frames_kept():
        traced = proxy_tensor.make_fx(program_untouched, tracing_mode="fake", record_stack_traces=True)(*fakes)
    return Capture(functional(traced), named, traced)


@contextlib.contextmanager
def users_frames_kept():
    """``make_fx``'s stack traces with the user's frames: it keeps only frames named ``forward``, so
    the ops a ``loss_fn`` (or any function outside a module's forward) runs had no line of the
    user's. Within, a node's ``stack_trace`` holds every frame outside the libraries."""
    tracer = require("torch.fx.experimental.proxy_tensor", "torch").PythonKeyTracer
    own = tracer.__dict__.get("_filter_traceback_frames")

    def users_frames(self, summary):
        return type(summary).from_list([frame for frame in summary if not is_library_file(frame.filename)])

    tracer._filter_traceback_frames = users_frames
    try:
        yield
    finally:
        if own is None:
            del tracer._filter_traceback_frames
        else:
            tracer._filter_traceback_frames = own


def functional(traced: Any) -> Any:
    """``traced`` (a ``make_fx`` graph on fake tensors) traced again through ``torch.func.functionalize``:
    the same values, no op that writes, and each node's meta that of the node it was made from; on the
    first trace's fake tensors (its FakeTensorMode: nothing is allocated).

    A graph in which no op writes is its own functional form, and is returned as it is (no
    second trace to pay for). A write-back into one of the program's inputs (BatchNorm's
    ``num_batches_tracked``) ends the functionalized program as a ``copy_`` that nothing reads;
    it is dropped. The tensors the program reads from elsewhere (``get_attr`` constants: a
    BatchNorm's buffers when the params dict names only parameters) are lifted to inputs for
    the second trace, so that writes to them go the same way, and are constants again after.
    """
    torch = require("torch", "torch")
    proxy_tensor = require("torch.fx.experimental.proxy_tensor", "torch")
    traceback = require("torch.fx.traceback", "torch")
    if not any(isinstance(node.target, torch._ops.OpOverload) and node.target._schema.is_mutable
               for node in traced.graph.nodes):
        return traced
    fakes = [node.meta["val"] for node in traced.graph.nodes if node.op == "placeholder"]
    constants = {node.target: getattr(traced, node.target) for node in traced.graph.nodes if node.op == "get_attr"}
    fake_mode = require("torch._guards", "torch").detect_fake_mode(fakes) or \
        require("torch._subclasses.fake_tensor", "torch").FakeTensorMode()
    lifted = [fake_mode.from_tensor(value) for value in constants.values()]

    class ConstantsAsInputs(torch.fx.Interpreter):
        def get_attr(self, target, args, kwargs):
            return self.constants[target]

    def program(*values):
        interpreter = ConstantsAsInputs(traced)
        interpreter.constants = dict(zip(constants, values[len(fakes):]))
        return interpreter.run(*values[:len(fakes)])

    with traceback.preserve_node_meta(), traceback._preserve_node_seq_nr():
        graph_module = proxy_tensor.make_fx(torch.func.functionalize(program, remove="mutations"),
                                            tracing_mode="fake")(*fakes, *lifted)
    graph = graph_module.graph
    for node in list(graph.nodes):
        if node.target is torch.ops.aten.copy_.default and node.args[0].op == "placeholder":
            graph.erase_node(node)
    placeholders = [node for node in graph.nodes if node.op == "placeholder"]
    for node, (name, value) in zip(placeholders[len(fakes):], constants.items()):
        graph_module.register_buffer(f"lifted{name}", value, persistent=False)  # apart from the trace's own
        with graph.inserting_after(placeholders[-1]):
            constant = graph.get_attr(f"lifted{name}")
        constant.meta = dict(node.meta)
        node.replace_all_uses_with(constant)
        graph.erase_node(node)
    graph_module.recompile()
    return graph_module
