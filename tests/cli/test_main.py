"""The entry point: usage errors, --help, ``python -m graphaudit``, missing extras, a closed pipe."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys

import pytest

from cli.helpers import ROOT, assert_one_line_error, example_targets, module_env, run
from graphaudit.cli import COMMANDS, main

@pytest.mark.parametrize(
    "argv",
    [
        ["audit", "seed_mlp", "--depth", "3"],  # option that does not apply
        ["audit", "deep_chain", "--batch", "0"],  # not positive
        ["audit", "deep_chain", "--width", "x"],
        ["audit", "deep_chain", "--view", "sideways"],
        ["audit", "deep_chain", "--png", "picture.svg"],  # suffix does not match
        ["audit"],  # no target
        ["audit", "seed_mlp", "--no-such-flag"],
        ["no-such-command"],
    ],
    ids=lambda argv: " ".join(argv),
)
def test_bad_usage_exits_2_with_one_line(argv, capsys):
    assert_one_line_error(*run(argv, capsys))


def test_traceback_flag_shows_the_error(model_file):
    with pytest.raises(Exception):
        main(["audit", f"{model_file}:raises", "--traceback"])


@pytest.mark.parametrize("command", ["demo", "audit", "examples"])
def test_command_help(command, capsys):
    code, out, err = run([command, "--help"], capsys)
    assert code == 0
    assert out.startswith(f"usage: graphaudit {command}")


def test_no_command_shows_help_and_exits_2(capsys):
    code, out, err = run([], capsys)
    assert code == 2
    assert "usage: graphaudit" in err


@pytest.mark.subprocess
def test_python_m_graphaudit_help():
    result = subprocess.run(
        [sys.executable, "-m", "graphaudit", "--help"], capture_output=True, text=True, env=module_env(), timeout=60
    )
    assert result.returncode == 0, result.stderr
    for command in ("demo", "audit", "examples"):
        assert command in result.stdout
    assert result.stderr == ""


@pytest.mark.subprocess
def test_python_m_graphaudit_bad_input(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "graphaudit", "audit", str(tmp_path / "missing.py") + ":build"],
        capture_output=True,
        text=True,
        env=module_env(),
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr


def test_help_shows_a_target_of_each_front_end(capsys):
    """Derived from the front-ends' declarations: every front-end's example target, in both helps."""
    from graphaudit.frontends import cli_frontends

    for argv in (["--help"], ["audit", "--help"]):
        code, out, err = run(argv, capsys)
        assert code == 0 and err == ""
        lines = out.splitlines()
        for frontend in cli_frontends():
            line = next((line for line in lines if line.endswith(f"graphaudit audit {frontend.example}")), "")
            assert line.split()[:len(frontend.name.split())] == frontend.name.split(), (frontend.name, out)


def _optional_dependencies() -> dict[str, list[str]]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def _missing_extra_cases():
    cases = {"growth --png": ("matplotlib", "plots", ["growth", "deep_chain", "--depths", "4,8", "--png", "{tmp}/g.png"]),
             "audit --semantic": ("egglog", "egraph", ["audit", "deep_chain", "--depth", "3", "--semantic"])}
    for frontend in example_targets().values():  # a framework's example target, its framework missing
        if frontend.module:
            cases[frontend.name] = (frontend.module, frontend.extra, ["audit", frontend.example])
    return cases


@pytest.mark.subprocess
@pytest.mark.parametrize("case", _missing_extra_cases())
def test_a_missing_extra_is_one_line_naming_it(case, tmp_path):
    module, extra, argv = _missing_extra_cases()[case]
    requirements = _optional_dependencies()[extra]  # the extra named is one pyproject.toml declares, with the module
    assert module in [re.match(r"[\w.-]+", requirement).group(0).lower() for requirement in requirements]
    without = f"import sys\nsys.modules[{module!r}] = None\nfrom graphaudit.cli import main\nsys.exit(main(sys.argv[1:]))"
    result = subprocess.run([sys.executable, "-c", without, *(a.format(tmp=tmp_path) for a in argv)], cwd=ROOT,
                            capture_output=True, text=True, env=module_env(), timeout=300)
    assert_one_line_error(result.returncode, result.stdout, result.stderr)
    assert f"pip install 'graphaudit[{extra}]'" in result.stderr and module in result.stderr


@pytest.mark.subprocess
@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("argv", [["examples"], ["--help"], ["audit", "deep_chain", "--depth", "2", "--quiet"]],
                         ids=" ".join)
def test_a_reader_gone_away_ends_quietly(argv, unbuffered):
    """``graphaudit ... | head``: no 'error: BrokenPipeError', no 'Exception ignored' at exit; exit 1 as Python's recipe."""
    env = {name: value for name, value in module_env().items() if name != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    read, write = os.pipe()
    os.close(read)  # the reader has gone before the first byte is written: every write fails
    try:
        result = subprocess.run([sys.executable, "-m", "graphaudit", *argv], stdout=write, stderr=subprocess.PIPE,
                                text=True, env=env, timeout=120)
    finally:
        os.close(write)
    assert result.stderr == ""
    # argparse itself ignores a failed write of its help; buffered, the failure shows when main flushes
    assert result.returncode == (0 if argv == ["--help"] and unbuffered else 1)


HEAVY_COMMANDS = ("demo", "audit", "growth")  # examples.py is also the table of examples that targets read


@pytest.mark.subprocess
@pytest.mark.parametrize("argv", [["--help"], ["examples"], ["audit", "--help"], ["growth", "--help"]], ids=" ".join)
def test_a_command_imports_only_its_own_module(argv):
    code = ("import sys\nfrom graphaudit.cli import main\nmain(sys.argv[1:])\n"
            "print(sorted(name for name in sys.modules if name.startswith('graphaudit.cli.')), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=module_env(),
                            timeout=120)
    loaded = set(ast.literal_eval(result.stderr.splitlines()[-1]))
    heavy = {COMMANDS[name][0] for name in HEAVY_COMMANDS}
    assert loaded & heavy == ({COMMANDS[argv[0]][0]} & heavy if argv[0] in COMMANDS else set()), loaded
