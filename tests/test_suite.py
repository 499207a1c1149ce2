"""The fast tier's selection. pytest takes a name in `-m` that no test carries without a word (and
`--strict-markers` checks only the marks on tests), so a misspelt or renamed marker in `make test-fast`
would quietly leave nothing out."""

from __future__ import annotations

import re

from conftest import ROOT


def fast_tier() -> str:
    found = re.search(r"^FAST_TIER := (.+)$", (ROOT / "Makefile").read_text(), flags=re.M)
    assert found, "the Makefile has no FAST_TIER"
    return found.group(1)


def test_make_test_fast_leaves_out_registered_markers_that_tests_carry(pytestconfig):
    named = set(re.findall(r"\w+", fast_tier())) - {"not", "and", "or"}
    registered = {line.split(":")[0].strip() for line in pytestconfig.getini("markers")}
    assert named and not named - registered, f"not registered in pyproject.toml: {named - registered}"
    sources = "\n".join(path.read_text() for path in (ROOT / "tests").rglob("*.py") if path.name != "test_suite.py")
    assert not {name for name in named if not re.search(rf"\bpytest\.mark\.{name}\b", sources)}


def test_the_readme_quotes_the_expression_the_makefile_runs():
    assert f'pytest -m "{fast_tier()}"' in (ROOT / "README.md").read_text()
