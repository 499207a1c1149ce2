"""The user's line of every reported row: programs written to temporary files with known line numbers."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
import traceback

import pytest

import graphaudit as ga
from graphaudit.analysis.schema import ReportData, mismatches
from graphaudit.core.graph import building, new_node
from graphaudit.core.source import Source, forward_sources, is_library_file, source_of, user_frame

# Three dense layers, one statement a line; the markers name the lines the tests expect.
MLP = textwrap.dedent('''\
    import graphaudit as ga


    def build(batch):
        x = ga.placeholder("x", (batch, 6), "float64")
        y = ga.placeholder("y", (batch,), "int64")
        w1 = ga.parameter("w1", (6, 5), "float64")
        w2 = ga.parameter("w2", (5, 4), "float64")
        w3 = ga.parameter("w3", (4, 3), "float64")
        h1 = ga.sigmoid(x @ w1)  # H1
        h2 = ga.sigmoid(h1 @ w2)  # H2
        logits = h2 @ w3  # LOGITS
        loss = -ga.mean(ga.log_softmax(logits)[ga.arange(batch), y])  # LOSS
        return loss, [w1, w2, w3]
''')


def line_of(text: str, marker: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if line.endswith(f"# {marker}"))


def load(path, text: str):
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def mlp(tmp_path):
    return load(tmp_path / "user_mlp.py", MLP), tmp_path / "user_mlp.py"


def test_the_top_rows_name_the_lines_that_built_their_forward_nodes(mlp):
    module, path = mlp
    batch = 4
    loss, params = module.build(batch)
    report = ga.audit(loss, params)
    top = report.duplicated["top"]
    # Calls for w1 and w2 both need d(h2) = d(logits) @ w3.T, a (batch x 3) @ (3 x 4) product the
    # call for w3 does not: two copies, one wasted, 2*batch*3*4 FLOPs. It comes from the rule of `h2 @ w3`.
    assert top[0]["expression"] == "matmul(d(matmul_3), transpose(w3))"
    assert top[0]["wasted_flops"] == 2 * batch * 3 * 4
    assert top[0]["source"] == {"file": str(path), "line": line_of(MLP, "LOGITS"), "code": "logits = h2 @ w3  # LOGITS"}
    expected_lines = {line_of(MLP, m) for m in ("H1", "H2", "LOGITS", "LOSS")}
    assert {row["source"]["line"] for row in top} <= expected_lines
    for name, row in report.duplicated["by_forward_node"].items():
        marker = {"matmul_3": "LOGITS", "sigmoid_2": "H2", "matmul_2": "H2", "sigmoid_1": "H1"}.get(name, "LOSS")
        assert row["source"]["line"] == line_of(MLP, marker), name
    assert mismatches(report.to_dict(), ReportData) == []
    text = report.to_text()
    assert f"x2 copies, {ga.core.describe.si(2 * batch * 3 * 4, 'FLOP')} wasted  at {path}:{line_of(MLP, 'LOGITS')}" in text


def test_a_counted_report_names_the_same_lines_as_a_built_one(mlp):
    module, _ = mlp
    loss, params = module.build(4)
    built, counted = ga.audit(loss, params), ga.audit(loss, params, materialize=False)
    assert counted.to_dict()["duplicated"]["top"] == built.to_dict()["duplicated"]["top"]
    assert counted.to_dict()["duplicated"]["by_forward_node"] == built.to_dict()["duplicated"]["by_forward_node"]


def test_paths_under_the_working_directory_are_relative(mlp, monkeypatch):
    module, path = mlp
    loss, params = module.build(2)
    monkeypatch.chdir(path.parent)
    assert ga.audit(loss, params).duplicated["top"][0]["source"]["file"] == "user_mlp.py"


def test_a_graph_report_puts_a_repeat_at_its_own_line(tmp_path):
    text = textwrap.dedent('''\
        import graphaudit as ga


        def build():
            x = ga.placeholder("x", (3, 4), "float64")
            w = ga.parameter("w", (4, 2), "float64")
            a = ga.exp(x @ w)  # FIRST
            b = ga.exp(x @ w)  # REPEAT
            return a + b
    ''')
    report = ga.audit_graph(load(tmp_path / "twice.py", text).build())
    # the top row shows the first copy, as the user built it; the repeated nodes are on the second line
    assert report.duplicated["top"][0]["source"]["line"] == line_of(text, "FIRST")
    from graphaudit.analysis.guard import work_by_line

    (work,) = work_by_line(report)
    assert (work.source.line, work.nodes, work.flops) == (line_of(text, "REPEAT"), 2, 2 * 3 * 4 * 2 + 3 * 2)


def test_given_sources_reach_the_rows_and_bad_ones_are_refused():
    x = ga.placeholder("x", (3, 4), "float64")
    w = ga.parameter("w", (4, 2), "float64")
    h = x @ w
    loss = ga.sum(ga.tanh(h) * ga.tanh(h))
    separate, joint = [ga.grad(loss, w)], ga.grad(loss, [w])
    given = {h: Source("net.py", 7, "h = x @ w")}
    report = ga.compare_forms(separate, joint, wrt=["w"], sources=given)
    assert dict(report.sources) == given and given == {h: Source("net.py", 7, "h = x @ w")}  # kept, not mutated
    with pytest.raises(TypeError, match=r"sources\[.*\] is a tuple .*not a graphaudit Source"):
        ga.compare_forms(separate, joint, wrt=["w"], sources={h: ("net.py", 7)})
    with pytest.raises(TypeError, match="sources: a key is a str"):
        ga.audit(loss, [w], sources={"h": Source("net.py", 7, "")})


def test_one_line_that_makes_many_nodes_is_one_run_of_the_side_table(tmp_path):
    text = textwrap.dedent('''\
        import graphaudit as ga


        def chain(x, n):
            for _ in range(n):
                x = ga.exp(x) * 2.0  # LOOP
            return x
    ''')
    module = load(tmp_path / "loop.py", text)
    x = ga.placeholder("x", (3,), "float64")
    runs = len(forward_sources.starts)
    out = module.chain(x, 50)  # 150 nodes: a constant, an exp and a mul per turn, made one after the other
    assert len(forward_sources.starts) == runs + 1
    assert forward_sources.location_of(out.id) == (str(tmp_path / "loop.py"), line_of(text, "LOOP"))
    assert forward_sources.location_of(x.id)[1] == sys._getframe().f_lineno - 5  # the line of x above


def test_only_forward_nodes_built_with_the_current_provenance_are_recorded():
    x = ga.parameter("x", (3,), "float64")
    y = ga.tanh(x)
    (g,) = ga.grad(ga.sum(y), [x])
    copy = y.with_inputs([x])  # merging makes copies like this one: it keeps y's provenance
    with building():
        imported = new_node("tanh", (x,), (), (3,), x.dtype, provenance=(None, None))
    assert forward_sources.location_of(y.id) is not None
    for node in (g, copy, imported):
        assert forward_sources.location_of(node.id) is None
    assert g.origin is y and source_of(g, {y: Source("a.py", 1, "")}) == Source("a.py", 1, "")  # the origin's line


# --- user_frame ----------------------------------------------------------------------------------------


def test_user_frame_reads_traceback_text_and_skips_the_libraries(tmp_path):
    user = tmp_path / "model.py"
    user.write_text("import torch\n\nh = layer(x)\n")
    site = "/venv/lib/python3.11/site-packages"
    text = (f'  File "{tmp_path}/train.py", line 12, in <module>\n    loss = step()\n'
            f'  File "{user}", line 3, in forward\n    h = layer(x)\n'
            f'  File "{site}/torch/nn/modules/module.py", line 1751, in _call_impl\n    return forward_call(*args)\n'
            f'  File "{site}/graphaudit/core/grad.py", line 40, in grad\n')
    assert user_frame(text) == Source(str(user), 3, "h = layer(x)")
    assert user_frame(text.split("\n", 2)[2]) == Source(str(user), 3, "h = layer(x)")
    assert user_frame(f'  File "{site}/jax/_src/core.py", line 1, in bind\n') is None


def test_user_frame_reads_frames_either_way_round(tmp_path):
    inner, outer = str(tmp_path / "inner.py"), str(tmp_path / "outer.py")
    site = "/venv/lib/python3.11/site-packages"
    outermost_first = [(outer, 5), (inner, 9), (f"{site}/flax/linen/module.py", 700), (f"{site}/equinox/_module.py", 3)]
    assert user_frame(outermost_first).line == 9
    assert user_frame(list(reversed(outermost_first)), innermost_first=True).line == 9
    summaries = traceback.extract_stack()
    assert user_frame(summaries) == Source.at(__file__, summaries[-1].lineno)  # this test's own line
    here = sys._getframe()
    assert user_frame(here).line == here.f_lineno  # the frame walk starts at the frame given
    with pytest.raises(TypeError, match="cannot read a file and line from a int"):
        user_frame([3])


def test_the_libraries_and_the_standard_library_are_not_the_users():
    import contextlib
    import functools

    for module in (contextlib, functools, ga.core.grad, ga.analysis.audit):
        assert is_library_file(module.__file__), module
    assert not is_library_file(ga.models.__file__)  # the example networks are written as a user writes a model
    assert not is_library_file(__file__) and not is_library_file("<stdin>")
    assert is_library_file("<frozen runpy>")
