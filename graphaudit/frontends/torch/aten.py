"""aten calls both ways: an FX call's arguments as a node's inputs and attrs, and a node run by torch.

An FX ``call_function`` node of target ``aten.<name>.<overload>`` becomes a graphaudit
node of op ``"aten.<name>"`` whose attrs are ``("overload", "<overload>")`` and every
non-tensor schema argument by name (defaults filled in, so that a call that spells out a
default merges with one that leaves it out), and whose inputs are its tensor arguments
in schema order; the attr ``"tensors"`` names the argument each input came from
(``"weight"``, or ``"tensors[2]"`` for an element of a ``Tensor[]``). A ``*_backward``
op's ``output_mask`` is dropped: each of its outputs is its own node, so separate calls
that asked for different outputs still merge.

:func:`run_aten` turns a node back into the call, on torch tensors made from the input
arrays, so that :func:`graphaudit.evaluate` runs imported graphs. An array has no strides
PyTorch would see, and almost no op's values depend on them; those that read memory by
strides (``as_strided``, ``as_strided_scatter``: a ``channels_last`` tensor read as one)
carry their tensor inputs' strides and storage offsets as the trace saw them (attr
``"layouts"``), and their inputs are rebuilt so laid out.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from graphaudit.frontends import require
from graphaudit.frontends.common import ATTR_OUTPUT, Opaque
from graphaudit.core.graph import Node

ATTR_OVERLOAD = "overload"
ATTR_TENSORS = "tensors"
ATTR_LAYOUTS = "layouts"  # ((strides, storage offset) of each tensor input), for the ops below only
READ_BY_STRIDES = frozenset({"aten.as_strided", "aten.as_strided_scatter"})  # values depend on inputs' layout
OUTPUT_MASK = "output_mask"  # which results a *_backward op computes; dropped, one node per result
LIST_ELEMENT = re.compile(r"^(\w+)\[(\d+)\]$")


def op_key(target: Any) -> tuple[str, str]:
    """``("aten.mm", "default")`` for the OpOverload ``aten.mm.default``."""
    return f"{target.namespace}.{target._schema.name.split('::', 1)[1]}", target._overloadname


def overload(node: Node) -> Any:
    """The OpOverload a node of op ``"aten.<name>"`` calls."""
    torch = require("torch", "torch")
    namespace, name = node.op.split(".", 1)
    return getattr(getattr(getattr(torch.ops, namespace), name), node.attr(ATTR_OVERLOAD))


def is_multi_output(target: Any) -> bool:
    """Whether a call's result is a tuple or list of tensors (FX reads it through ``getitem``)."""
    returns = target._schema.returns
    return len(returns) > 1 or (len(returns) == 1 and str(returns[0].type).startswith("List["))


def schema_values(target: Any, args: tuple, kwargs: dict) -> Iterator[tuple[str, Any]]:
    """Each schema argument's name and value, as the call gave it or as its default; not ``output_mask``."""
    arguments = target._schema.arguments
    if len(args) > len(arguments) or set(kwargs) - {a.name for a in arguments}:
        raise TypeError(f"{target}: arguments {args}, {kwargs} do not fit its schema {target._schema}")
    for position, argument in enumerate(arguments):
        if position < len(args):
            value = args[position]
        elif argument.name in kwargs:
            value = kwargs[argument.name]
        elif argument.has_default_value():
            value = argument.default_value
        else:
            raise TypeError(f"{target}: no value for argument {argument.name!r} of {target._schema}")
        if argument.name != OUTPUT_MASK:
            yield argument.name, value


def mutated_arguments(target: Any) -> list[str]:
    """The names of the arguments an in-place op writes to (``self`` for ``add_``)."""
    return [a.name for a in target._schema.arguments if a.alias_info is not None and a.alias_info.is_write]


def written_values(target: Any, args: tuple, kwargs: dict) -> list[Any]:
    """What a call writes to: its schema's ``Tensor(a!)`` arguments, and the running statistics of
    ``native_batch_norm`` in training, which it updates though its schema does not say so."""
    torch = require("torch", "torch")
    names = mutated_arguments(target)
    hidden = target is torch.ops.aten.native_batch_norm.default
    if not names and not hidden:
        return []
    values = dict(schema_values(target, args, kwargs))
    if hidden and values["training"]:
        names += ["running_mean", "running_var"]
    return [values[name] for name in names if values.get(name) is not None]


def is_random(target: Any) -> bool:
    """Whether the op draws random numbers (dropout, ``bernoulli_``): never merged."""
    torch = require("torch", "torch")
    return torch.Tag.nondeterministic_seeded in target.tags


def draws_nothing(node: Node) -> bool:
    """Whether a call of a random op is deterministic after all: a dropout probability of 0
    (attention's ``dropout_p``, ``native_dropout``'s or ``bernoulli``'s ``p``), or dropout
    outside training. PyTorch tags the op, not the call, as random."""
    return node.attr("train") is False or any(node.attr(name) == 0 for name in ("dropout_p", "p"))


# --- running a node --------------------------------------------------------------------------


@functools.cache
def numpy_dtype(torch_dtype: Any) -> np.dtype:
    """numpy's dtype for a torch dtype; one numpy lacks (bfloat16) as raw bytes of its size."""
    torch = require("torch", "torch")
    try:
        return torch.empty(0, dtype=torch_dtype).numpy().dtype
    except TypeError:
        return np.dtype(f"V{torch_dtype.itemsize}")


def call_arguments(node: Node, tensors: list[Any]) -> tuple[list, dict]:
    """The positional and keyword arguments that rebuild ``node``'s call from its attrs and ``tensors``."""
    target = overload(node)
    given: dict[str, Any] = {}
    for label, tensor in zip(node.attr(ATTR_TENSORS), tensors):
        element = LIST_ELEMENT.match(label)
        if element is None:
            given[label] = tensor
        else:  # an element of a Tensor[] or Tensor?[]: the positions not given are None
            items = given.setdefault(element[1], [])
            index = int(element[2])
            items.extend([None] * (index + 1 - len(items)))
            items[index] = tensor
    args, kwargs = [], {}
    for argument in target._schema.arguments:
        if argument.name in given:
            value = given[argument.name]
        elif argument.name == OUTPUT_MASK:  # ask for the one result this node is
            value = [i == node.attr(ATTR_OUTPUT) for i in range(len(target._schema.returns))]
        else:
            value = node.attr(argument.name)
            value = value.value if isinstance(value, Opaque) else value
        if argument.kwarg_only:
            kwargs[argument.name] = value
        else:
            args.append(value)
    return args, kwargs


def layout(val: Any) -> tuple[tuple[int, ...], int]:
    """The strides and storage offset of a traced tensor value (a fake tensor)."""
    return tuple(int(s) for s in val.stride()), int(val.storage_offset())


def _laid_out(tensor: Any, strides: tuple[int, ...], offset: int) -> Any:
    """``tensor``'s values at ``strides`` and ``offset`` in a storage of their own; storage they do not cover
    holds NaN (0 for other dtypes), so that a read outside them shows."""
    torch = require("torch", "torch")
    extent = 1 + sum((n - 1) * s for n, s in zip(tensor.shape, strides)) if tensor.numel() else 0
    fill = float("nan") if tensor.is_floating_point() else 0
    laid_out = torch.full((offset + extent,), fill, dtype=tensor.dtype).as_strided(tensor.shape, strides, offset)
    return laid_out.copy_(tensor)


def run_aten(node: Node, *arrays: np.ndarray) -> np.ndarray:
    """Compute ``node`` with torch: its call rebuilt on copies of ``arrays``, its result as numpy."""
    torch = require("torch", "torch")
    tensors = [torch.tensor(np.asarray(array)) for array in arrays]
    layouts = node.attr(ATTR_LAYOUTS)
    if layouts is not None:
        tensors = [_laid_out(tensor, strides, offset) for tensor, (strides, offset) in zip(tensors, layouts)]
    args, kwargs = call_arguments(node, tensors)
    with torch.no_grad():
        result = overload(node)(*args, **kwargs)
    if node.attr(ATTR_OUTPUT) is not None:
        result = result[node.attr(ATTR_OUTPUT)]
    return np.array(result.detach().numpy(), copy=True)
