"""The JAX front-end: jaxprs imported as nodes, ``jax.grad`` per parameter audited against the joint call.

Hand counts are formulas over the widths and the batch (see ANCHORS.md's hand count): the
separate form's duplicated matmul FLOPs are the input-gradient products of the layers above
each parameter, plus one forward pass per separate trace beyond the first, since every
``jax.grad`` trace re-traces the forward pass over the same (shared) inputs.
"""

from __future__ import annotations

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
from graphaudit.cost import node_flops  # noqa: E402
from graphaudit.frontends import jax as gj  # noqa: E402

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


def test_measure_times_the_jitted_forms():
    rng = np.random.default_rng(3)
    w, x = rng.standard_normal((4, 5), dtype=np.float32), rng.standard_normal((3, 4), dtype=np.float32)
    report = gj.audit(sorted_loss, w, x, argnums=0, measure=True, repeats=2)
    measured = report.framework["measured"]
    assert measured["repeats"] == 2
    for key in ("separate_one_jit_seconds", "joint_seconds", "separately_jitted_seconds"):
        assert measured[key] > 0
    assert measured["max_abs_difference"] == 0.0  # one parameter: separate and joint are the same grad
    assert "jitted run time (median of 2)" in report.to_text()
    quiet = report.to_dict(timings=False)["framework"]
    assert quiet["measured"]["joint_seconds"] is None and quiet["measured"]["repeats"] == 2
    assert quiet["import_seconds"]["separate"] is None


# --- what the importer keeps: unknown ops, remat, randomness, pytrees ---------------------------


def sorted_loss(w, x):
    """``jnp.sort`` binds ``sort`` (two operands, two results), which has no cost rule."""
    return jnp.sum(jnp.sort(jnp.tanh(x @ w), axis=-1) * jnp.arange(w.shape[1], dtype=jnp.float32))


def test_unknown_primitives_are_reported_not_dropped():
    rng = np.random.default_rng(0)
    w, x = rng.standard_normal((4, 5), dtype=np.float32), rng.standard_normal((3, 4), dtype=np.float32)
    report = gj.audit(sorted_loss, w, x, argnums=0)
    assert ga.OPS["jax.sort"].cost is None
    for form in ("separate", "joint"):
        order = ga.topological_order(report.forms[form].outputs)
        sorts = sum(1 for n in order if n.op == "jax.sort")
        assert sorts >= 1
        assert dict(report.forms[form].cost.no_cost_rule) == {"jax.sort": sorts}
        assert report.forms[form].cost.nodes == sum(1 for n in order if not n.is_leaf)
    assert "no cost rule, FLOPs not counted: jax.sort" in report.to_text()
    (value,) = ga.evaluate(report.forms["joint"].outputs, gj.named_leaves(sorted_loss, w, x))  # sort: 2 results
    np.testing.assert_allclose(value, np.asarray(jax.grad(sorted_loss)(w, x)), rtol=1e-5, atol=1e-7)


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


def test_random_draws_are_never_merged():
    rng = np.random.default_rng(2)
    w1 = rng.standard_normal((4, 5), dtype=np.float32)
    w2 = rng.standard_normal((5, 2), dtype=np.float32)
    x = rng.standard_normal((3, 4), dtype=np.float32)

    def dropout_loss(w1, w2, key, x):
        h = jnp.tanh(x @ w1)
        keep = jax.random.bernoulli(key, 0.5, h.shape)
        return jnp.sum(jnp.where(keep, h / 0.5, 0.0) @ w2)

    args = (w1, w2, jax.random.PRNGKey(0), x)
    report = gj.audit(dropout_loss, *args, argnums=(0, 1))
    assert ga.OPS["jax.random_bits"].pure is False

    def draws(form):
        return sum(1 for n in ga.topological_order(report.forms[form].outputs) if n.op == "jax.random_bits")

    assert draws("joint") == 1
    assert draws("separate") == draws("separate_merged") == 2  # one per trace, both kept
    assert report.merged_equals_joint is False
    values = gj.evaluate(report.forms["separate_merged"].outputs, gj.named_leaves(dropout_loss, *args))
    for value, reference in zip(values, jax.grad(dropout_loss, argnums=(0, 1))(*args)):
        np.testing.assert_allclose(value, np.asarray(reference), rtol=1e-5, atol=1e-6)


def test_pytree_params_are_flattened_and_named_by_path():
    fn, args, argnums = jax_transformer.build(batch=2, seq=4, d_model=8, heads=2, d_ff=16)
    report = gj.audit(fn, *args, argnums=argnums)
    leaves = jax.tree_util.tree_flatten_with_path(args[0])[0]
    assert report.wrt == ["params" + jax.tree_util.keystr(path) for path, _ in leaves]
    assert "params['attn']['wq']" in report.wrt and "params['mlp']['b2']" in report.wrt
    assert report.framework["traces"]["separate"] == len(leaves)
    assert report.merged_equals_joint is True
    assert report.forms["separate_merged"].cost.matmul_flops == report.forms["joint"].cost.matmul_flops
    values = gj.evaluate(report.forms["separate_merged"].outputs, gj.named_leaves(fn, *args))
    for value, reference in zip(values, jax.tree_util.tree_leaves(jax.jit(jax.grad(fn))(*args))):
        np.testing.assert_allclose(value, np.asarray(reference), rtol=1e-4, atol=1e-6)


# --- from_jaxpr, params and HLO counts ----------------------------------------------------------


def test_from_jaxpr_inlines_calls_and_names_inputs():
    def f(params, x):
        return jnp.sum(jax.nn.relu(jax.jit(jnp.tanh)(x @ params["w"])))

    traced = jax.make_jaxpr(f)({"w": jnp.ones((3, 2))}, jnp.ones((4, 3)))
    (out,) = gj.from_jaxpr(traced)
    order = ga.topological_order([out])
    leaves = [n for n in order if n.op == "placeholder"]
    assert sorted(n.name for n in leaves) == ["params['w']", "x"]
    ops = [n.op for n in order if not n.is_leaf]
    assert "jax.jit" not in ops and "jax.custom_jvp_call" not in ops
    assert {"jax.dot_general", "jax.tanh", "jax.max", "jax.reduce_sum"} <= set(ops)
    assert all(n.call is None for n in order)  # no transpose: all forward


def test_from_jaxpr_shares_given_inputs_and_checks_them():
    traced = jax.make_jaxpr(lambda a, b: a @ b)(jnp.ones((2, 3)), jnp.ones((3, 4)))
    a, b = ga.placeholder("a", (2, 3)), ga.parameter("b", (3, 4))
    first, second = gj.from_jaxpr(traced, [a, b]), gj.from_jaxpr(traced, [a, b])
    assert first[0].inputs == second[0].inputs == (a, b)
    assert ga.merge(first + second).removed == 1
    with pytest.raises(ValueError, match="2 inputs"):
        gj.from_jaxpr(traced, [a])
    with pytest.raises(ValueError, match=r"inputs\[1\] \(b\) is float32\[3, 5\].*float32\[3, 4\]"):
        gj.from_jaxpr(traced, [a, ga.parameter("b", (3, 5))])
    with pytest.raises(TypeError, match="expected a jaxpr"):
        gj.from_jaxpr(lambda a: a)


def test_params_become_hashable_stable_attrs():
    assert gj.hashable_param([np.int64(1), [2, np.int32(3)]]) == (1, (2, 3))
    assert type(gj.hashable_param((np.int64(1),))[0]) is int
    left = gj.hashable_param({"k": np.array([0.0], np.float32)})
    same = gj.hashable_param({"k": np.array([0.0], np.float32)})
    other = gj.hashable_param({"k": np.array([-0.0], np.float32)})
    assert isinstance(left, gj.Opaque) and left == same and hash(left) == hash(same)
    assert left != other  # 0.0 and -0.0 differ by their bytes
    assert "0x" not in repr(left) and left.digest in repr(left)
    jaxprs = [jax.make_jaxpr(lambda v: jnp.sin(v))(jnp.ones(3)).jaxpr for _ in range(2)]  # two traces
    assert jaxprs[0] is not jaxprs[1] and gj.hashable_param(jaxprs[0]) == gj.hashable_param(jaxprs[1])
    assert gj.hashable_param(jax.make_jaxpr(jnp.cos)(jnp.ones(3)).jaxpr) != gj.hashable_param(jaxprs[0])


def test_cost_rules_of_imported_primitives():
    b, i, j, k = 2, 3, 4, 5
    n, c, h, w, o, kh, kw, groups = 2, 4, 6, 7, 6, 3, 2, 2

    def f(p, q, image, kernel, updates):
        batched = jnp.einsum("bij,bjk->bik", p, q)
        conv = jax.lax.conv_general_dilated(image, kernel, (1, 1), "VALID", feature_group_count=groups)
        scattered = jnp.zeros(10).at[jnp.array([1, 3, 3])].add(updates)
        return batched, conv, scattered, jnp.sum(batched, axis=1)

    args = (jnp.ones((b, i, j)), jnp.ones((b, j, k)), jnp.ones((n, c, h, w)), jnp.ones((o, c // groups, kh, kw)),
            jnp.ones(3))
    batched, conv, scattered, summed = gj.from_jaxpr(jax.make_jaxpr(f)(*args))
    assert batched.op == "jax.dot_general" and ga.OPS[batched.op].kind == "matmul"
    assert node_flops(batched) == 2 * b * i * j * k
    assert conv.op == "jax.conv_general_dilated" and conv.shape == (n, o, h - kh + 1, w - kw + 1)
    assert node_flops(conv) == 2 * conv.size * (c // groups) * kh * kw
    assert scattered.op == "jax.scatter-add" and node_flops(scattered) == 3
    assert summed.op == "jax.reduce_sum" and node_flops(summed) == b * i * k  # one per input element


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


# --- errors ---------------------------------------------------------------------------------------


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
    """
)


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
