"""The user's function as a function of the flat list of its arguments' array leaves.

:class:`FlatFunction` flattens the arguments (pytrees: dicts of arrays, Flax params,
Equinox modules) and names each array leaf by its argument and path
(``params['dense_1']['w']``, ``model.layers[0].weight``). Leaves that are not arrays (an
Equinox module's activation function, a Python float) are static: closed over, never
traced. The arguments ``argnums`` names are differentiated in every inexact leaf
(float32, bfloat16, ...); an integer array inside a pytree is left alone, as
``equinox.filter_grad`` does, and an integer array passed bare is refused.
``has_aux=True`` differentiates the first of the ``(loss, aux)`` the function returns.
``group`` gathers the differentiated leaves into one separate grad per group.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from graphaudit.frontends import require
from graphaudit.frontends.jax.importer import aval_dtype, aval_shape
from graphaudit.core.graph import Node, parameter, placeholder


def _argument_names(fn: Callable, count: int) -> list[str]:
    """Names for ``fn``'s positional arguments, from its signature where it has one."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    names: list[str] = []
    for p in parameters:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
        elif p.kind == p.VAR_POSITIONAL:
            names += [f"{p.name}[{i}]" for i in range(count - len(names))]
            break
    names += [f"arg{i}" for i in range(len(names), count)]
    return names[:count]


Group = Callable[[str], Any] | str | None


class FlatFunction:
    """The user's function as a function of the flat list of its arguments' array leaves.

    ``names`` names each array leaf by its argument and pytree path; ``leaves`` are those
    leaves (what every trace is given); ``wrt`` lists the positions of the differentiated
    ones, group after group, and ``groups`` slices ``wrt`` into the separate grad calls:
    one leaf each by default, or the leaves ``group`` puts together (``"module"``: the
    leaves under one parent in the pytree; a callable: the leaves whose names it maps to
    the same key), in the order their groups first appear.
    """

    def __init__(self, fn: Callable, args: tuple, argnums: tuple[int, ...], *, has_aux: bool = False,
                 group: Group = None):
        jax = require("jax", "jax")
        if not (group is None or group == "module" or callable(group)):
            raise ValueError(f"audit: group must be None, 'module' or a function of a leaf's name, got {group!r}")
        paths_leaves, self.treedef = jax.tree_util.tree_flatten_with_path(args)
        self.fn, self.has_aux = fn, has_aux
        arg_names = _argument_names(fn, len(args))
        self.names: list[str] = []
        self.leaves: list[Any] = []
        self.static: dict[int, Any] = {}  # position among all leaves -> a leaf that is not an array
        keys: dict[Any, list[int]] = {}
        for index, (path, leaf) in enumerate(paths_leaves):
            bare = len(path) == 1  # the argument itself, not a leaf inside it
            if not bare and not isinstance(leaf, (jax.Array, np.ndarray, np.generic, jax.ShapeDtypeStruct)):
                self.static[index] = leaf
                continue
            argument = path[0].idx
            name = arg_names[argument] + jax.tree_util.keystr(path[1:])
            self.names.append(name)
            self.leaves.append(leaf)
            if argument not in argnums:
                continue
            dtype = leaf.dtype if hasattr(leaf, "dtype") else np.asarray(leaf).dtype
            # JAX's view of inexact: numpy's says no to bfloat16 and the other ml_dtypes floats
            if not jax.numpy.issubdtype(dtype, jax.numpy.inexact):
                if bare:
                    raise TypeError(f"audit: cannot differentiate {name}: its dtype is {dtype}, not floating point")
                continue
            if group is None:
                key = name
            elif group == "module":
                key = arg_names[argument] + jax.tree_util.keystr(path[1:-1])
            else:
                key = group(name)
            keys.setdefault(key, []).append(len(self.leaves) - 1)
        if not self.leaves:
            raise ValueError("audit: the arguments hold no arrays")
        self.wrt = [index for members in keys.values() for index in members]
        self.groups: list[slice] = []
        for members in keys.values():
            start = self.groups[-1].stop if self.groups else 0
            self.groups.append(slice(start, start + len(members)))

    def __call__(self, *leaves):
        jax = require("jax", "jax")
        arrays = iter(leaves)
        every = [self.static[i] if i in self.static else next(arrays) for i in range(self.treedef.num_leaves)]
        result = self.fn(*jax.tree_util.tree_unflatten(self.treedef, every))
        if not self.has_aux:
            return result
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise TypeError("audit: has_aux=True, but the function did not return a (loss, aux) pair")
        return result[0]

    def separate(self, group: int) -> Callable:
        """``jax.grad`` for the leaves of one group alone (a tuple of their gradients)."""
        return require("jax", "jax").grad(self, argnums=tuple(self.wrt[self.groups[group]]))

    def joint(self) -> Callable:
        return require("jax", "jax").grad(self, argnums=tuple(self.wrt))

    def separate_in_one(self, *leaves):
        """All the separate grads, in one function (for one ``jit``), in the order of ``wrt``."""
        return tuple(g for group in range(len(self.groups)) for g in self.separate(group)(*leaves))

    def nodes(self, traced: Any) -> list[Node]:
        """One leaf node per array leaf, typed as JAX traced it: parameters if differentiated."""
        wrt = set(self.wrt)
        return [
            (parameter if i in wrt else placeholder)(name, aval_shape(var.aval, name), aval_dtype(var.aval))
            for i, (name, var) in enumerate(zip(self.names, traced.jaxpr.invars))
        ]


def named_leaves(fn: Callable, *args: Any) -> dict[str, Any]:
    """``{name: leaf}`` of the arguments, named as :func:`~.audit.audit` names them: the feed for
    :func:`evaluate` (or :func:`graphaudit.evaluate`) of the imported forms."""
    flat = FlatFunction(fn, args, ())
    return dict(zip(flat.names, flat.leaves))


