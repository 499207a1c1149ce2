"""What each picture view shows: colours, labels, and how backward nodes group into summary boxes.

:mod:`graphaudit.views.draw` lays the boxes out and writes DOT; the views decide what a box says.
The plain view (any graph) draws forward nodes grey and backward ones white. The *separate*
view fills duplicated backward nodes red; the *merged* view shades each node by how many
nodes of the separate form merged into it (``x3``). Forward nodes that several grad calls
traced again are forward all the same: grey, labelled with how often they were traced.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from graphaudit.core.describe import adjoint_target, distinct_labels, leaf_text, operand_text
from graphaudit.core.graph import GradCall, Node
from graphaudit.analysis.merge import MergeResult

LINE_LENGTH = 48  # longer label lines are cut: a node is a box, not a paragraph
FORWARD_FILL = "lightgrey"
CANONICAL_FILL = "white"
DUPLICATED_FILL = "#f26b63"
SEMANTIC_FILL = "#f5b041"  # found only by semantic merging: an equal value written differently
SEMANTIC_LEGEND = "semantic duplicate: an equal value written differently, or read only by one"
FEED_EDGE = "grey65"  # edges from forward nodes into the backward pass: context, not the story
# ColorBrewer "Reds", for 2, 3, ... copies; beyond 9 copies the scale stretches to the maximum.
SHADES = ("#fee0d2", "#fcbba1", "#fc9272", "#fb6a4a", "#ef3b2c", "#cb181d", "#a50f15", "#67000d")
DARK_SHADES = 3  # the last three shades need white text


class View:
    """How to draw one graph: the plain picture (forward grey, backward white, a cluster per call).

    Subclasses change the colours, the extra label line and how backward nodes are grouped
    when the graph must be summarised.
    """

    clusters = True
    summary_legend = "double border: a summary of many nodes"

    def __init__(self, order: list[Node], names: dict[Node, str], title: str):
        self.order = order
        self.names = names
        self.title = title
        self.calls: dict[GradCall, int] = {}  # each grad call's position, by first appearance
        for node in order:
            if node.call is not None and node.call not in self.calls:
                self.calls[node.call] = len(self.calls)
        # long labels (pytree paths) cut where they agree, so every call keeps a label of its own
        self.call_names = dict(zip(self.calls, distinct_labels([c.label for c in self.calls], LINE_LENGTH)))

    def source(self, node: Node) -> Node:
        """The node of the user's graph that ``node`` stands for (its labels and provenance)."""
        return node

    def label(self, node: Node) -> list[str]:
        """``matmul = d(sigmoid_1)`` over ``128x3000 @ 3000x5000``; a leaf by its name."""
        if node.is_leaf:
            return [leaf_text(node)]
        node = self.source(node)
        head = self.name(node)
        target = adjoint_target(node)
        if target is not None:
            head = f"{head} = d({self.name(target)})"
        return [head, operand_text(node)]

    def name(self, node: Node) -> str:
        """A leaf's name, a forward node's readable name (``sigmoid_2``), else its op."""
        return leaf_text(node) if node.is_leaf else self.names.get(node, node.op)

    def fill(self, node: Node) -> tuple[str, str]:
        """Fill and font colour of an operation."""
        return (FORWARD_FILL if node.call is None else CANONICAL_FILL), "black"

    def group(self, node: Node) -> tuple[Hashable, str, str]:
        """Key, title and kind (what the title names) of the summary box a backward node goes into."""
        call = node.call
        return self.calls[call], self.call_names[call], "grad call"

    def tally(self, nodes: list[Node]) -> tuple[str, dict[str, str]]:
        """A summary box's count line and its colours."""
        return count_text(nodes), {"fillcolor": base_fill(nodes)}

    def legend(self) -> list[tuple[str, str]]:
        return [(FORWARD_FILL, "forward"), (CANONICAL_FILL, "backward (built by a grad call)")]


class SeparateView(View):
    """Every node of the separate form: red where merging finds an equal, earlier backward node.

    A forward node that every grad call traced again (front-ends whose separate calls each
    trace the forward pass) stays grey, as forward, and says how many times it was traced.
    """

    summary_legend = "double border: a summary; its red share is the duplicated share"

    def __init__(self, order: list[Node], names: dict[Node, str], title: str, result: MergeResult, grads: bool,
                 semantic: frozenset[Node] = frozenset()):
        super().__init__(order, names, title)
        self.duplicates = result.duplicates
        self.semantic = semantic
        sizes = np.bincount(result.canonical, minlength=len(result.source)).tolist()
        canonical = result.canonical.tolist()
        self.traced = {node: sizes[canonical[p]] for p, node in enumerate(result.source)
                       if grads and node.call is None and not node.is_leaf and sizes[canonical[p]] > 1}

    def label(self, node: Node) -> list[str]:
        lines = super().label(node)
        return lines + [f"traced x{self.traced[node]}"] if node in self.traced else lines

    def fill(self, node: Node) -> tuple[str, str]:
        if node in self.duplicates and node not in self.traced:
            return DUPLICATED_FILL, "black"
        if node in self.semantic:
            return SEMANTIC_FILL, "black"
        return super().fill(node)

    def tally(self, nodes: list[Node]) -> tuple[str, dict[str, str]]:
        ops = operations(nodes)
        if self.traced and nodes[-1].call is None:  # the forward box of re-traced forward passes
            traced = sum(1 for n in nodes if n in self.traced)
            extra = f", {traced} traced by several calls (up to x{max(self.traced[n] for n in nodes if n in self.traced)})" \
                if traced else ""
            return f"{count_text(nodes)}{extra}", {"fillcolor": FORWARD_FILL}
        duplicated = sum(1 for n in nodes if n in self.duplicates and not n.is_leaf)
        if not duplicated:
            return f"{count_text(nodes)}, none duplicated", {"fillcolor": base_fill(nodes)}
        if duplicated == ops:
            return f"{count_text(nodes)}, all duplicated", {"fillcolor": DUPLICATED_FILL}
        # Stripes: the red share of the box is the duplicated share of its nodes.
        stripes = f"{DUPLICATED_FILL};{duplicated / ops:.2f}:{base_fill(nodes)}"
        return f"{count_text(nodes)}: {duplicated} duplicated, {ops - duplicated} canonical", {
            "fillcolor": stripes,
            "style": "striped",
        }

    def legend(self) -> list[tuple[str, str]]:
        return [
            (FORWARD_FILL, "forward (traced xN: once per grad call)" if self.traced else "forward"),
            (CANONICAL_FILL, "canonical: first of its kind"),
            (DUPLICATED_FILL, "duplicated: equal to an earlier node"),
        ] + ([(SEMANTIC_FILL, SEMANTIC_LEGEND)] if self.semantic else [])


class MergedView(View):
    """The merged graph: each node shaded and labelled by how many nodes merged into it."""

    clusters = False
    summary_legend = "double border: a summary, shaded by its largest xN"

    def __init__(self, order: list[Node], names: dict[Node, str], title: str, result: MergeResult, grads: bool,
                 semantic: frozenset[Node] = frozenset()):
        super().__init__(order, names, title)
        self.result = result
        self.semantic = semantic
        self.grads = grads  # forward copies are re-traces, not the duplicated work (an audited graph's are)
        self.originals: dict[Node, Node] = {}
        for original, merged in result.mapping.items():  # insertion order: the first copy wins
            self.originals.setdefault(merged, original)
        self.most = max((result.copies(n) for n in order if not n.is_leaf and not (grads and n.call is None)), default=1)

    def source(self, node: Node) -> Node:
        return self.originals.get(node, node)

    def label(self, node: Node) -> list[str]:
        lines = super().label(node)
        copies = self.result.copies(node)
        if not node.is_leaf and node.call is None and copies > 1 and self.grads:
            lines.append(f"traced x{copies}")
        elif not node.is_leaf and (node.call is not None or copies > 1):
            lines.append(f"x{copies}")
        return lines

    def fill(self, node: Node) -> tuple[str, str]:
        copies = self.result.copies(node)
        if node in self.semantic:
            return SEMANTIC_FILL, "black"
        if node.call is None and (copies == 1 or self.grads):  # re-traced forward: its "traced xN" says how often
            return FORWARD_FILL, "black"
        return shade(copies, self.most)

    def group(self, node: Node) -> tuple[Hashable, str, str]:
        origin = self.source(node).origin
        if origin is None:  # imported graphs carry no vjp rule: their boxes are grad calls
            return super().group(node)
        return origin, f"vjp of {self.name(origin)}", "vjp rule"

    def tally(self, nodes: list[Node]) -> tuple[str, dict[str, str]]:
        copies = [self.result.copies(n) for n in nodes if not n.is_leaf]
        low, high = min(copies, default=1), max(copies, default=1)
        span = f"x{low}" if low == high else f"x{low}-x{high}"
        forward = self.grads and nodes[-1].call is None
        fill, font = (base_fill(nodes), "black") if high == 1 or forward else shade(high, self.most)
        return f"{count_text(nodes)}, {span}", {"fillcolor": fill, "fontcolor": font}

    def legend(self) -> list[tuple[str, str]]:
        rows = [(FORWARD_FILL, "forward"), (CANONICAL_FILL, "x1: built once")]
        runs: dict[str, list[int]] = {}
        for copies in range(2, self.most + 1):
            runs.setdefault(shade(copies, self.most)[0], []).append(copies)
        for colour, run in runs.items():
            low, high = run[0], run[-1]
            text = f"x{low}: built {low} times" if low == high else f"x{low}-x{high}: built {low} to {high} times"
            rows.append((colour, text))
        if self.semantic:
            rows.append((SEMANTIC_FILL, SEMANTIC_LEGEND))
        return rows


def shade(copies: int, most: int) -> tuple[str, str]:
    """Fill and font colour for ``copies``: white for one, darker reds for more."""
    if copies <= 1:
        return CANONICAL_FILL, "black"
    if most <= len(SHADES) + 1:
        index = copies - 2
    else:
        index = (copies - 2) * (len(SHADES) - 1) // (most - 2)
    return SHADES[index], ("white" if index >= len(SHADES) - DARK_SHADES else "black")


def base_fill(nodes: list[Node]) -> str:
    """Grey for a box of forward nodes, white for backward ones (a box never mixes them)."""
    return FORWARD_FILL if nodes[-1].call is None else CANONICAL_FILL


def count_text(nodes: Sequence[Node]) -> str:
    """``1 node``, ``12 nodes``: operations only, as in the report."""
    ops = operations(nodes)
    return "1 node" if ops == 1 else f"{ops} nodes"


def operations(nodes: Sequence[Node]) -> int:
    return sum(1 for n in nodes if not n.is_leaf)
