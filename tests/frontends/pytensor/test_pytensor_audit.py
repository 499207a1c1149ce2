"""frontends/pytensor/audit.py: the seed's hand count, PyTensor's own merge and compiler beside graphaudit's, the
section's text, and PyTensor targets from the command line.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT

import graphaudit as ga
from graphaudit.cli import main
from graphaudit.cli.options import analysis_options
from graphaudit.cli.targets import audit_target
from graphaudit.cli.usage import UsageError
from graphaudit.frontends.common import FrameworkSection

pytensor = pytest.importorskip("pytensor")
pt = pytest.importorskip("pytensor.tensor")
gp = pytest.importorskip("graphaudit.frontends.pytensor")
from pytensor_networks import SEED_BATCH, SEED_WIDTHS, SMALL, apply_nodes, both_forms, seed_network  # noqa: E402


@pytest.fixture(scope="module")
def small_audit():
    """One audit of the small seed network with the compile check (PyTensor's compile is the slow part)."""
    x, y, params, loss = seed_network(SMALL)
    report = gp.audit(loss, params, shapes={"x": (9, SMALL[0]), "y": (9,)}, compile_check=True, repeats=3)
    return report, (x, y, params, loss)


def test_graphaudit_merge_removes_every_node_pytensors_merge_optimizer_removes():
    x, y, params, loss = seed_network(SMALL)
    separate, joint = both_forms(loss, params)
    for outputs in (separate, joint):
        imported = gp.from_pytensor(outputs, shapes={"x": (9, SMALL[0]), "y": (9,)})
        ours = ga.merge(imported.outputs)
        theirs = gp.merge_optimizer(outputs)
        assert ours.nodes_before == len(apply_nodes(outputs))  # the same graph, counted the same way
        assert ours.removed >= ours.nodes_before - theirs["nodes"]
        assert theirs["merged"], "MergeOptimizer found nothing to merge: the test would prove nothing"
        for removed, kept in theirs["merged"]:  # every merge PyTensor makes, graphaudit makes too
            for a, b in zip(removed.outputs, kept.outputs):
                assert ours.mapping[imported.node(a)] is ours.mapping[imported.node(b)]


def test_seed_mlp_duplicated_matmul_flops_equal_the_hand_count():
    x, y, params, loss = seed_network(SEED_WIDTHS, shared=False, dtype="float32")
    n, d = SEED_BATCH, SEED_WIDTHS
    report = gp.audit(loss, params, shapes={"x": (n, d[0]), "y": (n,)}, repeats=1)
    layers = range(1, len(d))
    input_gradient = {j: 2 * n * d[j] * d[j - 1] for j in layers if j >= 2}
    hand = sum((2 * (j - 1) - 1) * flops for j, flops in input_gradient.items())
    assert report.duplicated["matmul_flops"] == hand
    assert report.duplicated["by_op"]["pytensor.Dot"]["flops"] == hand
    assert report.duplicated["by_op"]["pytensor.Dot"]["nodes"] == sum(2 * (j - 1) - 1 for j in input_gradient)
    forward = sum(2 * n * d[j - 1] * d[j] for j in layers)
    weight_gradients = forward  # dW_j = h_(j-1)^T @ g_j: the same multiply-adds as the forward product
    assert report.forms["joint"].cost.matmul_flops == forward + weight_gradients + sum(input_gradient.values())
    assert report.forms["separate_merged"].cost.matmul_flops == report.forms["joint"].cost.matmul_flops
    assert report.forms["separate"].cost.matmul_flops == report.forms["joint"].cost.matmul_flops + hand
    assert report.merged_equals_joint


def test_audit_report_with_compile_check(small_audit):
    report, (x, y, params, loss) = small_audit
    separate, joint = both_forms(loss, params)
    check = report.framework["compile_check"]
    rows = {row["graph"].split(" (")[0]: row for row in check["rows"]}
    assert set(rows) == {"as built", "graphaudit merge", "PyTensor MergeOptimizer", "PyTensor compile"}
    for form, outputs in (("separate", separate), ("joint", joint)):
        applies = apply_nodes(outputs)
        assert rows["as built"][form] == {"nodes": len(applies), "dots": gp.matmul_count(applies), "seconds": None}
        assert report.forms[form].cost.nodes == len(applies)
        theirs = gp.merge_optimizer(outputs)
        assert rows["PyTensor MergeOptimizer"][form]["nodes"] == theirs["nodes"]
        assert rows["graphaudit merge"][form]["nodes"] == report.forms[f"{form}_merged"].cost.nodes <= theirs["nodes"]
        assert check["merges_graphaudit_missed"][form] == 0
        assert check["merge_optimizer_merges"][form] == len(theirs["merged"])
        compiled = pytensor.function([x, y], outputs, on_unused_input="ignore").maker.fgraph.apply_nodes
        assert rows["PyTensor compile"][form]["nodes"] == len(compiled)
        assert rows["PyTensor compile"][form]["dots"] == gp.matmul_count(compiled)
    # merge(separate) is the joint graph less the joint form's own duplicates
    assert report.forms["separate_merged"].cost.nodes == report.forms["joint"].cost.nodes - report.joint_duplicates["nodes"]
    assert report.merged_equals_joint
    text = report.to_text()
    assert "what PyTensor's compiler gets back (op nodes / matmuls):" in text
    assert re.search(r"PyTensor MergeOptimizer\s+(\d+) / (\d+)", text).groups() == tuple(
        str(rows["PyTensor MergeOptimizer"]["separate"][k]) for k in ("nodes", "dots"))
    assert "MergeOptimizer's merges that graphaudit's merge does not make: separate 0 of" in text


def test_build_time_statistics_and_deterministic_dict(small_audit):
    report, (x, y, params, loss) = small_audit
    build = report.framework["build_seconds"]
    assert build["repeats"] == 3 and build["calls"] == {"joint": 1, "separate": len(params)}
    for form in ("joint", "separate"):
        s = build[form]
        assert 0 < s["min"] <= s["q1"] <= s["median"] <= s["q3"] <= s["max"] and s["stdev"] >= 0
        assert report.forms[form].build_seconds == s["median"]
    assert build["separate_over_joint"] == pytest.approx(build["separate"]["median"] / build["joint"]["median"])
    assert "time to build the symbolic gradients, 3 builds of each form" in report.to_text()
    again = gp.audit(loss, params, shapes={"x": (9, SMALL[0]), "y": (9,)}, repeats=1)
    quiet = report.to_dict(timings=False)
    assert quiet["framework"]["build_seconds"]["joint"]["median"] is None
    assert quiet["framework"]["build_seconds"]["calls"]["separate"] == len(params)
    assert all(row[f]["seconds"] is None for row in quiet["framework"]["compile_check"]["rows"] for f in ("separate", "joint"))
    quiet.pop("framework")
    other = again.to_dict(timings=False)
    other.pop("framework")
    # the advice reads the compile check, which only the first audit ran: MergeOptimizer recovers the work
    assert "MergeOptimizer" in quiet.pop("advice")[0]["rewrite"] and "MergeOptimizer" not in other.pop("advice")[0]["rewrite"]
    assert json.dumps(quiet, sort_keys=True) == json.dumps(other, sort_keys=True)


def test_audit_rejects_bad_arguments():
    x, y, params, loss = seed_network(SMALL)
    with pytest.raises(ValueError, match="floating-point scalar"):
        gp.audit(x, params)
    with pytest.raises(ValueError, match="wrt is empty"):
        gp.audit(loss, [])
    with pytest.raises(TypeError, match=r"audit: wrt\[0\] is a str"):
        gp.audit(loss, ["W1"])


@pytest.mark.slow
@pytest.mark.subprocess
def test_report_and_dot_are_the_same_in_a_fresh_process_with_another_hash_seed():
    code = (
        "import sys; sys.path.insert(0, 'tests/frontends/pytensor')\n"
        "from pytensor_networks import seed_network, SMALL\n"
        "from graphaudit.frontends import pytensor as gp\n"
        "x, y, params, loss = seed_network(SMALL)\n"
        "report = gp.audit(loss, params, shapes={'x': (3, SMALL[0]), 'y': (3,)}, repeats=1)\n"
        "print(report.to_json(timings=False)); print(report.to_dot('merged')); print(report.to_dot('separate'))"
    )
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": seed}) for seed in ("1", "2")]
    assert all(run.returncode == 0 for run in runs), runs[0].stderr + runs[1].stderr
    assert runs[0].stdout == runs[1].stdout and "pytensor.Dot" in runs[0].stdout and "digraph" in runs[0].stdout


@pytest.mark.slow
@pytest.mark.subprocess
def test_example_prints_the_seed_table_beside_the_audit():
    widths, batch = (6, 5, 4, 3, 2), 4
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "pytensor_seed.py"), "--widths", ",".join(map(str, widths)),
         "--batch", str(batch), "--reps", "3", "--compile-check"],
        capture_output=True, text=True, env=env, timeout=120, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    x, y, params, loss = seed_network(widths, dtype="float32")
    separate, joint = both_forms(loss, params)
    assert re.search(rf"one joint call over all {len(params)} parameters\s+\|\s+[\d.]+ s\s+\|\s+[\d.]+ s", out), out
    assert re.search(rf"{len(params)} separate calls\s+\|\s+[\d.]+ s\s+\|\s+[\d.]+ s", out), out
    assert re.search(r"separate / joint: [\d.]+x \(means\), [\d.]+x \(medians\)", out), out
    assert re.search(rf"^separate\s+{len(apply_nodes(separate))}\s", out, re.MULTILINE), out
    assert re.search(rf"^joint\s+{len(apply_nodes(joint))}\s", out, re.MULTILINE), out
    assert "what PyTensor's compiler gets back" in out


# --- the report's PyTensor section -----------------------------------------------------------------


def test_the_pytensor_section_prints_mergeoptimizers_merges_and_report_py_names_no_framework(small_audit):
    report, _ = small_audit
    section = report.framework
    assert isinstance(section, gp.PyTensorSection)
    merges = section["compile_check"]["merge_optimizer_merges"]
    line = (f"  MergeOptimizer's merges that graphaudit's merge does not make: separate 0 of {merges['separate']}, "
            f"joint 0 of {merges['joint']}")
    assert section.lines()[-1] == line and line in report.to_text().splitlines()
    assert line not in FrameworkSection(section).lines()  # PyTensor's section says it, not the generic one
    source = (ROOT / "graphaudit" / "analysis" / "report.py").read_text().lower()
    assert not [word for word in ("pytensor", "mergeoptimizer", "theano", "jax", "xla") if word in source]


# --- PyTensor targets from the command line --------------------------------------------------------

MLP_FILE = '''
import numpy as np
import pytensor
import pytensor.tensor as pt


def model():
    rng = np.random.default_rng(0)
    x = pt.matrix("x", shape=(4, 6))
    y = pt.vector("y", dtype="int32", shape=(4,))
    w1 = pytensor.shared(rng.standard_normal((6, 5)), name="W1")
    w2 = pytensor.shared(rng.standard_normal((5, 3)), name="W2")
    logp = pt.log(pt.special.softmax(pt.sigmoid(x @ w1) @ w2, axis=-1))
    return -pt.mean(logp[pt.arange(4), y]), [w1, w2]


def build():
    return model()
'''


@pytest.fixture
def mlp_file(tmp_path):
    path = tmp_path / "pytensor_mlp.py"
    path.write_text(MLP_FILE)
    spec = importlib.util.spec_from_file_location("pytensor_mlp", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return path, module


def test_the_command_line_audits_a_pytensor_target_as_audit_does(mlp_file, capsys):
    path, module = mlp_file
    assert main(["audit", f"{path}:build", "--json", "-", "--no-timings", "--repeats", "2"]) == 0
    printed = json.loads(capsys.readouterr().out)
    report = gp.audit(*module.model(), repeats=2)
    assert printed["duplicated"]["nodes"] > 0
    for form in ("separate", "joint", "separate_merged", "joint_merged"):
        for count in ("nodes", "backward_nodes", "flops", "matmul_flops", "bytes"):
            assert printed["forms"][form][count] == report.to_dict()["forms"][form][count]
    assert printed == json.loads(report.to_json(timings=False))
    assert main(["audit", f"{path}:build", "--repeats", "1", "--compile-check"]) == 0
    assert "MergeOptimizer's merges that graphaudit's merge does not make: separate 0 of" in capsys.readouterr().out


def test_a_malformed_pytensor_target_is_refused_in_one_line_naming_the_culprit(mlp_file):
    cost, wrt = mlp_file[1].model()
    assert gp.CLI.recognise((cost, wrt), "f").wrt == wrt
    assert gp.CLI.recognise((cost, wrt[0], {"x": (4, 6)}), "f").wrt == [wrt[0]]
    assert gp.CLI.recognise((1.0, wrt), "f") is None and gp.CLI.recognise(cost, "f") is None
    with pytest.raises(ValueError, match=r"^f: wrt\[1\] is a str, not a PyTensor variable$"):
        gp.CLI.recognise((cost, [wrt[0], "W2"]), "f")
    with pytest.raises(ValueError, match=r"^f must return \(cost, wrt\) .*: wrt is an int, not a PyTensor variable"):
        gp.CLI.recognise((cost, 3), "f")
    with pytest.raises(ValueError, match=r"^f: wrt is empty"):
        gp.CLI.recognise((cost, []), "f")
    with pytest.raises(ValueError, match=r"^f: shapes is a list, not a dict"):
        gp.CLI.recognise((cost, wrt, [4, 6]), "f")
    options = {**analysis_options(), "repeats": 1}
    not_scalar = gp.CLI.recognise((wrt[0] * 2, wrt), "f")
    with pytest.raises(UsageError, match=r"^auditing f with PyTensor failed: ValueError: audit: cost must be") as error:
        audit_target(gp.CLI, not_scalar, options, "f")
    assert isinstance(error.value.__cause__, ValueError)
    x = pt.matrix("x")  # a shape graphaudit cannot know: graphaudit's own error, unchanged
    with pytest.raises(ga.ShapeError, match="shape of input 'x'"):
        audit_target(gp.CLI, gp.CLI.recognise(((x @ wrt[0]).sum(), wrt[0]), "f"), options, "f")


@pytest.mark.subprocess
def test_recognising_a_target_does_not_import_pytensor():
    code = ("import sys\nfrom graphaudit.frontends.pytensor import CLI\n"
            "print(CLI.recognise((1.0, [2.0]), 'f'), 'pytensor' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0 and run.stdout.split() == ["None", "False"], run.stderr
