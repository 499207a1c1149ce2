"""What to change, and what it saves: the advice a report ends with (``to_dict()["advice"]``).

A report knows what is repeated and at which of the user's lines; the words for the change
belong to the framework the program is written in. A front-end's section says them
(:meth:`graphaudit.analysis.report.Section.advice_words`, an :class:`AdviceWords`), including
when the framework's compiler already recovers the work; a report without one speaks
graphaudit's own API. For the separate-vs-joint question the saving is exact: one joint
call builds the merged form, so it saves precisely the duplicated nodes and FLOPs.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from graphaudit.analysis.call_advice import joint_call_advice
from graphaudit.core.describe import si


class AdviceWords(NamedTuple):
    """The change in the framework's words: ``rewrite`` instead of ``instead_of``; ``recovered_by``
    says what already removes the repeated work (its compiler, and when), or None; ``runs_merged``
    what runs a program with each repeated subexpression computed once (for any graph, not only
    separate grad calls)."""

    rewrite: str  # "one `torch.autograd.grad(loss, params)`"
    instead_of: str = "one call per parameter"
    recovered_by: str | None = None  # "XLA's CSE, when the separate grads sit in one `jit`"
    runs_merged: str = "`ga.merge` gives the graph that does"


def own_words(wrt: list[str]) -> AdviceWords:
    """graphaudit's own API: one ``ga.grad(cost, [w1, b1, ...])``."""
    shown = wrt if len(wrt) <= 8 else [*wrt[:6], "...", wrt[-1]]
    return AdviceWords(f"one `ga.grad(cost, [{', '.join(shown)}])`")


# A front-end whose section has no words of its own: the change, in no framework's words.
PLAIN_WORDS = AdviceWords("one joint grad call over all the parameters")


def words_of(report: Any) -> AdviceWords:
    """The words of ``report``'s framework section, else graphaudit's own (a report on graphaudit's graphs)."""
    if report.framework is None:
        return own_words(list(report.wrt))
    return report.framework.advice_words() or PLAIN_WORDS


def advice(report: Any) -> list[dict]:
    """The report's advice entries (:class:`graphaudit.analysis.schema.Advice`); none when nothing is repeated."""
    duplicated = report.duplicated
    if not duplicated["nodes"]:
        return []
    where = list({(row["source"]["file"], row["source"]["line"]): dict(row["source"])
                  for row in duplicated["top"] if row["source"] is not None}.values())
    flops = si(duplicated["flops"], "FLOP")
    if report.kind == "grad":
        words = words_of(report)
        what = (f"{len(report.wrt)} separate grad calls repeat {duplicated['nodes']} nodes and {flops} of work "
                "that one joint call does once")
        rewrite = f"{words.rewrite} instead of {words.instead_of}"
        if words.recovered_by:
            rewrite = f"nothing to change where it runs compiled ({words.recovered_by}); uncompiled, {rewrite}"
    else:
        what = f"{duplicated['nodes']} nodes and {flops} of work are computed more than once"
        runs_merged = (report.framework.advice_words() or PLAIN_WORDS).runs_merged if report.framework is not None \
            else PLAIN_WORDS.runs_merged
        rewrite = f"compute each repeated subexpression once and reuse it ({runs_merged})"
    return joint_call_advice(report) + [{"what": what, "rewrite": rewrite, "saves_flops": duplicated["flops"],
                                         "saves_nodes": duplicated["nodes"], "where": where}]


def share_base(report: Any) -> int:
    """What shares of repeated work are shares of: the joint backward's FLOPs (a graph report's: all its FLOPs)."""
    return report.forms["joint"].cost.backward_flops if report.kind == "grad" else report.forms["original"].cost.flops


def backward_share(report: Any) -> float | None:
    """The duplicated FLOPs as a share of :func:`share_base`; None when that is 0."""
    base = share_base(report)
    return report.duplicated["flops"] / base if base else None


def percent(share: float) -> str:
    """``17%``, ``0.34%``."""
    return f"{100 * share:.0f}%" if share >= 0.1 else f"{100 * share:.2g}%"


def share_text(share: float, whole: str) -> str:
    """``17% of the backward``; past the whole (separate calls that re-trace the forward pass too), ``6.37x the backward``."""
    return f"{percent(share)} of {whole}" if share <= 1 else f"{share:.3g}x {whole}"


def advice_lines(report: Any, mark: str = "", shown: int = 5) -> list[str]:
    """The report's closing lines: what to change, what it saves, and where (``file:line: code``)."""
    entries = advice(report)
    if not entries:
        return ["", "advice: nothing to change: no work is repeated"]
    lines = [""]
    base = share_base(report)
    whole = "the backward" if report.kind == "grad" else "the graph"
    for entry in entries:
        share = entry["saves_flops"] / base if base else None
        saved = f"{mark}{si(entry['saves_flops'], 'FLOP')}" + (f" ({share_text(share, whole)})" if share else "")
        lines.append(f"advice: {entry['rewrite']} saves {saved} and {entry['saves_nodes']} nodes")
        lines += [f"  at {s['file']}:{s['line']}: {s['code']}" for s in entry["where"][:shown]]
        if len(entry["where"]) > shown:
            lines.append(f"  ... and {len(entry['where']) - shown} more lines")
    return lines
