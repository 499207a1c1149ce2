"""A framework op's parameters as hashable attrs, and the imported nodes that carry them.

:func:`hashable_param` makes a parameter an attr that hashes, compares by value and looks
the same in every process; what is not a plain value becomes an :class:`Opaque`, compared by
a digest of :func:`canonical_text`. :func:`imported_node` makes one node per output of a
framework op, with its provenance passed explicitly.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import re
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from graphaudit.core.attrs import canonical_attrs
from graphaudit.core.graph import GradCall, Node, new_node

ATTR_OUTPUT = "output"  # which result of a multi-result op a node is



class Opaque:
    """A param that is not a plain value (a sub-graph, an array, a callable): equal when digests are.

    ``value`` is the original object (given back to the framework when evaluating);
    ``digest`` a blake2b of its canonical text, the same in every process.
    """

    __slots__ = ("value", "digest")

    def __init__(self, value: Any):
        self.value = value
        self.digest = hashlib.blake2b(canonical_text(value).encode(), digest_size=16).hexdigest()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    def __repr__(self) -> str:
        return f"<{type(self.value).__name__} {self.digest}>"


ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")

# Front-ends add the texts of their own objects here (a jaxpr, say): each rule returns a
# canonical text for the values it knows, None for the others.
TEXT_RULES: list[Callable[[Any, int], str | None]] = []


def canonical_text(value: Any, depth: int = 4) -> str:
    """A text that is equal for equal values and stable across processes (no addresses, no hash order)."""
    for rule in TEXT_RULES:
        text = rule(value, depth)
        if text is not None:
            return text
    if hasattr(value, "__array__") and hasattr(value, "shape") and hasattr(value, "dtype"):
        try:
            array = np.asarray(value)
        except TypeError:  # arrays numpy cannot hold (PRNG keys): their repr shows their data
            return f"{type(value).__qualname__}:{value!r}"
        digest = hashlib.blake2b(array.tobytes(), digest_size=16).hexdigest()
        return f"array({array.dtype.str}, {array.shape}, {digest})"
    if depth <= 0:
        return type(value).__qualname__
    inner = functools.partial(canonical_text, depth=depth - 1)
    if isinstance(value, Mapping):
        return "{" + ", ".join(sorted(f"{inner(k)}: {inner(v)}" for k, v in value.items())) + "}"
    if isinstance(value, (set, frozenset)):
        return "set(" + ", ".join(sorted(map(inner, value))) + ")"
    if isinstance(value, (list, tuple)):
        return f"{type(value).__qualname__}(" + ", ".join(map(inner, value)) + ")"
    if isinstance(value, functools.partial):
        return f"partial({inner(value.func)}, {inner(value.args)}, {inner(value.keywords)})"
    if isinstance(value, types.FunctionType):
        cells = [c.cell_contents for c in value.__closure__ or ()]
        code = value.__code__
        return (f"function({value.__module__}.{value.__qualname__}, {code.co_code.hex()}, "
                f"{inner(code.co_consts)}, {inner(cells)})")
    text = repr(value)
    if not ADDRESS.search(text):
        return f"{type(value).__qualname__}:{text}"
    state = getattr(value, "__dict__", None)
    return f"{type(value).__qualname__}({inner(state) if state is not None else ''})"


def hashable_param(value: Any) -> Any:
    """``value`` as a hashable attr that the framework still accepts back.

    Numbers, strings, dtypes and enums as they are (numpy scalars as Python ones), lists
    and tuples as tuples (named tuples keep their type), anything else with a value hash
    and an address-free repr as it is; the rest as an :class:`Opaque`, never by ``id()``.
    """
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, np.dtype, enum.Enum)):
        return value
    if isinstance(value, np.generic) and value.shape == ():
        return value.item()
    if isinstance(value, (list, tuple)):
        items = [hashable_param(v) for v in value]
        if any(isinstance(item, Opaque) for item in items):  # the framework must get the original back, whole
            return Opaque(value)
        return type(value)._make(items) if hasattr(type(value), "_fields") else tuple(items)
    value_hash = type(value).__hash__ not in (None, object.__hash__)
    if value_hash and not isinstance(value, (Mapping, set, frozenset)) and not ADDRESS.search(repr(value)):
        try:
            hash(value)
            return value
        except TypeError:
            pass
    return Opaque(value)



def imported_node(
    op: str,
    inputs: Sequence[Node],
    attrs: Sequence[tuple[str, Any]],
    shape: tuple[int, ...],
    dtype: np.dtype,
    *,
    call: GradCall | None,
    output: int | None = None,
    origin: Node | None = None,
) -> Node:
    """One node of an imported op: attrs in canonical form (:mod:`graphaudit.core.attrs`), ``output=i``
    for result ``i`` of a multi-result op, and provenance given here: ``call``, and ``origin`` when
    the framework says which forward op a backward node belongs to (PyTorch's ``seq_nr``)."""
    if output is not None:
        attrs = [*attrs, (ATTR_OUTPUT, output)]
    return new_node(op, tuple(inputs), canonical_attrs(attrs), shape, dtype, None, None, (call, origin))
