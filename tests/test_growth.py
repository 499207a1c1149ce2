"""Growth with depth: counts, fitted exponents (separate ~2, joint ~1 on a chain), the plot, the CLI."""

import json
import re

import numpy as np
import pytest

import graphaudit as ga
from graphaudit import models
from graphaudit.cli import main
from graphaudit.core.describe import si
from graphaudit.analysis.growth import FORM_WIDTH, FORMS, METRICS, fit_exponent, growth


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
    assert "nodes ~ depth^k" in capsys.readouterr().out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(data.read_text())["depths"] == [4, 8, 16]
    assert main(["growth", "seed_mlp"]) == 2
    assert "has no depth" in capsys.readouterr().err
    assert main(["growth", "deep_chain", "--depths", "8"]) == 2



def test_the_table_is_laid_out_like_the_audits():
    """Per metric: a row per form, named as the audit's table names it, a right-aligned column per depth
    two spaces wider than its widest cell (no fixed 26-character columns), then the fitted k."""
    depths = [4, 8, 16]
    result = growth(chain, depths, count_above=2_000)  # depth 16's separate form is counted, not built
    audit_lines = ga.audit(*chain(8)).to_text().splitlines()
    blocks = result.to_text().split("\n\n")
    assert len(blocks) == 3 and blocks[2].startswith("* the separate form was counted")
    for block, metric in zip(blocks, METRICS):
        title, header, rule, *rows = block.splitlines()
        assert rule == "-" * len(header) and all(len(row) == len(header) for row in rows)
        cells = [[line[:FORM_WIDTH].strip(), *re.split(r" {2,}", line[FORM_WIDTH:].strip())] for line in [header, *rows]]
        assert cells[0] == ["form", "4", "8", "16*", "k"]  # * marks the counted depth
        for form, row in zip(FORMS, cells[1:]):
            assert row[0] == form.replace("_", " ")
            assert any(line.startswith(row[0].ljust(FORM_WIDTH)) for line in audit_lines)  # the audit's name, width
            shown = [str(v) if metric == "nodes" else si(v, "FLOP") for v in result.counts[form][metric]]
            assert row[1:] == [*shown, f"{result.exponents[form][metric]:.2f}"]
        ends = [[m.end() for m in re.finditer(r"\S+(?: \S+)*", line[FORM_WIDTH:])] for line in [header, *rows]]
        assert all(e == ends[0] for e in ends)  # right-aligned
        for column, (start, end) in enumerate(zip([0, *ends[0]], ends[0]), start=1):
            assert end - start == max(len(row[column]) for row in cells) + 2


def test_the_cli_prints_the_table(capsys):
    depths = [4, 8, 16]
    assert main(["growth", "deep_chain", "--depths", ",".join(map(str, depths)), "--width", "8", "--batch", "4",
                 "--quiet"]) == 0
    assert capsys.readouterr().out == growth(chain, depths).to_text() + "\n"
