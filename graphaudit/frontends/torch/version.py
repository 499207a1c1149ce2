"""Which PyTorch the front-end runs on: the oldest release with every API the capture uses.

The capture traces the user's program with fake-mode ``make_fx`` inside
``preserve_node_meta``, tags each grad call with ``torch.fx.traceback.annotate`` (added in
PyTorch 2.10: the newest of these APIs, so the floor) and gives backward nodes the sequence
number of their forward op with AOTAutograd's stack-trace preservation hooks. An older torch
fails early, in one line that names the floor, not deep inside a trace.
"""

from __future__ import annotations

import functools
import importlib
import re
from types import ModuleType

from graphaudit.frontends import MissingFrameworkError, require

MINIMUM = (2, 10)  # the oldest PyTorch with torch.fx.traceback.annotate

# (module, attribute): every torch API the capture relies on
APIS = (
    ("torch.fx.experimental.proxy_tensor", "make_fx"),
    ("torch.fx.traceback", "preserve_node_meta"),
    ("torch.fx.traceback", "annotate"),
    ("torch._functorch._aot_autograd.logging_utils", "setup_stacktrace_preservation_hooks"),
    ("torch.func", "functional_call"),
    ("torch.utils._pytree", "tree_flatten_with_path"),
)


def release(version: str) -> tuple[int, int]:
    """``(2, 13)`` for ``"2.13.0+cpu"``."""
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None:
        raise ValueError(f"not a PyTorch version: {version!r}")
    return int(match[1]), int(match[2])


@functools.cache
def supported_torch() -> ModuleType:
    """``torch``, once it is known to have what the front-end uses; else a one-line error naming the floor."""
    torch = require("torch", "torch")
    floor = ".".join(map(str, MINIMUM))
    needs = f"graphaudit's PyTorch front-end needs torch>={floor}, but this is torch {torch.__version__}"
    if release(torch.__version__) < MINIMUM:
        raise MissingFrameworkError(f"{needs}: pip install 'graphaudit[torch]'")
    for module, attribute in APIS:
        try:
            found = hasattr(importlib.import_module(module), attribute)
        except ImportError:
            found = False
        if not found:
            raise MissingFrameworkError(f"{needs}, which lacks {module}.{attribute}: pip install 'graphaudit[torch]'")
    return torch
