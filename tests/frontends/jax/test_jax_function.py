"""frontends/jax/function.py: the user's own ``jax.grad``/``jax.vjp``/``jax.jacrev`` calls as the report's grad calls.

Hand count for forces and stress of one energy ``E(x, w) = sum(tanh(x @ w))``, x (n, k),
w (k, m), taken by two ``jax.grad`` calls: the second call re-traces the whole forward pass
and the backward pass down to ``dE/d(x @ w)``; only its last product differs
(``x.T @ g`` against ``g @ w.T``, 2 n k m FLOPs each). So the duplicated work is one call's
graph less its last product, and the duplicated matmul FLOPs are the forward product's 2 n k m.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

from graphaudit.frontends import jax as gj  # noqa: E402
from graphaudit.core.graph import topological_order  # noqa: E402
from graphaudit.frontends.jax.function import SCOPE, UserCall, _Calls  # noqa: E402

PROGRAM = '''\
import jax
import jax.numpy as jnp
from jax import grad as bound_early


def energy(x, w):
    return jnp.sum(jnp.tanh(x @ w))  # line 7


def forces_and_stress(x, w):
    forces = -jax.grad(energy, 0)(x, w)  # line 11
    stress = jax.grad(energy, 1)(x, w)  # line 12
    return forces, stress


def one_call(x, w):
    return jax.grad(energy, argnums=(0, 1))(x, w)  # line 17


def in_a_loop(x, w):
    total = 0.0
    for scale in (1.0, 2.0):
        total = total + jax.grad(energy, 0)(scale * x, w)  # line 23
    return total


def pullback_and_rows(x, w):
    _, pullback = jax.vjp(energy, x, w)  # line 28
    rows = jax.jacrev(lambda x: jnp.tanh(x @ w))(x)  # line 29
    return pullback(1.0), rows


def second_order(x, w):
    return jax.grad(lambda w: jnp.sum(jax.grad(energy, 0)(x, w)))(w)  # line 34


def not_seen(x, w):
    return bound_early(energy)(x, w)  # line 38
'''
N, K, M = 3, 4, 5


@pytest.fixture
def x64():
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", before)


@pytest.fixture
def user(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "user_fs.py"
    path.write_text(PROGRAM)
    spec = importlib.util.spec_from_file_location("user_fs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def arrays():
    rng = np.random.default_rng(1)
    return jnp.asarray(rng.normal(size=(N, K))), jnp.asarray(rng.normal(size=(K, M)) * 0.5)


def calls_in(report):
    return [(c["kind"], c["where"]) for c in report.framework["user_calls"]]


def backward_calls(report):
    return {n.call.where for n in topological_order(report.forms["original"].outputs) if n.call is not None}


def test_forces_and_stress_two_calls_named_by_their_lines(user, x64):
    x, w = arrays()
    report = gj.audit_function(user.forces_and_stress, x, w)
    assert calls_in(report) == [("jax.grad", "user_fs.py:11"), ("jax.grad", "user_fs.py:12")]
    assert backward_calls(report) == {"user_fs.py:11", "user_fs.py:12"}
    data = report.to_dict()
    duplicated = data["duplicated"]
    assert duplicated["matmul_flops"] == 2 * N * K * M
    one = gj.audit_function(lambda x, w: jax.grad(user.energy, 0)(x, w), x, w).forms["original"].cost.flops
    assert duplicated["flops"] == one - 2 * N * K * M
    # the copies are the later call's: its backward pass, and its forward (traced inside it)
    assert set(duplicated["by_call"]) == {"forward", "jax.grad at user_fs.py:12"}
    assert {row["source"]["line"] for row in duplicated["top"]} == {7}
    assert "at user_fs.py:7" in report.to_text() and "jax.grad at user_fs.py:12" in report.to_text()
    # the merged program computes what JAX computes
    merged = report.merges["original"].outputs
    got = gj.evaluate(merged, {"x": np.asarray(x), "w": np.asarray(w)})
    want = user.forces_and_stress(x, w)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-12, atol=1e-12)


def test_two_calls_on_one_energy_get_the_joint_call_advice_with_both_lines(user, x64):
    x, w = arrays()
    data = gj.audit_function(user.forces_and_stress, x, w).to_dict()
    joint = [entry for entry in data["advice"] if "differentiate the same output" in entry["what"]]
    assert len(joint) == 1
    (entry,) = joint
    assert "user_fs.py:11, user_fs.py:12" in entry["what"] and "one `jax.grad`" in entry["rewrite"]
    assert [(w["file"], w["line"]) for w in entry["where"]] == [("user_fs.py", 11), ("user_fs.py", 12)]
    # the two calls repeat exactly what the report counts as duplicated, and one call does it once
    # (forces_and_stress also negates dE/dx, N K FLOPs, which one_call does not)
    one = gj.audit_function(user.one_call, x, w).forms["original"].cost.flops
    assert entry["saves_flops"] == data["duplicated"]["flops"] == data["forms"]["original"]["flops"] - (one + N * K)
    # calls on other arguments (a loop over scales) differentiate other outputs: no such advice
    looped = gj.audit_function(user.in_a_loop, x, w).to_dict()["advice"]
    assert not [entry for entry in looped if "differentiate the same output" in entry["what"]]


def test_one_joint_call_repeats_nothing(user, x64):
    report = gj.audit_function(user.one_call, *arrays())
    assert calls_in(report) == [("jax.grad", "user_fs.py:17")]
    assert report.to_dict()["duplicated"]["flops"] == 0


def test_a_call_in_a_python_loop_is_numbered_by_its_pass(user, x64):
    report = gj.audit_function(user.in_a_loop, *arrays())
    assert calls_in(report) == [("jax.grad", "user_fs.py:23"), ("jax.grad", "user_fs.py:23#2")]
    assert backward_calls(report) == {"user_fs.py:23", "user_fs.py:23#2"}


def test_vjp_pullbacks_and_jacrev_are_calls(user, x64):
    x, w = arrays()
    report = gj.audit_function(user.pullback_and_rows, x, w)
    assert calls_in(report) == [("jax.vjp", "user_fs.py:28"), ("jax.jacrev", "user_fs.py:29")]
    assert backward_calls(report) == {"user_fs.py:28", "user_fs.py:29"}
    got = gj.evaluate(report.forms["original"].outputs, {"x": np.asarray(x), "w": np.asarray(w)})
    want = jax.tree_util.tree_leaves(user.pullback_and_rows(x, w))
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-12, atol=1e-12)


def test_a_grad_of_a_grad_is_two_calls_on_one_line(user, x64):
    """The inner call's backward pass is traced inside the outer call's forward: it is the inner call's
    work; what the outer call's transpose adds is the outer call's."""
    x, w = arrays()
    report = gj.audit_function(user.second_order, x, w)
    assert calls_in(report) == [("jax.grad", "user_fs.py:34"), ("jax.grad", "user_fs.py:34#2")]
    assert backward_calls(report) == {"user_fs.py:34", "user_fs.py:34#2"}
    (got,) = gj.evaluate(report.forms["original"].outputs, {"x": np.asarray(x), "w": np.asarray(w)})
    np.testing.assert_allclose(got, np.asarray(user.second_order(x, w)), rtol=1e-12, atol=1e-12)


def test_a_name_bound_before_the_trace_is_said_unseen(user, x64):
    report = gj.audit_function(user.not_seen, *arrays())
    assert calls_in(report) == []
    assert backward_calls(report) == set()
    assert "no jax.grad" in report.to_text()


def failing(x):
    raise ZeroDivisionError("a failure inside the trace")


def test_the_wrapping_is_undone_and_the_scopes_parse(user):
    originals = (jax.grad, jax.vjp, jax.jacrev, jax.value_and_grad)
    with pytest.raises(ZeroDivisionError):
        gj.audit_function(lambda x: jax.grad(failing)(x), jnp.ones(2))
    assert (jax.grad, jax.vjp, jax.jacrev, jax.value_and_grad) == originals
    calls = _Calls()
    calls.calls = [UserCall("jax.grad", f"f.py:{i}", None) for i in range(3)]
    assert calls.call_of(f"{SCOPE}0/jvp()") is None
    assert calls.call_of(f"{SCOPE}1/vmap(transpose(jvp()))").where == "f.py:1"
    assert calls.call_of(f"{SCOPE}0/jvp({SCOPE}2)/transpose(jvp())").where == "f.py:2"
    assert calls.call_of(f"{SCOPE}0/transpose(jvp({SCOPE}2))/transpose(jvp())").where == "f.py:0"
    with pytest.raises(TypeError, match="fn must be a function"):
        gj.audit_function(3)


def example_line(marker):
    """The line of examples/jax_sciml.py that holds ``marker``."""
    from conftest import ROOT

    lines = (ROOT / "examples" / "jax_sciml.py").read_text().splitlines()
    (number,) = [i + 1 for i, text in enumerate(lines) if marker in text]
    return f"examples/jax_sciml.py:{number}"


@pytest.fixture
def sciml(monkeypatch):
    from conftest import ROOT

    monkeypatch.chdir(ROOT)
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    import jax_sciml

    return jax_sciml


def test_example_forces_and_stress_one_call_does_what_both_do_merged(sciml, x64):
    args = sciml.example_arguments()["forces_and_stress"]
    both = gj.audit_function(sciml.forces_and_stress, *args)
    one = gj.audit_function(sciml.forces_and_stress_joint, *args)
    assert calls_in(both) == [("jax.grad", example_line("the forces call")),
                              ("jax.grad", example_line("the stress call"))]
    assert one.to_dict()["duplicated"]["flops"] == 0
    # what the two calls repeat is exactly what one call over both arguments does not do
    assert both.forms["original_merged"].cost.flops == one.forms["original"].cost.flops
    assert both.to_dict()["duplicated"]["flops"] == (both.forms["original"].cost.flops
                                                     - one.forms["original"].cost.flops) > 0
    got = gj.evaluate(both.merges["original"].outputs, feed(["positions", "strain"], args))
    for a, b in zip(got, sciml.forces_and_stress(*args)):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-12, atol=1e-12)


def test_example_pinn_and_maml_calls(sciml, x64):
    arguments = sciml.example_arguments()
    heat = gj.audit_function(sciml.heat_residual, *arguments["heat_residual"])
    assert calls_in(heat) == [("jax.grad", example_line("the u_t call")), ("jax.grad", example_line("the u_xx call")),
                              ("jax.grad", example_line("u_x = lambda"))]
    (residual,) = gj.evaluate(heat.merges["original"].outputs, feed(["params", "xt"], arguments["heat_residual"]))
    np.testing.assert_allclose(residual, np.asarray(sciml.heat_residual(*arguments["heat_residual"])), rtol=1e-12)
    maml = gj.audit_function(sciml.maml_step, *arguments["maml_step"])
    assert calls_in(maml) == [("jax.grad", example_line("the meta-gradient's call")),
                              ("jax.grad", example_line("the inner step's call"))]



def feed(names, args):
    """Arrays by the names the jaxpr gives the arguments' leaves (``params[0][1]``)."""
    return {name + jax.tree_util.keystr(path): np.asarray(leaf)
            for name, arg in zip(names, args) for path, leaf in jax.tree_util.tree_flatten_with_path(arg)[0]}
