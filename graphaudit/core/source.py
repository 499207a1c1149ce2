"""Where a node came from in the user's code: :class:`Source` and the frames that are not the user's.

"The user's line" is the innermost frame outside the libraries between the user and a
node: the frameworks graphaudit imports from (``torch``, ``jax``, ``pytensor``, ``pymc``,
``flax``, ``equinox``), graphaudit itself, and Python's standard library (``contextlib``,
``functools``, ``runpy``). graphaudit's example networks (``graphaudit/models.py``) are
written as a user writes a model, and count as user code: a report on ``ga.models.seed_mlp``
points into them, not at the one line that called the builder.

Front-ends find a line with :func:`user_frame` (an FX node's ``stack_trace`` text, a JAX
equation's traceback frames, a PyTensor ``tag.trace``). graphaudit's own forward nodes record
their builder's caller as they are made: :data:`forward_sources`, read by the audit.
"""

from __future__ import annotations

import bisect
import linecache
import os
import re
import sys
import sysconfig
import types
from array import array
from collections.abc import Iterable
from typing import Any, NamedTuple

LIBRARIES = ("torch", "jax", "jaxlib", "pytensor", "pymc", "flax", "equinox", "graphaudit")
_GRAPHAUDIT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_USER_FILES_IN_GRAPHAUDIT = frozenset({os.path.join(_GRAPHAUDIT, "models.py")})
_STDLIB = tuple(os.path.abspath(p) + os.sep for p in {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]})
_INSTALLED = ("site-packages", "dist-packages")


class Source(NamedTuple):
    """One line of the user's code: ``file`` as a compiler prints it (relative to the working
    directory when under it), its 1-based ``line``, and the ``code`` on it ("" when unreadable)."""

    file: str
    line: int
    code: str

    @classmethod
    def at(cls, filename: str, line: int) -> Source:
        """The source at ``filename:line``, its path shortened and its code read (through linecache)."""
        code = linecache.getline(filename, line).strip()
        return cls(display_path(filename), int(line), code)

    @property
    def location(self) -> str:
        """``file:line``, what editors and CI logs link to."""
        return f"{self.file}:{self.line}"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "code": self.code}


def display_path(filename: str) -> str:
    """``filename`` relative to the working directory when it lies under it (with ``/``), else as given."""
    if filename.startswith("<"):
        return filename
    absolute = os.path.abspath(filename)
    here = os.getcwd() + os.sep
    return absolute[len(here):].replace(os.sep, "/") if absolute.startswith(here) else absolute


_verdicts: dict[str, bool] = {}  # filename -> is it a library's (a file never changes sides)


def is_library_file(filename: str) -> bool:
    """Whether ``filename`` belongs to a library (see the module docstring), not to the user."""
    verdict = _verdicts.get(filename)
    if verdict is None:
        verdict = _verdicts[filename] = _is_library_file(filename)
    return verdict


def _is_library_file(filename: str) -> bool:
    if filename.startswith("<frozen "):  # importlib, runpy: the standard library, frozen in
        return True
    if filename.startswith("<"):  # <stdin>, <string>, a notebook cell: the user's
        return False
    path = os.path.abspath(filename)
    if path in _USER_FILES_IN_GRAPHAUDIT:
        return False
    parts = path.split(os.sep)
    for i, part in enumerate(parts[:-1]):
        if part in _INSTALLED:  # an installed package is a library when it is one of those named
            return parts[i + 1].removesuffix(".py") in LIBRARIES
    return any(path.startswith(folder) for folder in (*_STDLIB, *_imported_library_dirs()))


def _imported_library_dirs() -> list[str]:
    """The folders of the libraries imported so far (source checkouts are not under site-packages)."""
    folders = [_GRAPHAUDIT + os.sep]
    for name in LIBRARIES:
        module = sys.modules.get(name)
        folders += [os.path.abspath(p) + os.sep for p in getattr(module, "__path__", ())]
    return folders


# A frame in traceback text: ``  File "train.py", line 12, in forward`` (FX's stack_trace, traceback.format_stack).
_FRAME_LINE = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)', re.MULTILINE)


def user_frame(stack: Any, innermost_first: bool = False) -> Source | None:
    """The innermost frame of ``stack`` outside the libraries, as a :class:`Source`; None if all are theirs.

    ``stack`` is traceback text (an FX node's ``stack_trace``), a frame object (walked
    outwards through ``f_back``), or frames in a sequence: ``traceback.FrameSummary``-like
    (``filename``, ``lineno``), JAX-like (``file_name``, ``line_num``) or ``(file, line)`` pairs.
    Text and sequences run outermost first, as Python prints a traceback; pass
    ``innermost_first=True`` for a sequence the other way round (JAX's ``Traceback.frames``).
    """
    if isinstance(stack, types.FrameType):
        frame = stack
        while frame is not None and is_library_file(frame.f_code.co_filename):
            frame = frame.f_back
        return None if frame is None else Source.at(frame.f_code.co_filename, frame.f_lineno)
    if isinstance(stack, str):
        frames = [(m["file"], int(m["line"])) for m in _FRAME_LINE.finditer(stack)]
    else:
        frames = [_file_and_line(item) for item in stack]
    for filename, line in (frames if innermost_first else reversed(frames)):
        if not is_library_file(filename):
            return Source.at(filename, line)
    return None


def _file_and_line(frame: Any) -> tuple[str, int]:
    if isinstance(frame, tuple):
        return frame[0], int(frame[1])
    if hasattr(frame, "filename"):
        return frame.filename, int(frame.lineno)
    if hasattr(frame, "file_name"):
        return frame.file_name, int(frame.line_num)
    raise TypeError(f"user_frame: cannot read a file and line from a {type(frame).__name__}")


class ForwardSources:
    """The line that built each of graphaudit's own forward nodes, kept beside the nodes, not in them.

    Nodes are made by the million and have no room for it (``__slots__``). Forward nodes are
    few (the backward forms are what grow), are made in creation order, and a line usually
    makes several in a row (``h @ w + b``: a matmul then an add). So the table holds runs:
    node ids ``starts[i]..ends[i]`` were made at ``locations[where[i]]``, three machine
    integers per run in ``array``s, found by bisection. Nodes hold no reference to it and
    it holds none to them, so it never keeps a graph alive; what it keeps of a graph that
    is gone is those integers per run, about 24 bytes per line of model code run.
    """

    __slots__ = ("starts", "ends", "where", "locations", "location_index")

    def __init__(self) -> None:
        self.starts, self.ends, self.where = array("q"), array("q"), array("q")
        self.locations: list[tuple[str, int]] = []
        self.location_index: dict[tuple[str, int], int] = {}

    def record(self, node_id: int) -> None:
        """Note the caller of the library frames above as the maker of node ``node_id``."""
        frame, verdicts = sys._getframe(1), _verdicts
        while frame is not None:
            filename = frame.f_code.co_filename
            library = verdicts.get(filename)
            if library is None:
                library = is_library_file(filename)
            if not library:
                break
            frame = frame.f_back
        if frame is None:
            return
        location = (filename, frame.f_lineno)
        index = self.location_index.get(location)
        if index is None:
            index = self.location_index[location] = len(self.locations)
            self.locations.append(location)
        if self.ends and self.ends[-1] == node_id - 1 and self.where[-1] == index:
            self.ends[-1] = node_id
        else:
            self.starts.append(node_id)
            self.ends.append(node_id)
            self.where.append(index)

    def location_of(self, node_id: int) -> tuple[str, int] | None:
        """The ``(filename, line)`` that made node ``node_id``, if it was recorded (O(log runs))."""
        run = bisect.bisect_right(self.starts, node_id) - 1
        if run < 0 or self.ends[run] < node_id:
            return None
        return self.locations[self.where[run]]


forward_sources = ForwardSources()  # filled by graphaudit.core.graph.new_node for forward nodes built outside grad


def recorded_sources(nodes: Iterable[Any]) -> dict[Any, Source]:
    """The recorded line of each of ``nodes`` that graphaudit's own API built forward (others are left out)."""
    found: dict[Any, Source] = {}
    read: dict[tuple[str, int], Source] = {}
    for node in nodes:
        location = forward_sources.location_of(node.id)
        if location is not None:
            source = read.get(location)
            if source is None:
                source = read[location] = Source.at(*location)
            found[node] = source
    return found


def source_of(node: Any, sources: dict[Any, Source]) -> Source | None:
    """``node``'s line: its own, else (a backward node's) that of the forward node whose vjp rule built it."""
    found = sources.get(node)
    if found is None and node.origin is not None:
        found = sources.get(node.origin)
    return found
