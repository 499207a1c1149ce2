"""frontends/jax/audit.py: ``jax.grad`` per parameter audited against the joint call.

Hand counts are formulas over the widths and the batch: the separate form's duplicated
matmul FLOPs are the input-gradient products of the layers above each parameter, plus one
forward pass per separate trace beyond the first, since every ``jax.grad`` trace
re-traces the forward pass over the same (shared) inputs.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import ROOT

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

import graphaudit as ga  # noqa: E402
from graphaudit.cli.options import analysis_options  # noqa: E402
from graphaudit.cli.targets import audit_target  # noqa: E402
from graphaudit.cli.usage import UsageError  # noqa: E402
from graphaudit.errors import ShapeError  # noqa: E402
from graphaudit.frontends import MissingFrameworkError  # noqa: E402
from graphaudit.frontends import jax as gj  # noqa: E402
from graphaudit.frontends.common import TargetError  # noqa: E402
from graphaudit.analysis.advice import advice_lines  # noqa: E402
from graphaudit.analysis.report import Report  # noqa: E402
from jax_functions import sorted_loss  # noqa: E402

jax_target = importlib.import_module("graphaudit.frontends.jax.target")

sys.path.insert(0, str(ROOT / "examples"))
import jax_seed_mlp  # noqa: E402
import jax_transformer  # noqa: E402

SEED_WIDTHS = jax_seed_mlp.SEED_WIDTHS
SMALL_WIDTHS = (7, 6, 5, 4, 3)


# --- hand counts ------------------------------------------------------------------------------


def layer_products(widths, batch):
    """``2 * n * d(j-1) * d(j)`` for each layer j = 1..L: one forward product, one weight gradient,
    and (for j >= 2) one input gradient each cost this much."""
    return {j: 2 * batch * widths[j - 1] * widths[j] for j in range(1, len(widths))}


def hand_duplicated_matmul_flops(widths, batch):
    """Input gradient of layer j rebuilt 2(j-1)-1 times, plus the forward once per extra trace."""
    products = layer_products(widths, batch)
    calls = 2 * len(products)
    backward = sum(products[j] * (2 * (j - 1) - 1) for j in products if j >= 2)
    return backward + (calls - 1) * sum(products.values())


def hand_joint_matmul_flops(widths, batch):
    """Forward products, weight gradients, and input gradients of layers 2..L."""
    products = layer_products(widths, batch)
    return 2 * sum(products.values()) + sum(products[j] for j in products if j >= 2)


def dot_nodes(outputs):
    return sum(1 for n in ga.topological_order(outputs) if n.op == "jax.dot_general")


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_report():
    """The seed MLP at its own size (batch 128), traced from shapes only: nothing is allocated."""
    fn, args, argnums = jax_seed_mlp.build(batch=128)
    return gj.audit(fn, *args, argnums=argnums)


@pytest.fixture(scope="module")
def small_seed():
    fn, args, argnums = jax_seed_mlp.build(batch=5, widths=SMALL_WIDTHS, concrete=True)
    return fn, args, argnums, gj.audit(fn, *args, argnums=argnums, xla=True)


# --- the seed's question in JAX ---------------------------------------------------------------


def test_seed_duplicated_matmul_flops_are_the_hand_count_plus_the_retraced_forward(seed_report):
    report, widths, batch = seed_report, SEED_WIDTHS, 128
    forward = sum(layer_products(widths, batch).values())
    calls = 2 * (len(widths) - 1)
    assert report.wrt == ["w1", "b1", "w2", "b2", "w3", "b3", "w4", "b4"]
    assert report.duplicated["matmul_flops"] == hand_duplicated_matmul_flops(widths, batch)
    assert report.duplicated["by_call"]["forward"]["matmul_flops"] == (calls - 1) * forward
    assert report.framework["retraced_forward"]["matmul_flops"] == (calls - 1) * forward
    assert report.framework["traces"] == {"separate": calls, "joint": 1}
    top = report.duplicated["top"][0]  # the costliest copy: layer 1's forward product, once per trace
    assert top["shapes"] == f"{batch}x{widths[0]} @ {widths[0]}x{widths[1]}" and top["copies"] == calls
    assert top["wasted_flops"] == (calls - 1) * layer_products(widths, batch)[1]


def test_seed_dot_counts_follow_the_layers(seed_report):
    layers = len(SEED_WIDTHS) - 1
    # each separate call: the forward's L products; for w_j, L-j input gradients and dW_j; for b_j, L-j
    separate = sum(layers + 2 * (layers - j) + 1 for j in range(1, layers + 1)) + layers * layers
    assert dot_nodes(seed_report.forms["separate"].outputs) == separate
    assert dot_nodes(seed_report.forms["joint"].outputs) == 3 * layers - 1
    assert dot_nodes(seed_report.forms["separate_merged"].outputs) == 3 * layers - 1


def test_merging_the_separate_form_recovers_the_joint_form(seed_report):
    forms = seed_report.forms
    joint_matmul = hand_joint_matmul_flops(SEED_WIDTHS, 128)
    assert forms["joint"].cost.matmul_flops == joint_matmul
    assert forms["separate_merged"].cost.matmul_flops == joint_matmul
    assert forms["separate_merged"].cost.nodes == forms["joint_merged"].cost.nodes
    assert seed_report.merged_equals_joint is True
    assert forms["separate"].cost.matmul_flops == joint_matmul + hand_duplicated_matmul_flops(SEED_WIDTHS, 128)


def test_forward_nodes_are_untagged_and_backward_nodes_carry_their_call(seed_report):
    order = ga.topological_order(seed_report.forms["separate"].outputs)
    calls = {n.call.wrt_names for n in order if n.call is not None}
    assert calls == {(name,) for name in seed_report.wrt}
    forward_dots = [n for n in order if n.op == "jax.dot_general" and n.call is None]
    assert len(forward_dots) == 2 * (len(SEED_WIDTHS) - 1) ** 2  # L products in each of the 2L traces


def test_merged_imported_graph_evaluates_to_jax_grad(small_seed):
    fn, args, argnums, report = small_seed
    feed = gj.named_leaves(fn, *args)
    assert list(feed) == ["w1", "b1", "w2", "b2", "w3", "b3", "w4", "b4", "x", "y"]
    expected = jax.jit(jax.grad(fn, argnums=argnums))(*args)
    merged = report.forms["separate_merged"].outputs
    for name, value, reference in zip(report.wrt, gj.evaluate(merged, feed), expected):
        np.testing.assert_allclose(value, np.asarray(reference), rtol=1e-5, atol=1e-7, err_msg=name)


def test_xla_recovers_the_duplicated_dots_only_with_cse(small_seed):
    _, _, _, report = small_seed
    check = report.framework["compile_check"]
    compiled, without_cse = check["rows"]
    joint_dots = dot_nodes(report.forms["joint"].outputs)
    assert compiled["separate"]["dots"] == compiled["joint"]["dots"] == joint_dots
    assert without_cse["separate"]["dots"] == dot_nodes(report.forms["separate"].outputs)
    assert without_cse["separate"]["nodes"] > compiled["separate"]["nodes"]
    text = report.to_text()
    assert f"after XLA ({check['backend']}): separate {joint_dots} dots vs joint {joint_dots} dots" in text
    assert "XLA recovers the duplicated products" in text


def test_measure_times_the_jitted_forms_on_arguments_put_on_the_device_once(monkeypatch):
    rng = np.random.default_rng(3)
    w, x = rng.standard_normal((4, 5), dtype=np.float32), rng.standard_normal((3, 4), dtype=np.float32)
    received = []
    jit = jax.jit

    def recording_jit(function):
        compiled = jit(function)

        def call(*args):
            received.extend(args)
            return compiled(*args)

        return call

    monkeypatch.setattr(jax, "jit", recording_jit)
    report = gj.audit(sorted_loss, w, x, argnums=0, measure=True, repeats=2)
    calls_per_repeat = 3  # the separate grads in one jit, the joint grad, the one separately jitted grad
    assert len(received) == 2 * (1 + 2) * calls_per_repeat  # two leaves; one untimed run, then two repeats
    device = jax.devices()[0]
    assert all(isinstance(a, jax.Array) and a.committed and a.devices() == {device} for a in received)
    measured = report.measured
    assert measured["repeats"] == 2 and measured["device"] == f"{device.platform}:{device.id} ({device.device_kind})"
    assert list(measured["seconds"]) == ["joint", "separate", "separately jitted"]
    assert all(seconds > 0 for seconds in measured["seconds"].values())
    assert measured["max_abs_difference"] == 0.0  # one parameter: separate and joint are the same grad
    assert f"jitted run time on {measured['device']}, arguments put on it once (median of 2)" in report.to_text()
    quiet = report.to_dict(timings=False)
    assert set(quiet["measured"]["seconds"].values()) == {None} and quiet["measured"]["repeats"] == 2
    assert quiet["framework"]["import_seconds"]["separate"] is None
    assert type(w) is np.ndarray and w.flags.writeable  # the caller's arrays are left as they were


def sin_block(x, w):
    return jnp.sin(x @ w)


def test_remat_recomputation_is_reported_as_intentional():
    n, d_in, d_hidden, d_out = 3, 4, 5, 2
    rng = np.random.default_rng(1)
    w1 = rng.standard_normal((d_in, d_hidden), dtype=np.float32)
    w2 = rng.standard_normal((d_hidden, d_out), dtype=np.float32)
    x = rng.standard_normal((n, d_in), dtype=np.float32)

    def loss(w1, w2, x, block):
        return jnp.sum(jnp.tanh(block(x, w1) @ w2))

    def checkpointed(w1, w2, x):
        return loss(w1, w2, x, jax.checkpoint(sin_block))

    def plain(w1, w2, x):
        return loss(w1, w2, x, sin_block)

    report = gj.audit(checkpointed, w1, w2, x, argnums=(0, 1))
    baseline = gj.audit(plain, w1, w2, x, argnums=(0, 1))
    product = 2 * n * d_in * d_hidden
    # the backward pass of the block recomputes x @ w1 and cos(x @ w1) instead of keeping them
    recomputed = {"nodes": 2, "flops": product + n * d_hidden, "matmul_flops": product}
    remat = report.framework["intentional_recomputation"]
    assert remat["joint"] == remat["separate_merged"] == recomputed
    assert remat["duplicated"] == {"nodes": 0, "flops": 0, "matmul_flops": 0}  # only w1's call recomputes
    assert baseline.framework["intentional_recomputation"]["joint"]["nodes"] == 0
    # the recomputation is not merged into the forward: the joint form keeps one product more
    assert report.forms["joint_merged"].cost.matmul_flops == baseline.forms["joint_merged"].cost.matmul_flops + product
    assert report.duplicated["matmul_flops"] == baseline.duplicated["matmul_flops"]
    assert report.merged_equals_joint is True
    assert "intentional recomputation (jax.checkpoint)" in report.to_text()
    values = gj.evaluate(report.forms["separate_merged"].outputs, gj.named_leaves(checkpointed, w1, w2, x))
    for value, reference in zip(values, jax.grad(checkpointed, argnums=(0, 1))(w1, w2, x)):
        np.testing.assert_allclose(value, np.asarray(reference), rtol=1e-5, atol=1e-6)


# --- HLO counts, errors -------------------------------------------------------------------------


HLO = """HloModule demo

%fused (p: f32[2,3], q: f32[3,4]) -> f32[2,4] {
  %p = f32[2,3]{1,0} parameter(0)
  %q = f32[3,4]{1,0} parameter(1)
  ROOT %d = f32[2,4]{1,0} dot(%p, %q), lhs_contracting_dims={1}, rhs_contracting_dims={0}
}

ENTRY %main (a: f32[2,3], b: f32[3,4]) -> (f32[2,4], f32[2,4]) {
  %a = f32[2,3]{1,0} parameter(0)
  %b = f32[3,4]{1,0} parameter(1)
  %f = f32[2,4]{1,0} fusion(%a, %b), kind=kOutput, calls=%fused
  %c = (f32[2,4]{1,0}, u8[0]{0}) custom-call(%a, %b), custom_call_target="__onednn$matmul"
  %g = f32[2,4]{1,0} get-tuple-element(%c), index=0
  %t = f32[4,3]{1,0} convolution(%a, %b), dim_labels=bf_io->bf
  ROOT %r = (f32[2,4]{1,0}, f32[2,4]{1,0}) tuple(%f, %g)
}
"""


def test_hlo_counts_instructions_and_contractions():
    assert gj.hlo_counts(HLO) == {"instructions": 10, "dots": 3}


def test_audit_errors_name_the_problem():
    w, x = jnp.ones((3, 2)), jnp.ones((4, 3))

    def f(w, x):
        return jnp.sum(x @ w)

    with pytest.raises(ValueError, match="argnums 2 is out of range for 2"):
        gj.audit(f, w, x, argnums=2)
    with pytest.raises(TypeError, match="cannot differentiate n: its dtype is int32"):
        gj.audit(lambda w, n: jnp.sum(w) * n, w, np.int32(3), argnums=(0, 1))
    abstract = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in (w, x)]
    with pytest.raises(ValueError, match="measure=True needs arrays"):
        gj.audit(f, *abstract, argnums=0, measure=True)


# --- the report's JAX section (new with the package) ---------------------------------------------


def test_the_report_is_the_core_report_with_a_jax_section(small_seed):
    _, _, _, report = small_seed
    assert type(report) is Report and isinstance(report.framework, gj.JaxSection)
    closing = report.framework.closing_lines()
    assert closing[0] == "" and closing[1].startswith(f"JAX {jax.__version__}: 8 jax.grad traces")
    assert report.to_text().endswith("\n".join(closing + advice_lines(report)))  # then what to change
    assert json.loads(report.to_json())["framework"]["traces"] == {"separate": 8, "joint": 1}


def test_the_xla_check_prints_once_its_verdict_right_after_its_table(small_seed):
    _, _, _, report = small_seed
    lines = report.to_text().splitlines()
    verdicts = [i for i, line in enumerate(lines) if line.startswith("after XLA")]
    assert len(verdicts) == 1
    title = lines.index(f"{report.framework['compile_check']['title']} (op nodes / matmuls):")
    # the title, the column header, one line per row, then the verdict
    assert verdicts[0] == title + 2 + len(report.framework["compile_check"]["rows"])
    assert lines[verdicts[0] + 1] == ""  # and the next section starts


# --- the command line (new with the package) ------------------------------------------------------


def test_cli_recognises_only_jax_targets():
    fn = lambda w: jnp.sum(w * w)  # noqa: E731
    w = np.ones(3, np.float32)
    x = ga.parameter("x", (3,))
    for other in [(ga.sum(x), [x], None), (1, 2, 3), "text", None, (fn, (w,))]:
        assert gj.CLI.recognise(other, "f.py:target") is None
    target = gj.CLI.recognise([fn, [w], [0]], "f.py:target")
    assert (target.fn, target.args, target.argnums, target.name) == (fn, (w,), (0,), "f.py:target")
    with pytest.raises(TargetError, match=r"^f.py:target returned \(fn, args, argnums\), but args is an int, not a"):
        gj.CLI.recognise((fn, 3, 0), "f.py:target")
    with pytest.raises(TargetError, match=r"^f.py:target: argnums must be an int or a non-empty tuple of ints, got \(\)"):
        gj.CLI.recognise((fn, (w,), ()), "f.py:target")
    with pytest.raises(TargetError, match="non-empty tuple of ints, got a bool$"):
        gj.CLI.recognise((fn, (w,), True), "f.py:target")
    assert isinstance(TargetError("x"), ValueError)


def test_cli_runs_with_the_options_and_says_what_failed_in_jax(monkeypatch):
    options = {**analysis_options(), "xla": True, "commutative": True}
    fn = lambda w: jnp.sum(jnp.tanh(w) * w)  # noqa: E731
    report = audit_target(gj.CLI, gj.CLI.recognise((fn, (np.ones(3, np.float32),), 0), "f.py:t"), options, "f.py:t")
    assert report.commutative is True and "compile_check" in report.framework
    broken = gj.CLI.recognise((lambda w: jnp.sum(w @ w), (np.ones((2, 3), np.float32),), 0), "f.py:broken")
    with pytest.raises(UsageError, match=r"^auditing f.py:broken with JAX failed: TypeError: ") as failed:
        audit_target(gj.CLI, broken, options, "f.py:broken")
    assert isinstance(failed.value.__cause__, TypeError)
    for passing in (MissingFrameworkError("no jax"), ShapeError("bad shapes")):
        def raising(*args, error=passing, **kwargs):
            raise error

        monkeypatch.setattr(jax_target, "audit_forms", raising)
        with pytest.raises(type(passing)):
            audit_target(gj.CLI, broken, options, "f.py:broken")


# --- determinism, examples -------------------------------------------------------------------------

DETERMINISM = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, {examples!r})
    import graphaudit as ga
    from graphaudit.frontends import jax as gj
    import jax_seed_mlp
    fn, args, argnums = jax_seed_mlp.build(batch=3, widths=(6, 5, 4, 3, 2))
    report = gj.audit(fn, *args, argnums=argnums)
    separate = ga.digests(report.forms["separate"].outputs)
    joint = ga.digests(report.forms["joint"].outputs)
    print(json.dumps([report.to_dict(timings=False), [separate[o] for o in report.forms["separate"].outputs],
                      [joint[o] for o in report.forms["joint"].outputs]]))
    print(report.to_dot("merged"))
    import jax_lstm
    fn, args, argnums = jax_lstm.build(3, 2, 3, 2, 2)
    print(json.dumps(gj.audit(fn, *args, argnums=argnums).to_dict(timings=False)))  # loops, their digests
    print(json.dumps(gj.audit(fn, *args, argnums=argnums, loop_budget=0).to_dict(timings=False)))
    """
)


@pytest.mark.slow
@pytest.mark.subprocess
def test_same_report_digests_and_dot_in_fresh_processes():
    script = DETERMINISM.format(examples=str(ROOT / "examples"))
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed,
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    data, separate_digests, joint_digests = json.loads(outputs[0].splitlines()[0])
    assert data["framework"]["name"] == "JAX" and data["merged_equals_joint"] is True
    assert separate_digests == joint_digests  # equal subgraphs, whichever call built them


def test_examples_run_small(capsys):
    assert jax_seed_mlp.main(["--batch", "3", "--widths", "6,5,4,3,2", "--no-xla"]) == 0
    out = capsys.readouterr().out
    assert "seed MLP in JAX: batch 3, widths 6-5-4-3-2, float32, 8 parameters" in out
    assert "merge(separate) == merge(joint): yes" in out
    assert jax_transformer.main(["--batch", "2", "--seq", "4", "--d-model", "8", "--heads", "2", "--d-ff", "16",
                                 "--no-xla"]) == 0
    out = capsys.readouterr().out
    assert "12 separate grad calls" in out and "params['attn']['wq']" in out
    with pytest.raises(SystemExit):
        jax_seed_mlp.main(["--widths", "6,5,4"])
