"""What every front-end shares: its op table, hashable attrs, one audit driver, its report section.

A front-end turns a framework's graph into graphaudit nodes (its *importer*), and says how
each framework op counts (its *table*). It audits by giving the one driver its forms. The
pieces, by module:

- :mod:`.table`: :class:`ImportedOp` rows and the :class:`OpTable` that registers them.
- :mod:`.attrs`: a framework op's parameters as hashable attrs (:func:`hashable_param`,
  :class:`Opaque`) and :func:`imported_node`.
- :mod:`.driver`: :class:`AuditOptions`, the :class:`FrameworkForms` a front-end implements,
  and :func:`audit_forms`, the steps every audit shares.
- :mod:`.loops`: how a loop was treated (:class:`Treatment`), one :class:`LoopRecord` per loop
  met, and the rows and lines of a section's ``loops``.
- :mod:`.section`: :class:`FrameworkSection`, the framework's figures in a report.
- :mod:`.calls`: the user's own grad calls, as ``audit_function`` names and lists them.
- :mod:`.target`: what a front-end declares to the command line (:class:`CliFrontend`).
"""

from graphaudit.frontends.common.attrs import (
    ADDRESS, ATTR_OUTPUT, TEXT_RULES, Opaque, canonical_text, hashable_param, imported_node,
)
from graphaudit.frontends.common.driver import AuditOptions, BuiltForms, FrameworkForms, audit_forms
from graphaudit.frontends.common.loops import DEFAULT_LOOP_BUDGET, LoopRecord, Treatment, loop_lines, loop_rows, unrolls
from graphaudit.frontends.common.section import FrameworkSection, attach_section
from graphaudit.frontends.common.table import UNKNOWN, ImportedOp, OpTable
from graphaudit.frontends.common.target import CliFrontend, TargetError, a_type, target_wrt

__all__ = [
    "ADDRESS", "ATTR_OUTPUT", "DEFAULT_LOOP_BUDGET", "TEXT_RULES", "UNKNOWN", "AuditOptions", "LoopRecord", "Treatment",
    "BuiltForms", "CliFrontend", "FrameworkForms", "FrameworkSection", "ImportedOp", "Opaque", "OpTable",
    "TargetError", "a_type", "attach_section", "audit_forms", "canonical_text", "hashable_param",
    "imported_node", "loop_lines", "loop_rows", "target_wrt", "unrolls",
]
