"""JAX's figures in a report: the traces, the re-traced forward pass, what ``jax.checkpoint`` recomputes,
how loops were treated, and what XLA keeps."""

from __future__ import annotations

from graphaudit.analysis.advice import AdviceWords
from graphaudit.core.describe import si
from graphaudit.frontends.common import FrameworkSection
from graphaudit.frontends.common.loops import loop_lines


MANY_LEAVES = 20  # from here on, the report suggests counting: most of the time is the separate traces


class JaxSection(FrameworkSection):
    """JAX's figures in a report (``report.framework``; ``to_dict()["framework"]``).

    ``name`` and ``version``; ``traces`` and ``jaxpr_equations`` (primitive equations, per
    form); ``import_seconds``; ``retraced_forward`` (the forward work that the separate
    traces repeat: ``nodes``, ``flops``, ``matmul_flops``); ``intentional_recomputation``
    (what ``jax.checkpoint`` recomputes, per form, and the copies of it that separate calls
    duplicate); ``compile_check`` (only with ``xla=True``: ``backend``, ``title`` and
    ``rows``, each ``graph`` and per form the optimised HLO's instructions as ``nodes``, its
    dot and convolution ops as ``dots``, XLA's ``flops`` and the compile ``seconds``: first
    as compiled, then with XLA's CSE pass disabled); ``loops``: whether scans were ``unrolled``,
    the ``unrolled_nodes`` that unrolling makes against the ``budget``, and ``rows``, one per
    distinct loop: ``primitive``, ``length`` (steps, or branches), ``treatment``, ``body``
    digest, and how often the ``separate`` and ``joint`` forms met it; ``groups`` (only with
    ``group=``): the parameters of each separate grad call; ``counted`` (only with ``materialize=False``:
    the separate traces counted from the joint one, not traced) and ``counted_exact`` (False when the
    program has loops: then the counted figures are estimates).
    """

    def lines(self) -> list[str]:
        """How loops were costed (right under the figures they affect), XLA's table, then in one
        line whether XLA got the duplicated products back."""
        lines = loop_lines(self.get("loops"), "scans") + super().lines()
        check = self.get("compile_check")
        if check is not None:
            compiled, without_cse = check["rows"]
            sep, joint = compiled["separate"]["dots"], compiled["joint"]["dots"]
            verdict = ("XLA recovers the duplicated products" if sep <= joint
                       else f"XLA keeps {sep - joint} duplicated products")
            lines.append(
                f"after XLA ({check['backend']}): separate {sep} dots vs joint {joint} dots: {verdict} "
                f"(without its CSE pass: separate {without_cse['separate']['dots']} dots)"
            )
        return lines

    def advice_words(self) -> AdviceWords:
        """``jax.grad`` over every argument (or the whole pytree); XLA recovers the work only inside one
        ``jit``, which the compile check (``xla=True``) shows when it ran."""
        check = self.get("compile_check")
        recovered = None
        if check is not None:
            compiled = check["rows"][0]
            if compiled["separate"]["dots"] <= compiled["joint"]["dots"]:
                recovered = "XLA's CSE, when the separate grads sit in one `jit`"
        return AdviceWords("one `jax.grad(loss, argnums=(0, 1, ...))` (or `jax.grad` of the whole parameter pytree)",
                           recovered_by=recovered)

    def closing_lines(self) -> list[str]:
        """The traces, the re-traced forward pass, and what ``jax.checkpoint`` recomputes."""
        eqs, traces = self["jaxpr_equations"], self["traces"]
        if "counted" in self:  # materialize=False: only the joint grad was traced
            lines = ["", f"JAX {self['version']}: one joint jax.grad trace ({eqs['joint']} equations); the "
                         f"{self['counted']} separate jax.grad traces counted from it, not traced (each re-traces "
                         "the forward its gradient reads)"]
            if not self["counted_exact"]:
                lines.append("the separate form's figures above are estimates: it holds loops, and a separate trace's "
                             "loop (its body transposed for its own leaves) is not in the joint trace; audit with "
                             "materialize=True for exact figures")
        else:
            lines = [
                "",
                f"JAX {self['version']}: {traces['separate']} jax.grad traces, "
                f"{'one per group of parameters' if self.get('groups') else 'one per parameter'} "
                f"({eqs['separate']} primitive equations in all), vs one joint trace ({eqs['joint']} equations)",
            ]
            if traces["separate"] >= MANY_LEAVES:
                lines.append(f"(with {traces['separate']} traces, audit(..., materialize=False), CLI --count, counts "
                             "the separate traces from the joint trace: the same figures, one trace)")
        forward = self["retraced_forward"]
        lines.append(
            f"re-traced forward pass (every separate trace repeats it): {forward['nodes']} duplicated nodes, "
            f"{si(forward['flops'], 'FLOP')} ({si(forward['matmul_flops'], 'FLOP')} in matmuls)"
        )
        remat = self["intentional_recomputation"]
        if remat["separate"] is None and remat["joint"]["nodes"]:
            lines.append(
                "intentional recomputation (jax.checkpoint), kept apart from the duplicated work: joint "
                f"{remat['joint']['nodes']} nodes {si(remat['joint']['flops'], 'FLOP')}; the separate form was "
                "counted, so its copies of recomputed nodes are counted with the duplicated work, not apart "
                "(audit with materialize=True to see them apart)"
            )
        elif remat["joint"]["nodes"] or (remat["separate"] or {}).get("nodes"):
            lines.append(
                "intentional recomputation (jax.checkpoint), kept apart from the duplicated work: "
                f"joint {remat['joint']['nodes']} nodes {si(remat['joint']['flops'], 'FLOP')}, separate merged "
                f"{remat['separate_merged']['nodes']} nodes; copies that separate calls rebuilt: "
                f"{remat['duplicated']['nodes']} nodes {si(remat['duplicated']['flops'], 'FLOP')}"
            )
        return lines
