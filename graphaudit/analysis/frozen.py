"""Read-only dicts and lists: what a Report holds, so that it never changes after it is made.

They subclass ``dict`` and ``list``, so ``json.dumps``, ``==`` and ``isinstance`` see plain
data; only the methods that would change them raise. :func:`frozen` makes a read-only
deep copy, :func:`thawed` a plain deep copy (what ``Report.to_dict`` hands out: yours to
change). A :class:`FreezableDict` is writable until frozen: a front-end fills its section,
and attaching it to a report freezes a copy.
"""

from __future__ import annotations

from typing import Any


def _refuse(self: Any, *args: Any, **kwargs: Any) -> Any:
    raise TypeError(f"this {type(self).__name__} is read-only: a Report never changes after it is made "
                    "(dataclasses.replace(report, ...) makes a changed copy)")


def _unless_frozen(change):
    """``change`` (a dict method that changes the dict), refused once the dict is frozen."""

    def guarded(self, *args, **kwargs):
        if self._frozen:
            _refuse(self)
        return change(self, *args, **kwargs)

    guarded.__name__ = change.__name__
    return guarded


class FreezableDict(dict):
    """A dict that refuses every change once frozen (see :func:`frozen`)."""

    _frozen = False

    __setitem__ = _unless_frozen(dict.__setitem__)
    __delitem__ = _unless_frozen(dict.__delitem__)
    __ior__ = _unless_frozen(dict.__ior__)
    clear = _unless_frozen(dict.clear)
    pop = _unless_frozen(dict.pop)
    popitem = _unless_frozen(dict.popitem)
    setdefault = _unless_frozen(dict.setdefault)
    update = _unless_frozen(dict.update)


class FrozenList(list):
    """A list that refuses every change."""

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse


def frozen(value: Any) -> Any:
    """A read-only deep copy of ``value``'s dicts and lists (a FreezableDict keeps its class,
    other dicts become FreezableDicts); tuples are walked, other values kept as they are.
    What is frozen already is returned as it is."""
    if isinstance(value, dict):
        if isinstance(value, FreezableDict) and value._frozen:
            return value
        kind = type(value) if isinstance(value, FreezableDict) else FreezableDict
        copy = kind.__new__(kind)
        dict.update(copy, ((key, frozen(item)) for key, item in value.items()))
        copy._frozen = True
        return copy
    if isinstance(value, FrozenList):
        return value
    if isinstance(value, list):
        return FrozenList(map(frozen, value))
    if type(value) is tuple:
        return tuple(map(frozen, value))
    return value


def thawed(value: Any) -> Any:
    """A plain deep copy of ``value``'s dicts and lists (``dict`` and ``list``, whatever their class)."""
    if isinstance(value, dict):
        return {key: thawed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [thawed(item) for item in value]
    if type(value) is tuple:
        return tuple(map(thawed, value))
    return value
