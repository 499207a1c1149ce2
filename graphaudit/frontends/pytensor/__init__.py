"""PyTensor front-end: import PyTensor graphs as graphaudit nodes, audit them, cross-check PyTensor.

PyTensor is Theano's maintained successor, the framework of the seed. Two entry points:

- :func:`from_pytensor` turns PyTensor variables (their graph of ``Apply`` nodes) into
  graphaudit nodes, to evaluate, merge, cost or draw them like any other graph.
- :func:`audit` answers the seed's question inside PyTensor: ``pytensor.grad`` once per
  parameter against one joint call, and with ``compile_check=True`` what PyTensor's own
  ``MergeOptimizer`` and compile rewrites get back.

The modules, in the order a graph meets them: :mod:`.ops` (the table: how each Op is
named, counted and run), :mod:`.indexing` (indexing ops in one form under PyTensor 2.x
and 3.x), :mod:`.shapes` (shape rules where PyTensor's static shapes are open),
:mod:`.scan` (a Scan with its body: unrolled within a node budget, else one node),
:mod:`.importer` (Apply nodes to graphaudit nodes) and :mod:`.audit` (the two forms, the
compile check, the report section and the command-line target). PyMC models go through
:mod:`graphaudit.frontends.pymc`, which asks this front-end.

PyTensor is imported lazily: importing this package does not need it.
"""

from graphaudit.frontends.pytensor.audit import audit, build_both
from graphaudit.frontends.pytensor.compile_check import default_compile, matmul_count, merge_optimizer, mode_name
from graphaudit.frontends.pytensor.importer import Imported, from_pytensor
from graphaudit.frontends.pytensor.section import PyTensorSection
from graphaudit.frontends.pytensor.target import CLI

__all__ = ["CLI", "Imported", "PyTensorSection", "audit", "build_both", "default_compile", "from_pytensor",
           "matmul_count", "merge_optimizer", "mode_name"]
