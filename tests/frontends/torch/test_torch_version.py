"""frontends/torch/version.py: the floor stated once, checked in one line."""

from __future__ import annotations

import re
import tomllib

import pytest
from conftest import ROOT

torch = pytest.importorskip("torch")

from graphaudit.frontends import MissingFrameworkError  # noqa: E402
from graphaudit.frontends.torch import version  # noqa: E402


@pytest.fixture
def fresh_check():
    version.supported_torch.cache_clear()
    yield
    version.supported_torch.cache_clear()


def test_this_torch_has_every_api_the_capture_uses(fresh_check):
    assert version.supported_torch() is torch
    assert version.release(torch.__version__) >= version.MINIMUM


def test_the_extra_states_the_floor_the_check_enforces():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    (spec,) = extras["torch"]
    floor = re.search(r">=\s*([\d.]+)", spec)[1]
    assert version.release(floor) == version.MINIMUM
    assert "==" not in spec  # a range users on other releases can install


def test_an_older_torch_is_one_line_naming_the_floor(fresh_check, monkeypatch):
    monkeypatch.setattr(torch, "__version__", "2.9.1")
    floor = ".".join(map(str, version.MINIMUM))
    with pytest.raises(MissingFrameworkError, match=rf"needs torch>={floor}, but this is torch 2\.9\.1") as error:
        version.supported_torch()
    assert "\n" not in str(error.value)


def test_a_missing_api_is_named(fresh_check, monkeypatch):
    monkeypatch.delattr(torch.fx.traceback, "annotate")
    with pytest.raises(MissingFrameworkError, match=r"lacks torch\.fx\.traceback\.annotate"):
        version.supported_torch()


def test_release_reads_local_versions():
    assert version.release("2.13.0+cpu") == (2, 13)
    assert version.release("2.10.0a0+git1234") == (2, 10)
