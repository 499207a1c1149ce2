"""``graphaudit examples``: the built-in examples, in their table's order."""

from __future__ import annotations

from cli.helpers import run

def test_examples_lists_all_three(capsys):
    code, out, err = run(["examples"], capsys)
    assert code == 0
    names = [line.split()[0] for line in out.splitlines() if line and not line[0].isspace()]
    assert names == ["seed_mlp", "deep_chain", "residual_mlp"]
