"""PyTensor's indexing ops in one form, whichever PyTensor line built them.

``x[1:k, i]`` is a ``Subtensor`` (or ``AdvancedSubtensor``, or an ``*IncSubtensor``
writing into it) whose *index list* says how its index inputs make the index. The two
PyTensor lines that users have say it differently:

- PyTensor 3.x: ``op.idx_list`` holds integer positions into the index inputs
  (``(slice(0, 1, None), 2)``), for the advanced ops too.
- PyTensor 2.x (what PyMC pins): ``Subtensor.idx_list`` holds *types*, one per index
  input, consumed in order (``(slice(ScalarType(int64), None, None),)``); the advanced ops
  have no ``idx_list`` at all: each index input is one entry, a slice built by a
  ``MakeSlice`` node, a ``None`` constant (a new axis), or an index array.

The importer gives every such node the 3.x form as its ``idx_list`` attr, with new axes
as ``"newaxis"``, and the MakeSlice's bounds as the node's own inputs. So the nodes of
``x[1:k]`` are equal under both lines, and the shape rule and numpy code read one form.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SLICE = "slice"
NEWAXIS = "newaxis"

# op class name -> how many inputs come before the index inputs (the array, and the value written)
INDEXING_OPS = {"Subtensor": 1, "AdvancedSubtensor": 1, "AdvancedSubtensor1": 1,
                "IncSubtensor": 2, "AdvancedIncSubtensor": 2, "AdvancedIncSubtensor1": 2}


def first_index(op) -> int | None:
    """How many inputs come before ``op``'s index inputs; None when ``op`` does not index."""
    return INDEXING_OPS.get(type(op).__name__)


def index_form(apply) -> tuple[list, tuple]:
    """The inputs a node of ``apply`` reads, and its index list in PyTensor 3.x's form.

    The inputs are ``apply.inputs``, except that a PyTensor 2.x advanced op's slice inputs
    are replaced by their bounds and its ``None`` inputs dropped. Index list entries are a
    position ``p`` (index input ``p``), ``("slice", start, stop, step)`` with positions or
    None, or ``"newaxis"``.
    """
    skip = first_index(apply.op)
    idx_list = getattr(apply.op, "idx_list", None)
    if idx_list is None:  # AdvancedSubtensor1 (both lines), or an advanced op of PyTensor 2.x
        return _advanced_form(apply, skip)
    inputs = list(apply.inputs)
    if all(_is_position(p) for p in _flat(idx_list)):  # 3.x: already positions
        return inputs, tuple(_entry(e) for e in idx_list)
    positions = iter(range(len(inputs) - skip))  # 2.x: one type per index input, in order

    def take(p):
        return None if p is None else next(positions)

    entries = tuple((SLICE, take(e.start), take(e.stop), take(e.step)) if isinstance(e, slice) else take(e)
                    for e in idx_list)
    return inputs, entries


def _advanced_form(apply, skip: int) -> tuple[list, tuple]:
    inputs, entries = list(apply.inputs[:skip]), []
    for variable in apply.inputs[skip:]:
        kind = type(variable.type).__name__
        if kind == "NoneTypeT":
            entries.append(NEWAXIS)
        elif kind == "SliceType":
            bounds = _slice_bounds(variable)
            entry = [SLICE]
            for bound in bounds:
                if bound is None:
                    entry.append(None)
                else:
                    entry.append(len(inputs) - skip)
                    inputs.append(bound)
            entries.append(tuple(entry))
        else:
            entries.append(len(inputs) - skip)
            inputs.append(variable)
    return inputs, tuple(entries)


def _slice_bounds(variable) -> list:
    """The start, stop and step variables (None where absent) of a slice input of PyTensor 2.x."""
    from pytensor.tensor import as_tensor_variable

    if variable.owner is not None and type(variable.owner.op).__name__ == "MakeSlice":
        return [None if type(b.type).__name__ == "NoneTypeT" else b for b in variable.owner.inputs]
    if hasattr(variable, "data") and isinstance(variable.data, slice):  # a constant slice
        value = variable.data
        return [None if b is None else as_tensor_variable(int(b)) for b in (value.start, value.stop, value.step)]
    raise TypeError(f"indexing with a slice computed by {variable.owner.op if variable.owner else variable} "
                    "is not supported")


def _flat(idx_list) -> list:
    out = []
    for e in idx_list:
        out += [e.start, e.stop, e.step] if isinstance(e, slice) else [e]
    return [e for e in out if e is not None]


def _is_position(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _entry(e):
    return (SLICE, e.start, e.stop, e.step) if isinstance(e, slice) else e


def python_index(idx_list: tuple, arrays) -> tuple:
    """The index tuple that ``idx_list`` makes of the index inputs' values ``arrays``."""
    index = []
    for entry in idx_list:
        if entry == NEWAXIS:
            index.append(None)
        elif isinstance(entry, tuple):
            index.append(slice(*(None if p is None else int(arrays[p]) for p in entry[1:])))
        else:
            value = arrays[entry]
            index.append(int(value) if np.ndim(value) == 0 and np.asarray(value).dtype.kind in "iu" else value)
    return tuple(index)
