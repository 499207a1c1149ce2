"""The graph: immutable nodes, the three kinds of leaf, provenance, and walks.

A :class:`Node` is one operation applied to input nodes and its one result (PyTensor
calls these an Apply node and its output Variable). graphaudit's own ops have one
result; an imported op with several is imported as one node per result, told apart by
the attr ``output=i``. Nodes are small (``__slots__``) and never change once made, so a
graph can be shared freely between the separate and the joint gradient forms.

Provenance says who made a node: ``call`` is ``None`` for forward nodes and a
:class:`GradCall` for nodes built by a ``grad`` call; ``origin`` is the forward node
whose vector-Jacobian rule produced a backward node. Both are set from a small
build context, entered with :func:`building` by :func:`graphaudit.grad` while it runs the
rules and by every importer.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import math
import operator
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from graphaudit.core.attrs import canonical_attrs
from graphaudit.core.source import forward_sources
from graphaudit.errors import culprit

LEAF_OPS = frozenset({"placeholder", "parameter", "constant"})

_next_id = itertools.count()


class GradCall:
    """One call of :func:`graphaudit.grad`: the provenance tag of the nodes it built.

    ``adjoint_of`` maps the id of each summed adjoint node the call built to the
    forward node it is the adjoint of, so that a report can print ``d(sigmoid_2)``.
    """

    __slots__ = ("index", "wrt_names", "adjoint_of")

    _counter = itertools.count()

    def __init__(self, wrt_names: Sequence[str]):
        self.index = next(GradCall._counter)
        self.wrt_names = tuple(wrt_names)
        self.adjoint_of: dict[int, Node] = {}

    @property
    def label(self) -> str:
        return GradCall.label_for(self.wrt_names)

    @staticmethod
    def label_for(wrt_names: Sequence[str]) -> str:
        """How reports name the grad call over ``wrt_names``: ``grad(cost, [w1])``."""
        return "grad(cost, [" + ", ".join(wrt_names) + "])"

    def __repr__(self) -> str:
        return f"<GradCall #{self.index} {self.label}>"


class _BuildContext:
    """Which grad call, and which forward node's rule, is building nodes right now."""

    __slots__ = ("call", "origin")

    def __init__(self) -> None:
        self.call: GradCall | None = None
        self.origin: Node | None = None


build_context = _BuildContext()


@contextlib.contextmanager
def building(call: GradCall | None = None, origin: Node | None = None):
    """Make nodes with this provenance inside the ``with`` block; the previous one comes back after.

    The one place provenance is saved and restored: ``grad``, ``from_networkx`` and every
    importer build inside it. Code in the block may move ``build_context.origin`` (or
    ``call``) from node to node, as the reverse loop does at each forward node's turn.
    """
    saved = build_context.call, build_context.origin
    build_context.call, build_context.origin = call, origin
    try:
        yield build_context
    finally:
        build_context.call, build_context.origin = saved


class _NodeSlots:
    """The storage of a node; :class:`Node` adds immutability, :class:`new_node` fills it."""

    __slots__ = ("op", "inputs", "attrs", "shape", "dtype", "name", "value", "call", "origin", "id")


class Node(_NodeSlots):
    """One operation applied to input nodes; immutable once made.

    ``attrs`` is a tuple of ``(key, value)`` pairs sorted by key, in the canonical form of
    :mod:`graphaudit.core.attrs` (hashable, and equal only when the values are equal in type
    too); :meth:`attr` reads one. ``value`` holds a constant's or a parameter's
    array (and, on a copy of an impure node, the node whose draw it is: :attr:`draw`),
    ``name`` a leaf's name. ``id`` is a process-wide creation counter: it
    orders nodes deterministically and serves as a compact integer identity.
    """

    __slots__ = ()

    op: str
    inputs: tuple[Node, ...]
    attrs: tuple[tuple[str, Any], ...]
    shape: tuple[int, ...]
    dtype: np.dtype
    name: str | None
    value: np.ndarray | None
    call: GradCall | None
    origin: Node | None
    id: int

    def __new__(cls, op, inputs, attrs, shape, dtype, name=None, value=None):
        return new_node(op, inputs, canonical_attrs(attrs) if attrs else (), shape, dtype, name, value)

    def __setattr__(self, key, value):
        raise AttributeError(f"graphaudit nodes are immutable (tried to set {key!r} on {self!r})")

    def __delattr__(self, key):
        raise AttributeError(f"graphaudit nodes are immutable (tried to delete {key!r} of {self!r})")

    def with_inputs(self, inputs: Sequence[Node]) -> Node:
        """A copy of this node (same op, attrs and provenance) reading other inputs."""
        return new_node(self.op, tuple(inputs), self.attrs, self.shape, self.dtype, self.name, self.value,
                        (self.call, self.origin))

    def same_draw(self, inputs: Sequence[Node]) -> Node:
        """A copy of this impure node (a random draw) reading other, equal inputs: the same draw, not a second.

        Merging rebuilds every node that reads a merged input. A random draw rebuilt so is
        still the one draw the program makes: merging keys impure nodes by :attr:`draw`, so
        the copies that two merges of one program make (of its separate and of its joint
        form) merge with each other, and never with another draw.
        """
        return new_node(self.op, tuple(inputs), self.attrs, self.shape, self.dtype, self.name, self.draw,
                        (self.call, self.origin))

    @property
    def draw(self) -> Node:
        """The draw an impure node makes: the node :meth:`same_draw` copied, else itself."""
        return self.value if isinstance(self.value, Node) else self

    def attr(self, key: str, default: Any = None) -> Any:
        for k, v in self.attrs:
            if k == key:
                return v
        return default

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def is_leaf(self) -> bool:
        return self.op in LEAF_OPS

    @property
    def is_backward(self) -> bool:
        return self.call is not None

    @property
    def label(self) -> str:
        """A short name: the leaf's name, else ``op#id``."""
        return self.name if self.name is not None else f"{self.op}#{self.id}"

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.shape)) or "scalar"
        return f"<Node {self.label} {shape} {self.dtype}>"

    # + - * / ** @, unary -, [] and .T are installed by graphaudit/core/ops/__init__.py.

    def __bool__(self):
        raise TypeError("a graphaudit node has no truth value: it is symbolic (use graphaudit.where)")

    __array_priority__ = 1000  # so that numpy_array + node calls Node.__radd__


class new_node(_NodeSlots):  # a class called like a function: what it returns is a Node
    """``new_node(op, inputs, attrs, shape, dtype)``: a :class:`Node` with the current provenance
    (or the given one), made without checks; ``ops.apply`` checks the inputs and infers shape
    and dtype first. Every node is made here. A forward node made with the current provenance
    (graphaudit's own API, outside any grad call) has the user's line that made it noted in
    :data:`graphaudit.core.source.forward_sources`; nodes given their provenance (importers,
    copies) do not: an importer knows the framework's own record of the line.

    ``Node`` forbids assignment, so its slots cannot be filled the ordinary way; a
    class with the same slots and no such rule can, and switching ``__class__`` at the
    end is allowed because the two share their layout. This is three times faster than
    going around ``Node.__setattr__``, and nodes are made by the million.
    """

    __slots__ = ()

    def __init__(self, op, inputs, attrs, shape, dtype, name=None, value=None, provenance=None):
        self.op = op
        self.inputs = inputs
        self.attrs = attrs
        self.shape = shape
        self.dtype = dtype
        self.name = name
        self.value = value
        self.id = next(_next_id)
        if provenance is None:
            self.call = call = build_context.call
            self.origin = build_context.origin
            if call is None:  # a forward node built by graphaudit's own API: note the user's line
                forward_sources.record(self.id)
        else:
            self.call, self.origin = provenance
        self.__class__ = Node


def new_id_mark() -> int:
    """An id no node has, and greater than every node made so far: nodes made after it compare greater."""
    return next(_next_id)


def made_since(outputs: Iterable[Node | None], mark: int) -> list[Node]:
    """The nodes behind ``outputs`` made after the id ``mark`` (of :func:`new_id_mark`), oldest first.

    What one piece of work (a vjp rule's turn, say) built: walking back from what it
    returned stops at the nodes that existed before it started.
    """
    found: dict[int, Node] = {}
    stack = [node for node in outputs if node is not None and node.id > mark]
    while stack:
        node = stack.pop()
        if node.id not in found:
            found[node.id] = node
            stack.extend(source for source in node.inputs if source.id > mark)
    return [found[i] for i in sorted(found)]


def _as_dtype(dtype) -> np.dtype:
    try:
        return np.dtype(dtype)
    except TypeError as error:
        raise TypeError(f"not a dtype: {dtype!r}") from error


def _as_shape(shape, what: str) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError as error:
        raise TypeError(f"{what}: shape must be a tuple of ints, got {shape!r}") from error
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in dims):
        raise TypeError(f"{what}: shape must be a tuple of ints, got {shape!r}")
    shape = tuple(int(s) for s in dims)
    if any(s < 0 for s in shape):
        raise ValueError(f"{what}: shape {shape} has a negative dimension")
    return shape


def placeholder(name: str, shape: Sequence[int], dtype="float32") -> Node:
    """Data fed at run time (inputs, labels). Never differentiated through by default."""
    return Node("placeholder", (), (), _as_shape(shape, f"placeholder {name!r}"), _as_dtype(dtype), name=str(name))


def parameter(name: str, shape_or_value=None, dtype=None, *, shape=None, value=None) -> Node:
    """What we differentiate: a weight. Give its shape (no array is allocated) or its value.

    ``parameter("w", (3, 3))`` and ``parameter("w", shape=(3, 3), dtype="float64")`` make
    a weight of that shape (float32 unless ``dtype`` says otherwise); ``parameter("w",
    array)`` and ``parameter("w", value=array)`` one holding a read-only copy of the array
    (its own dtype unless ``dtype`` says otherwise). Give exactly one of the shape and the value.
    """
    given = {"shape_or_value": shape_or_value, "shape": shape, "value": value}
    named = [key for key, item in given.items() if item is not None]
    if len(named) != 1:
        how = "both " + " and ".join(f"{key}=" for key in named) if named else "neither"
        raise TypeError(f"parameter {name!r}: give its shape (shape=(3, 3)) or its value (value=array), got {how}")
    if value is None and isinstance(shape_or_value, (np.ndarray, np.generic, float)):
        value = shape_or_value
    if value is not None:
        array = np.array(value, dtype=dtype if dtype is not None or isinstance(value, np.ndarray) else "float32")
        if array.dtype == object:
            raise TypeError(f"parameter {name!r}: cannot make an array of {culprit(value)}")
        array.flags.writeable = False
        return Node("parameter", (), (), array.shape, array.dtype, name=str(name), value=array)
    shape = _as_shape(shape if shape is not None else shape_or_value, f"parameter {name!r}")
    return Node("parameter", (), (), shape, _as_dtype("float32" if dtype is None else dtype), name=str(name))


def constant(value, dtype=None, name: str | None = None) -> Node:
    """A fixed value. Merged with other constants of the same dtype, shape and bytes."""
    array = np.array(value, dtype=dtype)
    if array.dtype == object:
        raise TypeError(f"constant: cannot make an array of {culprit(value)}")
    array.flags.writeable = False
    return Node("constant", (), (), array.shape, array.dtype, name=name, value=array)


def topological_order(outputs: Iterable[Node]) -> list[Node]:
    """Every node the outputs depend on, inputs before consumers, each once.

    A node's inputs exist before it, so creation order (``Node.id``) is a topological
    order: collect what the outputs reach with an explicit stack (no recursion, so graphs
    of any depth work), then sort by id. Deterministic, and cheaper than a post-order walk.
    """
    reached = set(outputs)
    stack = list(reached)
    while stack:
        for source in stack.pop().inputs:
            if source not in reached:
                reached.add(source)
                stack.append(source)
    return sorted(reached, key=_by_id)


_by_id = operator.attrgetter("id")


@contextlib.contextmanager
def paused_gc():
    """Pause Python's cyclic garbage collector while a large graph is built, merged and costed.

    Nodes are made by the million and never form cycles, yet every allocation counts
    towards the collector's thresholds, and its collections walk the young nodes again
    at each generation. Paused, none of that happens; on leaving, what was made is moved
    straight to the oldest generation (``gc.freeze`` then ``gc.unfreeze``), where a
    collection would have put it after walking it, so the first collection after does
    not walk millions of nodes either. Only the outermost pause does this, and only when
    nothing is frozen already (``gc.freeze`` is someone else's then). Nothing is lost:
    the oldest generation is still collected, and cycles made meanwhile go with it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def check_nodes(values, what: str) -> list[Node]:
    """``values`` as a list of nodes, or a TypeError naming the first that is not one."""
    nodes = list(values)
    for position, value in enumerate(nodes):
        if not isinstance(value, Node):
            raise TypeError(f"{what}[{position}] is {culprit(value)}, not a graphaudit Node")
    return nodes
