"""The user's tensors stay as they were while graphaudit traces their program on fake tensors.

A program can write to real tensors it reads from elsewhere: a BatchNorm's buffers when the
params dict names only parameters, so that ``functional_call`` leaves the module's own
buffers in place. Fake tensors and ``make_fx`` run an op whose tensor inputs are all real
for real (``num_batches_tracked.add_(1)``), so every trace would count one more batch in the
user's model. :func:`untouched` gives a dispatch mode that, entered innermost, sees each write
first (:func:`.aten.written_values`: ``native_batch_norm``'s hidden writes of its running
statistics too): it keeps a copy of each real tensor an op is about to write, unless an op
made it within (a temporary of the user's function run eagerly), and puts the values back
when the trace ends. :func:`~.remedy.deduplicate` also runs the user's function itself under
it, to check the merged graph against it without leaving its writes behind.
"""

from __future__ import annotations

from typing import Any

from graphaudit.frontends import require
import graphaudit.frontends.torch.aten as aten


def untouched() -> Any:
    """A dispatch mode (enter it inside the fake mode and ``make_fx``'s program) that restores the real
    tensors the ops it sees write to."""
    torch = require("torch", "torch")
    python_dispatch = require("torch.utils._python_dispatch", "torch")
    fake_tensor = require("torch._subclasses.fake_tensor", "torch")
    batch_norm = torch.ops.aten.native_batch_norm.default  # writes its running statistics unannounced

    class Untouched(python_dispatch.TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.saved: dict[int, tuple[Any, Any]] = {}  # id -> (the user's tensor, its values before)
            self.made: set[int] = set()  # the storages of real tensors made within: not the user's

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func._schema.is_mutable or func is batch_norm:  # it runs for every op traced: cheap first
                for value in aten.written_values(func, args, kwargs):
                    if _real(value) and id(value) not in self.saved and _storage(value) not in self.made:
                        with python_dispatch._disable_current_modes(), torch.no_grad():
                            self.saved[id(value)] = (value, value.clone())
            result = func(*args, **kwargs)
            for value in result if isinstance(result, (tuple, list)) else (result,):
                if _real(value):
                    self.made.add(_storage(value))
            return result

        def __exit__(self, *exc: Any) -> Any:
            result = super().__exit__(*exc)
            with python_dispatch._disable_current_modes(), torch.no_grad():
                for tensor, before in self.saved.values():
                    tensor.copy_(before)
            return result

    def _real(value: Any) -> bool:
        return isinstance(value, torch.Tensor) and not isinstance(value, fake_tensor.FakeTensor) \
            and not value.is_meta and type(value).__torch_dispatch__ is torch.Tensor.__torch_dispatch__

    def _storage(tensor: Any) -> int:
        return tensor.untyped_storage().data_ptr()

    return Untouched()
