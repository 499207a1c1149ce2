"""PyTorch's figures in a report: the trace, and what FX CSE and inductor keep."""

from __future__ import annotations

from graphaudit.core.describe import seconds_text
from graphaudit.frontends.common import FrameworkSection
from graphaudit.analysis.advice import AdviceWords


MANY_PARAMETERS = 20  # from here on, the report suggests counting: most of the trace is the separate calls


class TorchSection(FrameworkSection):
    """PyTorch's figures in a report (``report.framework``; ``to_dict()["framework"]``).

    ``name``, ``version`` and ``parameters``; ``fx_nodes`` (per form, the traced FX graph's
    aten calls as ``nodes`` and its products as ``matmuls``; both forms count the one
    forward); ``trace_seconds`` (``make_fx`` of the whole program) and ``import_seconds``;
    ``compile_check`` (only with ``compile_check=True``: the rows of :mod:`.compile_check`
    and its ``verdict``); ``no_gradient`` (only when the loss does not reach some parameters: their
    names; they are read as constants). The eager run times (``measure=True``) are the report's ``measured``.
    """

    def lines(self) -> list[str]:
        lines = super().lines()
        if self.get("no_gradient"):
            lines += ["", f"parameters the loss does not reach (no gradient; read as constants, not audited): "
                          f"{', '.join(self['no_gradient'])}"]
        check = self.get("compile_check")
        if check is not None and check.get("verdict"):
            lines.append(check["verdict"])
        return lines

    def advice_words(self) -> AdviceWords:
        """Eager PyTorch runs every call's backward as asked, and torch.compile keeps the duplicates
        (or refuses double backward): nothing recovers the work but the joint call, or, for any
        program of grad calls, graphaudit's :func:`~.remedy.deduplicate`."""
        return AdviceWords("one `torch.autograd.grad(loss, list(model.parameters()))`",
                           runs_merged="`graphaudit.frontends.torch.deduplicate(fn, *args)` runs the graph that does, "
                           "eagerly or compiled, double backward included")

    def closing_lines(self) -> list[str]:
        """The trace: what was traced, what it held, and how long it took."""
        fx = self["fx_nodes"]
        took = f"{seconds_text(self['trace_seconds'])}; imported in {seconds_text(self['import_seconds'])}"
        if "original" in fx:  # audit_function: the user's function as it is
            lines = ["", f"PyTorch {self['version']}: one make_fx trace of the function ({took}); "
                         f"FX aten calls {fx['original']['nodes']}, products {fx['original']['matmuls']}"]
        elif "separate" not in fx:  # counted: the separate calls were never traced
            lines = ["", f"PyTorch {self['version']}: one make_fx trace of the forward and the joint call ({took}); "
                         f"the {self['parameters']} autograd.grad calls counted from it, not traced; FX aten calls "
                         f"joint {fx['joint']['nodes']}, products {fx['joint']['matmuls']}"]
        else:
            lines = [
                "",
                f"PyTorch {self['version']}: one make_fx trace of the forward, {self['parameters']} autograd.grad "
                f"calls and one joint call ({took}); FX aten calls separate {fx['separate']['nodes']} vs joint "
                f"{fx['joint']['nodes']}, products {fx['separate']['matmuls']} vs {fx['joint']['matmuls']}",
            ]
            if self["parameters"] >= MANY_PARAMETERS:
                lines.append(f"(with {self['parameters']} parameters, audit(..., materialize=False), CLI --count, "
                             "counts the separate calls from the joint call's trace: the same figures, one trace)")
        return lines
