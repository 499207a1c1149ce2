"""JAX reports name the user's lines (each equation's traceback) and group backward work by forward node.

The program is a chain of ``layers`` tanh layers, each ``tanh(h @ w)`` built by one helper
called in a Python loop, so every layer's equations share one line and one call site; the
rows must still tell the layers apart. Hand derivation: the rule of layer ``j``'s matmul
and of its tanh runs in the separate calls for ``w_1 .. w_j`` (the calls for the layers
above never reach it), so its row says ``j`` calls; the loss's square runs in every call.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

from graphaudit.core.graph import topological_order  # noqa: E402
from graphaudit.frontends import jax as gj  # noqa: E402
from graphaudit.frontends.jax.sources import EquationSources  # noqa: E402

PROGRAM = '''\
import jax
import jax.numpy as jnp


def layer(h, w):
    return jnp.tanh(h @ w)  # line 6


def loss(ws, x):
    h = x
    for w in ws:
        h = layer(h, w)  # line 12
    return jnp.sum(h ** 2)  # line 13


def scanned(w, b, xs):
    def step(c, x):
        return jnp.tanh(c * w + x * b), None  # line 18
    c, _ = jax.lax.scan(step, jnp.zeros(3), xs)  # line 19
    return jnp.sum(c * c)  # line 20
'''
LAYER, CALL, LOSS = 6, 12, 13


def load(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "user_jax.py"
    path.write_text(PROGRAM)
    spec = importlib.util.spec_from_file_location("user_jax", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def chain_report(module, layers=4):
    rng = np.random.default_rng(0)
    ws = [jnp.asarray(rng.normal(size=(5, 5)) * 0.3, dtype=jnp.float32) for _ in range(layers)]
    return gj.audit(module.loss, ws, jnp.asarray(rng.normal(size=(3, 5)), dtype=jnp.float32))


def test_top_rows_name_the_users_lines(tmp_path, monkeypatch):
    report = chain_report(load(tmp_path, monkeypatch))
    data = report.to_dict()
    top = data["duplicated"]["top"]
    assert all(row["source"] is not None for row in top)
    assert {row["source"]["file"] for row in top} == {"user_jax.py"}
    assert {row["source"]["line"] for row in top} <= {LAYER, LOSS}
    # the costliest copies are the re-traced forward matmuls, on the helper's line
    assert top[0]["op"] == "jax.dot_general" and top[0]["source"]["line"] == LAYER
    assert top[0]["source"]["code"] == "return jnp.tanh(h @ w)  # line 6"
    text = report.to_text()
    assert "at user_jax.py:6" in text and "at user_jax.py:13" in text


def test_by_forward_node_tells_the_layers_apart(tmp_path, monkeypatch):
    layers = 4
    data = chain_report(load(tmp_path, monkeypatch), layers).to_dict()
    rows = data["duplicated"]["by_forward_node"]
    # forward names count per op in topological order: dot_general_j and tanh_j are layer j's
    for j in range(2, layers + 1):
        assert rows[f"jax.tanh_{j}"]["calls"] == j
        assert rows[f"jax.tanh_{j}"]["source"]["line"] == LAYER
    assert rows[f"jax.dot_general_{layers}"]["calls"] == layers
    for name, row in rows.items():
        if name.startswith("jax.dot_general_"):
            assert row["calls"] == int(name.rsplit("_", 1)[1])
    # the loss's square: its vjp (by 2 * h) runs in every call
    (square,) = [row for row in rows.values() if row["source"]["line"] == LOSS and row["flops"]]
    assert square["calls"] == layers
    # every duplicated node with an origin is counted in exactly one row
    assert sum(row["nodes"] for row in rows.values()) <= data["duplicated"]["nodes"]
    (advice,) = data["advice"]
    assert advice["saves_flops"] == data["duplicated"]["flops"] > 0
    assert {(w["file"], w["line"]) for w in advice["where"]} == {("user_jax.py", LAYER), ("user_jax.py", LOSS)}


def test_every_trace_points_at_the_first_imports_forward_node(tmp_path, monkeypatch):
    module = load(tmp_path, monkeypatch)
    ws = [jnp.eye(3) * 0.5, jnp.eye(3) * 0.25]
    x = jnp.ones((2, 3))
    sources = EquationSources()
    first = gj.from_jaxpr(jax.make_jaxpr(jax.grad(module.loss))(ws, x), sources=sources)
    second = gj.from_jaxpr(jax.make_jaxpr(jax.grad(module.loss))(ws, x), sources=sources)
    origins = [{n.origin for n in topological_order(out) if n.origin is not None} for out in (first, second)]
    assert origins[0] == origins[1] and origins[0]  # the second trace's backward nodes name the first's
    assert all(sources.sources[n].line in (LAYER, LOSS) for n in topological_order(second) if not n.is_leaf
               and n in sources.sources)


def test_equations_graphaudit_traces_have_no_line(tmp_path, monkeypatch):
    """An unrolled scan's slicing and stacking are traced by graphaudit: no line, never this test's own."""
    module = load(tmp_path, monkeypatch)
    report = gj.audit(module.scanned, jnp.full(3, 0.5), jnp.full(3, 0.25), jnp.ones((4, 3)), argnums=(0, 1))
    lines = {(s.file, s.line) for s in report.sources.values()}
    assert lines <= {("user_jax.py", 18), ("user_jax.py", 19), ("user_jax.py", 20)}
    assert ("user_jax.py", 18) in lines  # the body's nodes, unrolled, keep the body's line
    top = report.to_dict()["duplicated"]["top"]
    assert top and all(row["source"]["line"] in (18, 19, 20) for row in top if row["source"])
