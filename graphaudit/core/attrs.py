"""A node's attrs in canonical form: sorted by key, and equal only when equal in value *and* type.

Python's ``==`` says ``1 == 1.0 == True`` and ``0.0 == -0.0``; a merge key compared that
way would merge a node whose attr is ``1.0`` with one whose attr is ``1``, while the two
ops may compute different things (an imported framework's params, aten arguments and
PyTensor props are floats and bools as often as ints). So when a node is made, its attrs
become a tuple of ``(key, value)`` pairs, values as given, whose ``==`` is type-strict:

- attrs whose values are ``int``, ``str``, ``None`` or tuples of them (nested) stay a plain
  tuple: among these types ``==`` already tells types apart, and they are most attrs;
- any other attrs (a ``bool``, a ``float``, a numpy scalar or dtype, an enum, a framework
  object) become a :class:`StrictAttrs`: still a tuple of the same pairs (``dict(node.attrs)``
  and :meth:`graphaudit.Node.attr` read the values as given), but equal only to a
  ``StrictAttrs`` with the same :func:`typed_text`: each value's type's full name and repr,
  so ``True``, ``1.0``, ``np.float32(1.0)`` and ``-0.0`` each stand alone.

:func:`attrs_text` is what :func:`graphaudit.digests` hashes, so merge and digests agree by
construction: two canonical attrs are ``==`` exactly when their texts are equal.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Attrs = tuple[tuple[str, Any], ...]


class StrictAttrs(tuple):
    """Attrs holding a value whose ``==`` is not type-strict: compared by their :func:`typed_text`."""

    def __eq__(self, other: object) -> bool:
        return self is other or (type(other) is StrictAttrs and other.text == self.text)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(self.text)


def typed_text(value: Any) -> str:
    """``value``'s repr with every value's type: ``builtins.bool:True``, ``numpy.float32:np.float32(1.0)``."""
    kind = type(value)
    if kind is tuple:
        return "(" + "".join(typed_text(item) + ", " for item in value) + ")"
    if kind is int or kind is str or value is None:
        return repr(value)
    return f"{kind.__module__}.{kind.__qualname__}:{value!r}"


def _is_plain(value: Any) -> bool:
    kind = type(value)
    if kind is int or kind is str or value is None:
        return True
    return kind is tuple and all(_is_plain(item) for item in value)


# One StrictAttrs per text: equal attrs are one object, and merge keys compare them by
# identity, which is fast. A table of symbols: it holds each distinct attrs once (a tuple
# subclass cannot be weakly referenced), as many as a process's graphs have distinct attrs.
_INTERNED: dict[str, StrictAttrs] = {}


def canonical_attrs(items: Iterable[tuple[str, Any]]) -> Attrs:
    """``(key, value)`` pairs sorted by key: a plain tuple, or a :class:`StrictAttrs` (module docstring)."""
    if type(items) is StrictAttrs:
        return items
    pairs = tuple(sorted(items))  # keys are unique: values are never compared
    if all(_is_plain(value) for _, value in pairs):
        return pairs
    text = "strict" + typed_text(pairs)
    interned = _INTERNED.get(text)
    if interned is None:
        interned = StrictAttrs(pairs)
        interned.text = text
        _INTERNED[text] = interned
    return interned


def attrs_text(attrs: Attrs) -> str:
    """A text of canonical attrs that is equal exactly when the attrs are ``==``."""
    return attrs.text if type(attrs) is StrictAttrs else repr(attrs)
