"""Growth with depth: counts, fitted exponents (separate ~2, joint ~1 on a chain), the plot, the CLI."""

import json

import numpy as np
import pytest

import graphaudit as ga
from graphaudit import models
from graphaudit.cli import main
from graphaudit.growth import fit_exponent, growth


def chain(depth):
    model = models.deep_chain(depth=depth, width=8, batch=4)
    return model.loss, model.params


@pytest.fixture(scope="module")
def deep():
    return growth(chain, [16, 32, 64, 128, 256], count_above=50_000)


def test_a_chain_grows_quadratically_separate_and_linearly_joint(deep):
    k = deep.exponents
    assert 1.8 < k["separate"]["nodes"] < 2.1 and 1.8 < k["separate"]["flops"] < 2.1
    assert 0.9 < k["joint"]["nodes"] < 1.1 and 0.9 < k["joint"]["flops"] < 1.1
    assert k["separate_merged"] == k["joint"]


def test_the_exponents_are_the_slopes_of_the_counts_plotted(deep):
    for form, by_metric in deep.counts.items():
        for metric, values in by_metric.items():
            slope = np.polyfit(np.log(deep.depths), np.log(values), 1)[0]
            assert deep.exponents[form][metric] == pytest.approx(slope)
    assert fit_exponent([1, 2, 4], [3, 12, 48]) == pytest.approx(2.0)


def test_counted_depths_give_the_audits_numbers(deep):
    assert not deep.counted[0] and deep.counted[-1]  # small depths built, large ones counted
    report = ga.audit(*chain(128))
    assert deep.counts["separate"]["nodes"][3] == report.forms["separate"].cost.nodes
    assert deep.counts["separate"]["flops"][3] == report.forms["separate"].cost.flops
    assert deep.counts["joint"]["nodes"][3] == report.forms["joint"].cost.nodes


def test_growth_needs_two_depths():
    with pytest.raises(ValueError, match="two positive depths"):
        growth(chain, [8, 8])


def test_the_cli_prints_writes_json_and_plots(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="the growth plot needs matplotlib")
    png, data = tmp_path / "growth.png", tmp_path / "growth.json"
    assert main(["growth", "deep_chain", "--depths", "4,8,16", "--width", "4", "--batch", "2",
                 "--png", str(png), "--json", str(data)]) == 0
    assert "fitted exponents" in capsys.readouterr().out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(data.read_text())["depths"] == [4, 8, 16]
    assert main(["growth", "seed_mlp"]) == 2
    assert "has no depth" in capsys.readouterr().err
    assert main(["growth", "deep_chain", "--depths", "8"]) == 2
