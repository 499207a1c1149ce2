"""A new front-end edits no file of graphaudit/cli/: its declaration (``CliFrontend``) is all the command line reads.

A toy front-end, declared here and installed under the entry point group ``graphaudit.frontends``
(graphaudit unchanged), appears in both helps with what its targets return and the options it honours,
audits its targets with those options, and has the others refused in one line.
"""

from __future__ import annotations

import json
import sys
import types

import pytest

import graphaudit as ga
from cli.helpers import assert_one_line_error, example_targets, install_frontends, run
from graphaudit.frontends.common import AuditOptions, CliFrontend

TOY_TARGET = """
import graphaudit as ga

def target():
    x = ga.placeholder("x", (4, 3))
    w1, w2 = ga.parameter("w1", (3, 5)), ga.parameter("w2", (5, 2))
    return {"toy": (ga.sum(ga.tanh(ga.tanh(x @ w1) @ w2)), [w1, w2])}
"""


def toy_graph():
    """What TOY_TARGET builds, built again here."""
    x = ga.placeholder("x", (4, 3))
    w1, w2 = ga.parameter("w1", (3, 5)), ga.parameter("w2", (5, 2))
    return ga.sum(ga.tanh(ga.tanh(x @ w1) @ w2)), [w1, w2]


@pytest.fixture
def toy(monkeypatch, tmp_path):
    """The toy front-end, installed (asked after graphaudit's frameworks); the options each of its runs received."""
    received = []

    def recognise(result, target):
        return result["toy"] if isinstance(result, dict) and "toy" in result else None

    def audit_toy(target, options, own):
        received.append((options, dict(own)))
        cost, wrt = target
        return ga.audit(cost, wrt, commutative=options.commutative)

    module = types.ModuleType("toy_frontend")
    module.CLI = CliFrontend(name="Toy", returns="a dict {'toy': (cost, wrt)}", options=frozenset({"commutative", "group"}),
                             recognise=recognise, audit=audit_toy, example="toy.py:target")
    monkeypatch.setitem(sys.modules, "toy_frontend", module)
    monkeypatch.syspath_prepend(str(install_frontends(tmp_path / "site", "toy_frontend", {"toy": "toy_frontend"})))
    (tmp_path / "toy.py").write_text(TOY_TARGET)
    return tmp_path / "toy.py", received


def test_the_helps_show_the_new_front_end(toy, capsys):
    owners = [name for name, frontend in example_targets().items() if "group" in frontend.options]
    assert owners == ["JAX", "Toy"]
    code, out, err = run(["--help"], capsys)
    assert code == 0 and "Toy               graphaudit audit toy.py:target" in out
    code, out, err = run(["audit", "--help"], capsys)
    text = " ".join(out.split())  # argparse wraps the options' help
    assert code == 0
    assert "Toy: a dict {'toy': (cost, wrt)} options: --commutative, --group" in text
    assert "--group {module} JAX and Toy targets: one separate grad call per module" in text


def test_the_new_front_end_audits_its_target_with_the_options_given(toy, capsys):
    path, received = toy
    code, out, err = run(["audit", f"{path}:target", "--commutative", "--group", "module", "--json", "-",
                          "--no-timings"], capsys)
    assert code == 0, err
    assert received == [(AuditOptions(commutative=True), {"group": "module"})]
    expected = ga.audit(*toy_graph(), commutative=True).to_json(timings=False)
    assert without_lines(json.loads(out)) == without_lines(json.loads(expected))


def without_lines(data):
    """A report's data less the user's lines: the target file and toy_graph build the same graph on other lines."""
    if isinstance(data, dict):
        return {k: without_lines(v) for k, v in data.items() if k not in ("source", "where")}
    return [without_lines(v) for v in data] if isinstance(data, list) else data


def test_an_option_the_new_front_end_does_not_honour_is_refused(toy, capsys):
    path, received = toy
    code, out, err = run(["audit", f"{path}:target", "--measure"], capsys)
    assert_one_line_error(code, out, err)
    assert f"--measure applies to PyTorch, JAX and graphaudit graph targets only; {path}:target is a Toy target" in err
    assert received == []
