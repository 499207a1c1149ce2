"""frontends/jax/audit.py with materialize=False: the separate jax.grad traces counted from the joint trace.

Each per-leaf ``jax.grad`` trace re-traces the forward: the primal values and the derivative
factors its backward reads, which are the forward ancestors of its gradient in the joint
trace. Counted with one copy of those per call (``retraced_forward``), every figure equals the
built audit's, exactly, on programs with loops (scan, unrolled and whole), ``jax.checkpoint``
and ``custom_vjp``, which are where counting and building could part.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from graphaudit.frontends import jax as gj  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def example(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.target()


def checkpointed():
    def loss(w1, w2, x):
        layer = jax.checkpoint(lambda h, w: jnp.tanh(h @ w))
        return jnp.sum(layer(layer(x, w1), w2) ** 2)

    rng = np.random.default_rng(0)
    return loss, (rng.normal(size=(3, 4)), rng.normal(size=(4, 2)), rng.normal(size=(5, 3))), (0, 1)


def custom_vjp():
    @jax.custom_vjp
    def soft(x):
        return jnp.log1p(jnp.exp(x))

    soft.defvjp(lambda x: (soft(x), x), lambda x, g: (g * jax.nn.sigmoid(x),))

    def loss(w1, w2, x):
        return jnp.sum(soft(soft(x @ w1) @ w2))

    rng = np.random.default_rng(1)
    return loss, (rng.normal(size=(3, 4)), rng.normal(size=(4, 2)), rng.normal(size=(5, 3))), (0, 1)


def scanned():
    def loss(w, u, xs):
        def step(h, x):
            h = jnp.tanh(h @ w + x @ u)
            return h, h

        _, hs = jax.lax.scan(step, jnp.zeros(4), xs)
        return jnp.sum(hs ** 2)

    rng = np.random.default_rng(2)
    return loss, (rng.normal(size=(4, 4)), rng.normal(size=(3, 4)), rng.normal(size=(6, 3))), (0, 1)


PROGRAMS = {  # without loops: counting is exact
    "seed_mlp": lambda: example("jax_seed_mlp"),
    "transformer": lambda: example("jax_transformer"),
    "checkpoint": checkpointed,
    "custom_vjp": custom_vjp,
}
LOOPS = {"lstm": lambda: example("jax_lstm"), "scan": scanned}


def figures(report) -> dict:
    """Everything a counted report has, as the built one has it."""
    data = report.to_dict(timings=False)
    framework = data["framework"]
    return {
        "separate": data["forms"]["separate"], "joint": data["forms"]["joint"],
        "merged": data["forms"]["separate_merged"], "duplicated": data["duplicated"],
        "joint_duplicates": data["joint_duplicates"], "merged_equals_joint": data["merged_equals_joint"],
        "retraced_forward": framework["retraced_forward"], "joint_equations": framework["jaxpr_equations"]["joint"],
    }


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_counted_equals_built_on_every_figure(name):
    fn, args, argnums = PROGRAMS[name]()
    built = gj.audit(fn, *args, argnums=argnums)
    counted = gj.audit(fn, *args, argnums=argnums, materialize=False)
    assert counted.materialized is False and built.materialized is True
    expected, got = figures(built), figures(counted)
    for form in ("separate", "merged"):  # a counted form has no graph and no build time
        for key in ("build_seconds", "merge_seconds"):
            expected[form].pop(key, None), got[form].pop(key, None)
    assert expected.pop("merged_equals_joint") is True  # what a counted form takes for granted, the built one shows
    assert got.pop("merged_equals_joint") is None
    assert got == expected
    assert counted.framework["traces"] == {"separate": 0, "joint": 1} and counted.framework["counted_exact"]
    assert "counted from it, not traced" in counted.to_text() and "estimates" not in counted.to_text()


@pytest.mark.parametrize("name", list(LOOPS))
def test_with_loops_the_counted_figures_are_said_to_be_estimates(name):
    """Where they part: a separate trace's scan is transposed for its own leaves only, a loop the joint trace
    does not hold. Unrolled, the counted figures are close, and the report says they are estimates."""
    fn, args, argnums = LOOPS[name]()
    built = gj.audit(fn, *args, argnums=argnums)
    counted = gj.audit(fn, *args, argnums=argnums, materialize=False)
    assert counted.framework["counted_exact"] is False
    assert "the separate form's figures above are estimates: it holds loops" in counted.to_text()
    # estimates of the same work: the joint form is the same, the duplicated FLOPs within a tenth
    assert counted.forms["joint"].cost == built.forms["joint"].cost
    assert abs(counted.duplicated["flops"] - built.duplicated["flops"]) <= built.duplicated["flops"] / 10


@pytest.mark.parametrize("name", list(LOOPS))
def test_loops_kept_whole_are_not_counted(name):
    """Kept whole, a separate trace's loop is one unit unlike the joint's (merge(separate) is not even
    merge(joint) when built): counting them would be wrong, so it is refused in one line."""
    fn, args, argnums = LOOPS[name]()
    assert gj.audit(fn, *args, argnums=argnums, loop_budget=0).merged_equals_joint is False
    with pytest.raises(ValueError, match=r"materialize=False counts loops unrolled only, .* over loop_budget=0"):
        gj.audit(fn, *args, argnums=argnums, loop_budget=0, materialize=False)


def test_checkpointed_recomputation_is_said_counted_with_the_duplicated_work():
    fn, args, argnums = checkpointed()
    built = gj.audit(fn, *args, argnums=argnums)
    counted = gj.audit(fn, *args, argnums=argnums, materialize=False)
    remat_built, remat_counted = built.framework["intentional_recomputation"], counted.framework[
        "intentional_recomputation"]
    assert remat_built["joint"]["nodes"] > 0 and remat_counted["joint"] == remat_built["joint"]
    assert remat_counted["separate"] is None and remat_counted["duplicated"] is None
    assert "its copies of recomputed nodes are counted with the duplicated work" in counted.to_text()


def test_what_only_a_built_form_has_is_refused_in_one_line():
    fn, args, argnums = example("jax_seed_mlp")
    for option in ("xla", "measure", "semantic"):
        with pytest.raises(ValueError, match=f"audit: {'compile_check' if option == 'xla' else option}=True needs "
                                             "the separate form built"):
            gj.audit(fn, *args, argnums=argnums, materialize=False, **{option: True})
    with pytest.raises(ValueError, match="group= needs the separate form built"):
        gj.audit(fn, *args, argnums=argnums, materialize=False, group="module")
