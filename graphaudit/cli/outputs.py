"""The files a command writes: checked before any work (a bad path fails in a second, not after the audit)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from graphaudit.cli.usage import UsageError

INSTALL_HINT = "install Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz)"
PICTURES = ("png", "svg")  # a picture's file name must end in its format


def check_outputs(args: argparse.Namespace, flags: tuple[str, ...]) -> None:
    """Each ``--flag PATH`` given must be writable (``--json -`` is stdout), and a picture's name end in its format."""
    for flag in flags:
        path = getattr(args, flag)
        if path is None or (flag == "json" and path == "-"):
            continue
        check_writable(Path(path), f"--{flag}")
        if flag in PICTURES and Path(path).suffix.lower() != f".{flag}":
            raise UsageError(f"--{flag} {path}: the file name must end in .{flag}")


def check_writable(path: Path, flag: str) -> None:
    """Fail early, before any work, if ``path`` cannot be written."""
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(f"{flag} {path}: folder {folder} does not exist")
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a folder, not a file")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: folder {folder} is not writable")


def write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def render(report: Any, path: Path, view: str) -> Path:
    """``report.render``; a missing Graphviz becomes a one-line error with the install hint."""
    from graphaudit.views.draw import GraphvizMissingError

    try:
        return Path(report.render(str(path), view=view))
    except GraphvizMissingError as exc:
        message = str(exc)
        raise UsageError(message if "install" in message.lower() else f"{message}; {INSTALL_HINT}") from exc
