"""How the command line finds front-ends declared in the ``graphaudit.frontends`` entry-point group, with the toy
front-end installed as pip would install a package ``graphaudit-toy`` (its ``.dist-info`` on ``sys.path``):
after graphaudit's frameworks by entry point name, in ``--help``, in a fresh process, and a broken
declaration said in one line that names it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

from cli.helpers import assert_one_line_error, install_frontends, module_env, run
from frontends.toy import toy_frontend
from frontends.toy.test_toy import D2, N, TARGET
from graphaudit.frontends import FrontendEntryPointError, cli_frontends

BUILT_IN = [frontend.name for frontend in cli_frontends()]  # before any toy is installed


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """The toy installed; a target file of it."""
    monkeypatch.syspath_prepend(str(install_frontends(tmp_path / "site", "graphaudit_toy",
                                                      {"toy": "frontends.toy.toy_frontend"})))
    (tmp_path / "toy.py").write_text(TARGET)
    return tmp_path / "toy.py"


def test_the_help_lists_the_installed_front_end_with_the_options_it_honours(installed, capsys):
    code, out, err = run(["audit", "--help"], capsys)
    text = " ".join(out.split())
    assert code == 0 and "Toy: (loss, params, inputs) of toy Vars options: --commutative, --count" in text
    assert "Toy graphaudit audit toy.py:target" in text


def test_installed_front_ends_come_in_entry_point_name_order(tmp_path, monkeypatch):
    site = install_frontends(tmp_path, "two_toys", {"toy": "frontends.toy.toy_frontend", "a_second": "second_toy"})
    (site / "second_toy.py").write_text("import dataclasses\nfrom frontends.toy import toy_frontend\n"
                                        "CLI = dataclasses.replace(toy_frontend.CLI, name='Second toy')\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "second_toy", raising=False)
    frontends = cli_frontends()
    assert [frontend.name for frontend in frontends] == [*BUILT_IN[:-1], "Second toy", "Toy", BUILT_IN[-1]]
    assert frontends[-2] is toy_frontend.CLI


@pytest.mark.parametrize("value, says", [
    ("frontends.toy.toyframework", ": its CLI is a NoneType, not a graphaudit.frontends.common.CliFrontend"),
    ("no_such_module", " does not load: ModuleNotFoundError: No module named 'no_such_module'"),
])
def test_a_broken_entry_point_is_one_line_naming_it(tmp_path, monkeypatch, capsys, value, says):
    monkeypatch.syspath_prepend(str(install_frontends(tmp_path, "broken_toy", {"toy": value})))
    message = f"the front-end entry point toy = {value} (graphaudit.frontends of broken_toy 0.1){says}"
    with pytest.raises(FrontendEntryPointError) as raised:
        cli_frontends()
    assert str(raised.value) == message
    code, out, err = run(["audit", "seed_mlp"], capsys)
    assert_one_line_error(code, out, err)
    assert err == f"graphaudit: error: {message}\n"


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_fresh_process_finds_the_installed_toy(installed):
    env = module_env()
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(installed.parent / "site"), str(ROOT / "tests")])
    done = subprocess.run([sys.executable, "-m", "graphaudit", "audit", f"{installed}:target", "--json", "-"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["framework"]["name"] == "Toy" and data["duplicated"]["flops"] == 3 * N * D2  # test_toy's hand count
