"""The PyTorch front-end: audit the user's own ``torch.autograd.grad`` calls, one per parameter vs one joint.

- :mod:`.capture`: the user's program (forward, separate calls, joint call) traced with ``make_fx``
  on fake tensors as PyTorch runs it, then again without writes (PyTorch's functionalization), with
  each node's grad call, autograd sequence number and module path; :func:`named_leaves`, the
  user's tensors by the names of the imported graphs' leaves (the feed to evaluate them);
- :mod:`.aten`: an aten call's arguments as a node's inputs and attrs, and back (:func:`run_aten`);
- :mod:`.ops`: the table of aten ops (kind, FLOP rule, views);
- :mod:`.importer`: the FX graph to nodes (:func:`from_fx`);
- :mod:`.audit`: :func:`audit` (through the shared driver) and :func:`audit_function` (any function of
  the model, merged); :mod:`.section`: the report's :class:`TorchSection`; :mod:`.target`: the command
  line's :data:`CLI`;
- :mod:`.compile_check`: what PyTorch's FX CSE and inductor keep of the separate grads.

PyTorch itself is imported on first use, never by importing this package.
"""

from graphaudit.frontends.torch.audit import audit, audit_function
from graphaudit.frontends.torch.capture import named_leaves
from graphaudit.frontends.torch.importer import from_fx
from graphaudit.frontends.torch.section import TorchSection
from graphaudit.frontends.torch.target import CLI

__all__ = ["CLI", "TorchSection", "audit", "audit_function", "from_fx", "named_leaves"]
