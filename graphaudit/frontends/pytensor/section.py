"""PyTensor's figures in a report: build times, Scans, and what its rewrites keep."""

from __future__ import annotations

from graphaudit.analysis.advice import AdviceWords
from graphaudit.frontends.common import FrameworkSection
from graphaudit.frontends.common.loops import loop_lines


class PyTensorSection(FrameworkSection):
    """PyTensor's part of a report: build times, the compile check, and MergeOptimizer's merges.

    ``compile_check`` adds ``merge_optimizer_merges`` (per form, the Apply nodes PyTensor's
    ``MergeOptimizer`` merged away) and ``merges_graphaudit_missed`` (how many of those
    graphaudit's merge did not make; 0 is the cross-check passing). ``loops`` (as the JAX
    front-end's): ``unrolled`` (whether Scans were), ``unrolled_nodes`` against the ``budget``, and
    ``rows``, one per distinct Scan: ``length`` (steps), ``treatment``, ``body`` (digest),
    ``body_nodes``, ``body_flops``, and how often the ``separate`` and ``joint`` forms hold it.
    """

    def lines(self) -> list[str]:
        lines = super().lines() + loop_lines(self.get("loops"), "Scans")
        if "compile_check" in self:
            check = self["compile_check"]
            missed, merges = check["merges_graphaudit_missed"], check["merge_optimizer_merges"]
            lines.append("  MergeOptimizer's merges that graphaudit's merge does not make: "
                         + ", ".join(f"{form} {missed[form]} of {merges[form]}" for form in missed))
        return lines


    def advice_words(self) -> AdviceWords:
        """``pytensor.grad`` over the list; a compiled function's MergeOptimizer recovers the work when the
        compile check (``compile_check=True``) shows the separate form compiling to the joint's size."""
        recovered = None
        for row in self.get("compile_check", {}).get("rows", []):
            if row["graph"].startswith("PyTensor compile") and row["separate"]["nodes"] <= row["joint"]["nodes"]:
                recovered = "PyTensor's MergeOptimizer, when the separate grads sit in one `pytensor.function`"
        return AdviceWords("one `pytensor.grad(cost, wrt=[...])`", recovered_by=recovered)
