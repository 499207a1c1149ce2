"""The progress bar: drawn for a person at a terminal, silent in pipes, logs and with --quiet."""

import io

import graphaudit as ga
from graphaudit import models, progress
from graphaudit.cli import main


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_separate_grad_calls_draw_a_bar_on_a_terminal():
    model = models.deep_chain(depth=3, width=4, batch=2)
    stream = Terminal()
    with progress.showing(progress.Progress(stream, delay=0)):
        ga.audit(model.loss, model.params)
    text = stream.getvalue()
    assert f"separate grad calls [{'#' * progress.WIDTH}] {len(model.params)}/{len(model.params)}" in text
    assert text.endswith("\n")


def test_nothing_is_drawn_off_a_terminal_or_before_the_delay():
    model = models.deep_chain(depth=3, width=4, batch=2)
    for stream, delay in ((io.StringIO(), 0), (Terminal(), 60)):
        with progress.showing(progress.Progress(stream, delay=delay)):
            ga.audit(model.loss, model.params)
        assert stream.getvalue() == ""
    progress.step("no bar active", 1, 2)  # a no-op


def test_quiet_cli_writes_nothing_to_stderr(capsys):
    assert main(["audit", "deep_chain", "--depth", "3", "--quiet"]) == 0
    assert capsys.readouterr().err == ""
