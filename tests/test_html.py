"""The interactive HTML report: its data (no browser needed), then the page in a real headless Chromium."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import graphaudit as ga
from graphaudit import models
from graphaudit.views.groups import group_tree, scope_of
from graphaudit.views.html import report_page
from graphaudit.views.overlay import view_data

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def seed_report():
    model = models.seed_mlp(batch=4, widths=(12, 10, 8, 6, 4))
    return ga.audit(model.loss, model.params)


def payload(page: str) -> dict:
    text = re.search(r'<script type="application/json" id="graphaudit-data">(.*?)</script>', page, re.S).group(1)
    return json.loads(text)


# --- the hierarchy ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name, scope", [
    ("layers.3.fc.weight", ("layers", "3", "fc")),
    ("params['dense_1']['w']", ("params", "dense_1")),
    ("w12", ("layer 12",)),
    ("x", ()),
])
def test_a_parameter_name_gives_its_scope(name, scope):
    assert scope_of(name) == scope


def test_repeated_layers_fold_into_a_block():
    model = models.deep_chain(depth=6, width=4, batch=2)
    tree = view_data(ga.audit(model.loss, model.params), "merged").tree
    forward = tree.children[0]
    assert forward.label == "forward"
    block = forward.children[0]
    assert block.kind == "block" and "block x 6" in block.label
    assert [c.label for c in block.children] == [f"layer {k}" for k in range(1, 7)]


def test_every_node_sits_in_exactly_one_group(seed_report):
    data = view_data(seed_report, "separate")
    members = []

    def walk(group):
        members.extend(group.members)
        for child in group.children:
            walk(child)

    walk(data.tree)
    assert sorted(members) == list(range(len(data.nodes)))
    assert group_tree([], lambda node: ("forward", "forward")).children == []


# --- the page's data ----------------------------------------------------------------------------------


def test_copies_and_wasted_flops_add_up_to_the_report(seed_report):
    data = payload(report_page(seed_report))["views"]
    separate, merged = data["separate"]["node"], data["merged"]["node"]
    assert sum(separate["dup"]) == seed_report.duplicated["nodes"]
    assert sum(separate["wasted"]) == seed_report.duplicated["flops"]
    assert sum(merged["wasted"]) == seed_report.duplicated["flops"]
    ops = [c for c, kind in zip(merged["copies"], merged["kind"]) if kind != 2]
    assert sum(ops) == seed_report.forms["separate"].cost.nodes


def test_the_page_is_self_contained(seed_report):
    page = report_page(seed_report)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "dagre" in page and "graphaudit-data" in page
    assert seed_report.verdict() in page.replace("&#x27;", "'")


@pytest.mark.subprocess
def test_same_report_same_bytes_in_a_fresh_process(tmp_path):
    script = (
        "import sys, graphaudit as ga\n"
        "from graphaudit import models\n"
        "m = models.residual_mlp(depth=3, width=4, batch=2)\n"
        "sys.stdout.write(ga.views.html.report_page(ga.audit(m.loss, m.params)))\n"
    )
    pages = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        done = subprocess.run([sys.executable, "-c", "import graphaudit.views.html\n" + script], env=env,
                              capture_output=True, text=True, check=True)
        pages.append(re.sub(r"\s*\d+(\.\d+)? (us|ms|s)\b", " T", done.stdout))  # build times differ run to run
    assert pages[0] == pages[1]


def test_each_node_carries_the_line_that_built_it(seed_report):
    from graphaudit.core.source import source_of

    page = payload(report_page(seed_report))["views"]
    separate = view_data(seed_report, "separate")
    for position, node in enumerate(separate.nodes):  # a backward node shows its forward node's line
        k, found = page["separate"]["node"]["source"][position], source_of(node, seed_report.sources)
        assert (k, found) == (-1, None) if found is None else page["separate"]["sources"][k] == list(found), node
    for view in ("separate", "merged"):
        named = [page[view]["sources"][k] for k in page[view]["node"]["source"] if k >= 0]
        assert named and all(file.endswith("models.py") for file, _, _ in named)  # the seed's own lines
        assert any(code == "h = h @ w + b" for _, _, code in named)


MLP = """\
import graphaudit as ga


def build(batch):
    x = ga.placeholder("x", (batch, 6), "float64")
    w1 = ga.parameter("w1", (6, 5), "float64")
    w2 = ga.parameter("w2", (5, 4), "float64")
    h = ga.sigmoid(x @ w1)  # H
    return ga.mean(ga.sigmoid(h @ w2)), [w1, w2]  # OUT
"""


def grouped_by_line(view: dict) -> dict[int, str]:
    """Each node's group label under the source grouping, with its group's parent kind checked."""
    grouping = view["groupings"]["source"]
    labels, parents, kinds = (grouping["group"][key] for key in ("label", "parent", "kind"))
    result = {}
    for node, group in enumerate(grouping["nodeGroup"]):
        if view["node"]["kind"][node] != 2:  # operations sit in a line's group, inside their call's
            assert kinds[group] == 5 and kinds[parents[group]] in (1, 2) and parents[parents[group]] == 0
        result[node] = labels[group]
    return result


def test_the_page_groups_by_source_line_on_request(tmp_path, monkeypatch):
    import importlib.util

    monkeypatch.chdir(tmp_path)
    (tmp_path / "user_mlp.py").write_text(MLP)
    spec = importlib.util.spec_from_file_location("user_mlp", tmp_path / "user_mlp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    report = ga.audit(*module.build(3))
    page = report_page(report, group_by="source")
    data = payload(page)
    assert data["groupBy"] == "source" and payload(report_page(report))["groupBy"] == "scope"
    lines = {marker: f"user_mlp.py:{number}" for number, text in enumerate(MLP.splitlines(), start=1)
             for marker in ("H", "OUT") if text.endswith(f"# {marker}")}
    for view in ("separate", "merged"):
        nodes = view_data(report, view)
        labels = grouped_by_line(data["views"][view])
        for position, source in enumerate(nodes.sources):
            if not nodes.nodes[position].is_leaf:
                assert labels[position] == (source.location if source is not None else "no source line")
        operations = {labels[p] for p, node in enumerate(nodes.nodes) if not node.is_leaf}
        assert operations == set(lines.values())  # every operation comes from one of the two lines
    # the gradient of w_k flows back from the loss through the layers down to k: those lines, no others
    tree = view_data(report, "separate").source_tree
    by_call = {top.label: {group.label for group in top.children} for top in tree.children}
    assert by_call["grad(cost, [w2])"] == {lines["OUT"]}
    assert by_call["grad(cost, [w1])"] == {lines["OUT"], lines["H"]}
    source = data["views"]["separate"]["groupings"]["source"]["group"]
    assert source["code"][source["label"].index(lines["H"])] == "h = ga.sigmoid(x @ w1)  # H"
    assert page == report_page(report, group_by="source")  # the same bytes again
    with pytest.raises(ValueError, match="group_by must be one of scope, source"):
        report_page(report, group_by="file")


def test_a_counted_report_has_no_page():
    model = models.deep_chain(depth=3, width=4, batch=2)
    report = ga.audit(model.loss, model.params, materialize=False)
    with pytest.raises(ValueError, match="counted"):
        report.to_html("unused.html")


# --- in a real browser ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser_page(seed_report, tmp_path_factory):
    pytest.importorskip("playwright.sync_api", reason="the browser tests need Playwright: pip install 'graphaudit[browser]'")
    from graphaudit.views.browser import BrowserMissingError, open_report

    path = tmp_path_factory.mktemp("html") / "report.html"
    seed_report.to_html(str(path))
    try:
        with open_report(path) as opened:
            yield opened
    except BrowserMissingError as exc:
        pytest.skip(f"no headless Chromium: {exc}")


@pytest.mark.browser
def test_the_page_loads_offline_without_errors(browser_page):
    assert browser_page.errors == []
    assert [url for url in browser_page.requests if not url.startswith("file://")] == []
    assert len(browser_page.requests) == 1


@pytest.mark.browser
def test_the_top_level_shows_the_calls_collapsed(browser_page, seed_report):
    page = browser_page.page
    labels = page.locator("[data-group] text.head").all_text_contents()
    assert "forward" in labels
    assert {f"grad(cost, [{w}])" for w in seed_report.wrt} <= set(labels)
    assert page.locator("[data-node]").count() == 0
    assert page.locator("[data-group]", has_text="forward").first.locator("rect").get_attribute("fill") == "#d9d9d9"


@pytest.mark.browser
def test_opening_a_group_and_clicking_a_node_shows_its_copies(browser_page, seed_report):
    page = browser_page.page
    # dispatch_event: the same click event, wherever the group lies after the layout grew
    page.locator("[data-group]", has_text="grad(cost, [w1])").first.dispatch_event("click")
    page.locator("[data-group]", has_text="layer 4").first.dispatch_event("click")
    node = page.locator("[data-node]").first
    index = int(node.get_attribute("data-node"))
    node.dispatch_event("click")
    expected = view_data(seed_report, "separate").copies[index]
    assert page.locator("#copies").inner_text() == str(expected)
    assert page.locator("#calls li").count() >= 1


@pytest.mark.browser
def test_search_finds_a_node_by_name(browser_page):
    page = browser_page.page
    page.fill("#search", "sigmoid_2")
    page.press("#search", "Enter")
    assert page.locator("#details h3").inner_text() == "sigmoid_2"
    assert page.locator("[data-selected]").count() == 1


@pytest.mark.browser
def test_the_node_panel_shows_its_source_line(browser_page, seed_report):
    page = browser_page.page
    page.fill("#search", "sigmoid_2")
    page.press("#search", "Enter")
    source = next(s for node, s in seed_report.sources.items() if seed_report.names.get(node) == "sigmoid_2")
    assert page.locator("#source").inner_text().splitlines() == [source.location, source.code]


@pytest.mark.browser
def test_group_by_source_line_redraws_the_calls_groups_by_line(browser_page, seed_report):
    page = browser_page.page
    page.select_option("#group-by", "source")
    page.locator("[data-group]", has_text="grad(cost, [w1])").first.dispatch_event("click")
    labels = set(page.locator("[data-group] text.head").all_text_contents())
    lines = {s.location for node, s in seed_report.sources.items()}
    assert labels & lines  # the call's groups are the lines of models.py
    assert not [label for label in labels if label.startswith("layer ")]  # not the scopes
    page.select_option("#group-by", "scope")
    assert "layer 4" in set(page.locator("[data-group] text.head").all_text_contents())


def test_the_cli_writes_the_page_and_the_model_explorer_files(tmp_path, capsys):
    from graphaudit.cli import main

    page, folder = tmp_path / "chain.html", tmp_path / "me"
    assert main(["audit", "deep_chain", "--depth", "3", "--width", "4", "--html", str(page),
                 "--model-explorer", str(folder), "--quiet", "--group-by", "source"]) == 0
    assert payload(page.read_text())["views"]["separate"]["node"]["name"]
    assert payload(page.read_text())["groupBy"] == "source"
    assert (folder / "graphs.json").is_file() and (folder / "copies.json").is_file()
    assert main(["audit", "deep_chain", "--depth", "3", "--count", "--html", str(page)]) == 2
    assert "--count builds no separate graph" in capsys.readouterr().err
