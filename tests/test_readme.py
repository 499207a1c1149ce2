"""The README's Python examples run as written."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_opens_with_the_two_commands():
    lines = [line.strip() for line in README.read_text().splitlines() if line.strip()]
    assert lines[1].startswith("make demo") and lines[2].startswith("make test")


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # blocks may write pictures
    exec(compile(BLOCKS[index], f"README block {index}", "exec"), {})
