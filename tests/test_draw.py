"""Pictures: the DOT text of both report views, summaries of big graphs, escaping, rendering.

The DOT checks read the text itself (node statements, attributes, clusters), so they run
without Graphviz; only the checks that lay a picture out with ``dot`` skip when it is absent.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

import graphaudit as ga
from graphaudit.views import draw
from graphaudit.errors import GraphauditError
from graphaudit.core.graph import topological_order

ROOT = Path(__file__).resolve().parent.parent
HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="the Graphviz `dot` program is not installed")
HOSTILE = 'a"b{c}<d>\n'

NODE = re.compile(r"^\t+(n\d+) \[(.*)\]$", re.M)
EDGE = re.compile(r"^\t+(n\d+) -> (n\d+)(?: \[(.*)\])?$", re.M)
ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^ \]]+)')
CLUSTER = re.compile(r"^\tsubgraph (cluster_\w+) \{\n\t\t(.*)$", re.M)


# --- reading DOT text --------------------------------------------------------------------------


def unquote(value: str) -> str:
    """A DOT value as dot reads it: ``\\n`` is a line break, ``\\x`` is ``x``."""
    if not value.startswith('"'):
        return value
    out, chars = [], iter(value[1:-1])
    for char in chars:
        if char == "\\":
            char = next(chars)
            out.append("\n" if char == "n" else char)
        else:
            out.append(char)
    return "".join(out)


def attrs(text: str) -> dict[str, str]:
    return {key: unquote(value) for key, value in ATTR.findall(text)}


def dot_nodes(source: str) -> dict[str, dict[str, str]]:
    """Every drawn node (not the legend) of a DOT text, by id, with its attributes."""
    return {name: attrs(text) for name, text in NODE.findall(source)}


def dot_edges(source: str) -> list[tuple[str, str]]:
    return [(a, b) for a, b, extra in EDGE.findall(source) if "invis" not in extra]


def graph_label(source: str) -> str:
    match = re.search(r"^\tlabel=(.*)$", source, re.M)
    assert match, "the graph has no label"
    return unquote(match.group(1))


def lines(node: dict[str, str]) -> list[str]:
    return node["label"].split("\n")


def svg_of(source: str) -> str:
    """Lay ``source`` out with dot (fails on any DOT syntax error) and return the SVG."""
    result = subprocess.run(["dot", "-Tsvg"], input=source.encode(), capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    assert b"Warning" not in result.stderr and b"Error" not in result.stderr, result.stderr.decode()
    return result.stdout.decode()


def svg_texts(svg: str) -> list[str]:
    root = ElementTree.fromstring(svg)
    return [element.text for element in root.iter() if element.tag.endswith("text") and element.text]


def luminance(colour: str) -> float:
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


# --- the seed network --------------------------------------------------------------------------

WIDTHS = (16384, 5000, 3000, 512, 40)
BATCH = 128


@pytest.fixture(scope="module")
def seed():
    model = ga.models.seed_mlp(batch=BATCH, widths=WIDTHS)
    return model, ga.audit(model.loss, model.params)


def test_separate_view_draws_every_node_with_duplicates_red(seed):
    model, report = seed
    source = draw.report_dot(report, "separate")
    nodes = dot_nodes(source)
    order = topological_order(report.forms["separate"].outputs)
    assert len(nodes) == len(order)  # nothing summarised: every node of the separate form is drawn

    duplicates = report.merges["separate"].duplicates
    red = {name for name, node in nodes.items() if node.get("fillcolor") == draw.DUPLICATED_FILL}
    assert len(red) == report.duplicated["nodes"] > 0
    # ids are positions in the topological order: the red ones are exactly the duplicated operations
    assert red == {f"n{i}" for i, n in enumerate(order) if n in duplicates and not n.is_leaf}
    grey = {name for name, node in nodes.items() if node.get("fillcolor") == draw.FORWARD_FILL}
    assert grey == {f"n{i}" for i, n in enumerate(order) if n.call is None and not n.is_leaf}
    white = {name for name, node in nodes.items() if node.get("fillcolor") == draw.CANONICAL_FILL}
    assert len(white) == report.forms["separate"].cost.backward_nodes - len(red)

    clusters = dict(CLUSTER.findall(source))
    calls = {name: attrs(text)["label"] for name, text in clusters.items() if name.startswith("cluster_call_")}
    assert len(calls) == len(model.params) == 8
    assert calls == {f"cluster_call_{i}": f"grad(cost, [{p.name}])" for i, p in enumerate(model.params)}
    assert "summarised" not in graph_label(source)
    assert "matmul_2\n128x5000 @ 5000x3000" in [node["label"] for node in nodes.values()]


def test_merged_view_labels_and_shades_multiplicity(seed):
    _, report = seed
    result = report.merges["separate"]
    source = draw.report_dot(report, "merged")
    nodes = dot_nodes(source)
    order = topological_order(result.outputs)
    assert len(nodes) == len(order)
    for position, node in enumerate(order):
        if node.call is not None and not node.is_leaf:
            assert lines(nodes[f"n{position}"])[-1] == f"x{result.copies(node)}"

    # The input-gradient product of layer j, d(add_j) @ w_j.T, is rebuilt by every call
    # for a parameter below layer j: w1, b1, ..., w_{j-1}, b_{j-1}.
    shades = []
    for j in range(2, len(WIDTHS)):
        shapes = f"{BATCH}x{WIDTHS[j]} @ {WIDTHS[j]}x{WIDTHS[j - 1]}"
        found = [node for node in nodes.values() if lines(node)[0].startswith("matmul") and lines(node)[1] == shapes]
        assert len(found) == 1, shapes
        assert lines(found[0])[-1] == f"x{2 * (j - 1)}"
        shades.append(luminance(found[0]["fillcolor"]))
    assert shades == sorted(shades, reverse=True) and len(set(shades)) == len(shades)  # darker for more copies
    assert "x2: built 2 times" in source and "legend" in source


@needs_dot
def test_seed_views_render_with_dot(seed):
    _, report = seed
    for view in draw.VIEWS:
        texts = svg_texts(svg_of(draw.report_dot(report, view)))
        assert "matmul_1" in texts and "128x16384 @ 16384x5000" in texts


def test_views_for_audit_graph_use_the_original_form():
    x = ga.placeholder("x", (4, 3))
    a = ga.sigmoid(x) * 2.0
    b = ga.sigmoid(x) * 2.0  # the same work again: merging removes it
    report = ga.audit_graph([a + b])
    source = draw.report_dot(report, "separate")
    red = [n for n in dot_nodes(source).values() if n.get("fillcolor") == draw.DUPLICATED_FILL]
    assert len(red) == report.duplicated["nodes"] == 2
    merged = dot_nodes(draw.report_dot(report, "merged"))
    assert sorted(lines(n)[-1] for n in merged.values() if re.fullmatch(r"x\d+", lines(n)[-1])) == ["x2", "x2"]


def test_to_dot_plain_graph():
    x = ga.placeholder("x", (4, 3))
    w = ga.parameter("w", (3, 2))
    loss = ga.sum(ga.tanh(x @ w))
    gradient = ga.grad(loss, w)
    nodes = dot_nodes(draw.to_dot([gradient]))
    order = topological_order([gradient])
    assert len(nodes) == len(order)
    for position, node in enumerate(order):
        drawn = nodes[f"n{position}"]
        if node.is_leaf:
            assert drawn["shape"] in ("ellipse", "plaintext") and drawn["fontsize"] == "9"
        else:
            assert drawn["fillcolor"] == (draw.FORWARD_FILL if node.call is None else draw.CANONICAL_FILL)
    assert nodes[f"n{order.index(w)}"]["label"] == "w"


def test_bad_arguments(seed):
    _, report = seed
    with pytest.raises(ValueError, match="unknown view 'joint'"):
        draw.report_dot(report, "joint")
    with pytest.raises(ValueError, match="max_nodes must be at least 2"):
        draw.report_dot(report, "merged", max_nodes=1)
    with pytest.raises(TypeError, match=r"to_dot: outputs\[1\]"):
        draw.to_dot([report.forms["separate"].outputs[0], "not a node"])


# --- hostile names -----------------------------------------------------------------------------


def hostile_report():
    x = ga.placeholder("x\\", (3, 4))
    names = [HOSTILE, "<b>bold</b>", '\\"\\\\"\\', "tab\tend\x00", "x" * 200]
    w = ga.parameter(names[0], (4, 2))
    b = ga.parameter(names[1], (2,))
    c = ga.parameter(names[2], (2,))
    d = ga.parameter(names[3], (2,))
    e = ga.parameter(names[4], (2,))
    loss = ga.sum(ga.sigmoid(x @ w + b) * c * d * e)
    return ga.audit(loss, [w, b, c, d, e])


def test_hostile_names_survive_in_dot():
    report = hostile_report()
    for view in draw.VIEWS:
        source = draw.report_dot(report, view)
        assert 'label="<b>bold</b>"' in source  # quoted: dot must not read it as an HTML-like label
        labels = [node["label"] for node in dot_nodes(source).values()]
        assert 'a"b{c}<d>' in labels  # the quote kept, the newline a line break, nothing unbalanced
        assert "<b>bold</b>" in labels  # text, not an HTML-like label
        assert '\\"\\\\"\\' in labels  # backslashes literal, not escapes
        assert "tab?end?" in labels  # control characters shown, not passed to dot
        half = (draw.LINE_LENGTH - 1) // 2
        assert "x" * half + "…" + "x" * (draw.LINE_LENGTH - 1 - half) in labels  # long names cut in the middle


@needs_dot
def test_hostile_names_render_with_dot():
    report = hostile_report()
    for view in draw.VIEWS:
        texts = svg_texts(svg_of(draw.report_dot(report, view)))
        assert 'a"b{c}<d>' in texts
        assert "<b>bold</b>" in texts
        assert '\\"\\\\"\\' in texts
    cluster_labels = svg_texts(svg_of(draw.report_dot(report, "separate")))
    assert f"grad(cost, [{HOSTILE.strip()}" in cluster_labels


# --- big graphs --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def deep():
    model = ga.models.deep_chain(depth=60)
    return model, ga.audit(model.loss, model.params)


def test_big_separate_view_is_one_box_per_call(deep):
    model, report = deep
    order = topological_order(report.forms["separate"].outputs)
    assert len(order) > 5 * draw.MAX_NODES
    source = draw.report_dot(report, "separate")
    nodes = dot_nodes(source)
    assert len(nodes) <= draw.MAX_NODES
    label = graph_label(source)
    assert f"{len(order)} nodes > max_nodes={draw.MAX_NODES}" in label
    assert "forward part" in label and "one box per grad call" in label

    calls = [lines(n) for n in nodes.values() if n["label"].startswith("grad(cost, [")]
    assert [call[0] for call in calls] == [f"grad(cost, [{p.name}])" for p in model.params]
    counts = [re.match(r"(\d+) nodes(?:: (\d+) duplicated|, (none|all) duplicated)", call[1]) for call in calls]
    total = sum(int(m.group(1)) for m in counts)
    duplicated = sum(int(m.group(2)) if m.group(2) else (int(m.group(1)) if m.group(3) == "all" else 0) for m in counts)
    assert total == report.forms["separate"].cost.backward_nodes
    assert duplicated == report.duplicated["nodes"]
    forward = [n for n in nodes.values() if n["label"].startswith("forward\n")]
    assert len(forward) == 1 and forward[0]["fillcolor"] == draw.FORWARD_FILL


def test_big_merged_view_is_bounded_and_says_what_was_collapsed(deep):
    _, report = deep
    for max_nodes in (draw.MAX_NODES, 40, 2):
        source = draw.report_dot(report, "merged", max_nodes=max_nodes)
        assert len(dot_nodes(source)) <= max_nodes
        assert "summarised" in graph_label(source) and "collapsed" in graph_label(source)
        assert len(dot_edges(source)) <= draw.EDGES_PER_NODE * max_nodes
    source = draw.report_dot(report, "separate", max_nodes=20)
    assert len(dot_nodes(source)) <= 20 and "packed into 19" in graph_label(source)


@needs_dot
def test_big_views_render_with_dot(deep):
    _, report = deep
    for view in draw.VIEWS:
        svg_of(draw.report_dot(report, view))


def test_huge_forward_graph_gives_bounded_dot():
    h = ga.placeholder("x", (2,))
    for _ in range(20_000):
        h = ga.tanh(h)
    source = draw.to_dot(h, max_nodes=50)
    nodes = dot_nodes(source)
    assert len(nodes) == 50
    assert "runs of nodes in topological order collapsed into 50 boxes" in graph_label(source)
    assert sum(int(re.search(r"(\d+) nodes?$", n["label"]).group(1)) for n in nodes.values()) == 20_000


# --- determinism -------------------------------------------------------------------------------

DETERMINISM_SCRIPT = """
import sys, graphaudit as ga
from graphaudit.views import draw
if sys.argv[1] == "shift":  # other graphs first: different Node.id and GradCall.index values
    other = ga.models.mlp([3, 5, 2], 4)
    ga.audit(other.loss, other.params)
model = ga.models.seed_mlp()
report = ga.audit(model.loss, model.params)
sys.stdout.write(draw.report_dot(report, "separate") + draw.report_dot(report, "merged"))
"""


@pytest.mark.subprocess
def test_dot_text_is_the_same_in_every_process():
    outputs = []
    for seed, mode in (("1", "plain"), ("12345", "shift")):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        run = subprocess.run(
            [sys.executable, "-c", DETERMINISM_SCRIPT, mode], env=env, capture_output=True, text=True, timeout=120
        )
        assert run.returncode == 0, run.stderr
        outputs.append(run.stdout)
    assert outputs[0] == outputs[1]
    assert "cluster_call_7" in outputs[0]


# --- files -------------------------------------------------------------------------------------


@needs_dot
def test_render_writes_png_and_svg(seed, tmp_path):
    _, report = seed
    png = draw.render_report(report, tmp_path / "seed.png", "separate")
    assert png == str(tmp_path / "seed.png")
    assert Path(png).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    svg = report.render(str(tmp_path / "seed.svg"))
    assert "<svg" in Path(svg).read_text() and "x8" in svg_texts(Path(svg).read_text())


def test_render_writes_dot_text(seed, tmp_path):
    _, report = seed
    for suffix in (".dot", ".gv"):
        path = draw.render_report(report, tmp_path / f"seed{suffix}", "merged", max_nodes=20)
        assert Path(path).read_text(encoding="utf-8") == report.to_dot("merged", max_nodes=20)


def test_render_errors_name_the_suffix_and_the_folder(tmp_path):
    with pytest.raises(ValueError, match=r"unknown suffix '\.jpg'"):
        draw.render("digraph {}", tmp_path / "picture.jpg")
    missing = tmp_path / "no_such_folder"
    with pytest.raises(FileNotFoundError, match="no_such_folder"):
        draw.render("digraph {}", missing / "picture.png")
    assert not missing.exists()


def test_missing_graphviz_is_a_clear_error(seed, tmp_path, monkeypatch):
    _, report = seed
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot here
    with pytest.raises(draw.GraphvizMissingError, match="install Graphviz: apt-get install graphviz") as caught:
        report.render(str(tmp_path / "seed.png"))
    assert isinstance(caught.value, GraphauditError) and isinstance(caught.value, RuntimeError)
    assert not (tmp_path / "seed.png").exists()
    assert Path(report.render(str(tmp_path / "seed.dot"))).read_text().startswith("digraph")
    page = report._repr_html_()
    assert "<svg" not in page and "install Graphviz" in page and "<td>separate merged</td>" in page


def test_html_view(seed):
    _, report = seed
    page = draw.report_html(report)
    assert page.count("<tr>") == 1 + len(report.forms)
    assert f"<td>{report.forms['separate'].cost.nodes}</td>" in page
    assert ("<svg" in page) == HAS_DOT
