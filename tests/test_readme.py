"""The README's Python examples run as written."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_opens_with_the_two_commands():
    lines = [line.strip() for line in README.read_text().splitlines() if line.strip()]
    assert lines[1].startswith("make demo") and lines[2].startswith("make test")


FRAMEWORKS = ("jax", "pytensor", "torch", "pymc", "egglog")  # optional: a block that imports one needs it


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index, tmp_path, monkeypatch):
    for framework in FRAMEWORKS:  # the PyTensor-3 environment of `make test` has no other framework
        if re.search(rf"^\s*(import|from) {framework}\b", BLOCKS[index], flags=re.M):
            pytest.importorskip(framework)
    monkeypatch.chdir(tmp_path)  # blocks may write pictures
    exec(compile(BLOCKS[index], f"README block {index}", "exec"), {})
