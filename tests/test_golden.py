"""Outputs recorded before the front-end platform refactor stay byte for byte the same.

``tests/golden/record.py`` recorded them (see its docstring); re-record only for a change
of output that is meant, and say which in the commit.
"""

from __future__ import annotations

import importlib.util
import re

import pytest
from conftest import ROOT

_spec = importlib.util.spec_from_file_location("golden_record", ROOT / "tests" / "golden" / "record.py")
record = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(record)


@pytest.mark.subprocess
@pytest.mark.parametrize("name", sorted(record.CASES))
def test_output_is_unchanged(name):
    framework = record.CASES[name][1]
    if framework is not None:
        pytest.importorskip(framework)
    expected = (record.HERE / name).read_text()
    recorded = re.search(r"^seed MLP in PyTensor ([\w.]+)", expected, re.MULTILINE)
    if recorded:  # PyTensor's graphs differ between its releases
        import pytensor

        if pytensor.__version__ != recorded.group(1):
            pytest.skip(f"recorded with PyTensor {recorded.group(1)}, running {pytensor.__version__}")
    assert record.output(name) == expected


def test_masking_hides_times_and_keeps_counts():
    text = "  separate   8   12.5 ms   0.0401 .. 3 s  (2.26x)\nseparate   476   172   8.45 kFLOP\n"
    assert record.mask_timings(text) == " separate 8 <t> <r> .. <t> (<r>)\nseparate   476   172   8.45 kFLOP\n"
