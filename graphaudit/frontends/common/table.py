"""A front-end's op table: one :class:`ImportedOp` row per framework op, registered on first sight.

As netron keeps one metadata file and tf2onnx one handler table per format, a front-end says
in one table how each of its framework's ops counts and runs; :class:`OpTable` registers
``prefix + key`` in graphaudit's op registry the first time an importer meets it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

import numpy as np

from graphaudit.core.graph import Node
from graphaudit.core.ops import OPS, define_imported


class ImportedOp(NamedTuple):
    """One row of a front-end's op table: how graphaudit counts and runs one framework op.

    ``kind`` is the family (``"matmul"`` is the one reports single out); ``cost`` the FLOP
    rule (None: reported as "no cost rule", never dropped); ``impl`` numpy code called as
    ``impl(node, *arrays)`` (None: the table's fallback, which asks the framework); ``view``
    whether its output is a view of an input (a transpose, reshape, broadcast or basic
    slice): it writes no new buffer, so it costs no bytes; ``operand_text`` what a node of
    it works on, for reports (None: its input shapes, as for graphaudit's own ops); ``same_as``
    and ``swapped`` the forms semantic merging reads; ``matmul_cost`` and ``bound`` what a loop
    kept whole runs in products and whether its FLOPs are a bound (:class:`graphaudit.core.ops.Op`).
    """

    kind: str = "imported"
    cost: Callable[[Node], int] | None = None
    impl: Callable[..., np.ndarray] | None = None
    view: bool = False
    operand_text: Callable[[Node], str] | None = None
    same_as: Callable[[Node], tuple[str, tuple] | None] | None = None
    swapped: Callable[[Node], tuple[str, tuple, tuple[int, ...]]] | None = None
    matmul_cost: Callable[[Node], int] | None = None
    bound: Callable[[Node], str | None] | None = None


UNKNOWN = ImportedOp()


class OpTable:
    """A front-end's ops: ``prefix + key`` registered in graphaudit's op registry on first sight."""

    def __init__(self, prefix: str, rows: Mapping[str, ImportedOp], fallback_impl: Callable | None = None):
        self.prefix = prefix
        self.rows = dict(rows)
        self.fallback_impl = fallback_impl

    def row(self, key: str) -> ImportedOp:
        return self.rows.get(key, UNKNOWN)

    def op_name(self, key: str, *, pure: bool = True, row: ImportedOp | None = None, doc: str = "",
                pure_when: Callable[[Node], bool] | None = None) -> str:
        """The registered name of framework op ``key`` (``row`` overrides the table's row for it).

        ``pure_when``, for an impure op, picks the calls that are deterministic after all
        (:attr:`graphaudit.core.ops.Op.pure_when`).

        Registered once. An op first seen with side effects stays impure when seen without
        (that only keeps its nodes apart); one first seen pure and now with side effects is
        refused, since nodes of it may already have merged.
        """
        name = self.prefix + key
        existing = OPS.get(name)
        if existing is None:
            row = row if row is not None else self.row(key)
            define_imported(name, kind=row.kind, cost=row.cost, impl=row.impl or self.fallback_impl, pure=pure,
                            doc=doc, view=row.view, operand_text=row.operand_text, same_as=row.same_as,
                            swapped=row.swapped, pure_when=None if pure else pure_when,
                            matmul_cost=row.matmul_cost, bound=row.bound)
        elif existing.pure and not pure:
            raise ValueError(f"op {key!r} has side effects here but was imported as pure before")
        return name
