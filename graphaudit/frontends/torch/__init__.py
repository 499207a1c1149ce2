"""The PyTorch front-end: audit the user's own ``torch.autograd.grad`` calls, one per parameter vs one joint.

- :mod:`.capture`: the user's program (forward, separate calls, joint call) traced with ``make_fx``
  on fake tensors as PyTorch runs it, then again without writes (PyTorch's functionalization), with
  each node's grad call, autograd sequence number and module path; :func:`named_leaves`, the
  user's tensors by the names of the imported graphs' leaves (the feed to evaluate them);
- :mod:`.aten`: an aten call's arguments as a node's inputs and attrs, and back (:func:`run_aten`);
- :mod:`.ops`: the table of aten ops (kind, FLOP rule, views);
- :mod:`.importer`: the FX graph to nodes (:func:`from_fx`);
- :mod:`.audit`: :func:`audit` (through the shared driver); :mod:`.function`: :func:`audit_function`
  (any function of the model, merged; its ``torch.autograd.grad`` calls are the report's grad calls,
  named by their lines); :mod:`.section`: the report's :class:`TorchSection`; :mod:`.target`: the command
  line's :data:`CLI`;
- :mod:`.orders`: :func:`derivative_orders`, nested ``autograd.grad`` by order (a PINN's u_x, u_xx, ...);
- :mod:`.compile_check`: what PyTorch's FX CSE and inductor keep of the separate grads;
- :mod:`.remedy`: :func:`deduplicate`, the user's function with the merged graph run instead
  (eagerly or compiled by inductor).

PyTorch itself is imported on first use, never by importing this package.
"""

from graphaudit.frontends.torch.audit import audit
from graphaudit.frontends.torch.function import audit_function
from graphaudit.frontends.torch.capture import named_leaves
from graphaudit.frontends.torch.importer import from_fx
from graphaudit.frontends.torch.orders import derivative_orders
from graphaudit.frontends.torch.remedy import Deduplicated, deduplicate
from graphaudit.frontends.torch.section import TorchSection
from graphaudit.frontends.torch.target import CLI

__all__ = ["CLI", "Deduplicated", "TorchSection", "audit", "audit_function", "deduplicate", "derivative_orders", "from_fx", "named_leaves"]
