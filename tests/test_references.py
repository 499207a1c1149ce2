"""The repository is self-contained: no file in it names a file that is not in it.

Markdown pages (``SEED.md``, ``docs/seed.md``), paths into the repository's own folders
(``examples/jax_seed_mlp.py``) and paths out of it (``../shared``, ``/work/``) are checked in
every text file: a reader who only has the repository can open whatever it points to.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = {"__pycache__", "graphaudit-out", "build", "dist"}  # and every folder whose name starts with a dot
TEXT = {".py", ".md", ".toml", ".js", ".json", ".txt", ".cfg", ".yml", ".yaml", ".html", ".css"}
PAGE = re.compile(r"[\w./-]*\b[\w-]+\.md\b")
FOLDERS = ("examples", "benchmarks", "tests", "docs", "graphaudit")
INSIDE = re.compile(rf"(?<![\w/.-])(?:{'|'.join(FOLDERS)})/[\w./-]*\w")
OUTSIDE = re.compile(r"\.\./shared|/work/")


def text_files() -> list[Path]:
    """Every text file of the repository but this one (whose examples name missing files on purpose)."""
    found = []
    for path in sorted(ROOT.rglob("*")):
        parts = path.relative_to(ROOT).parts
        if any(part in SKIPPED or part.startswith(".") or part.endswith(".egg-info") for part in parts):
            continue
        if path.is_file() and (path.suffix in TEXT or path.name == "Makefile") and path != Path(__file__).resolve():
            found.append(path)
    return found


def dangling(path: Path, text: str, names: set[str]) -> list[str]:
    """What ``text`` (the content of ``path``) names that is not in the repository."""
    def in_repository(name: str, folder: Path) -> bool:
        found = (folder / name).resolve()
        return not name.startswith("/") and found.exists() and ROOT in found.parents

    missing = []
    for match in PAGE.finditer(text):
        page = match.group(0)
        if not (in_repository(page, ROOT) or in_repository(page, path.parent) or ("/" not in page and page in names)):
            missing.append(page)
    for match in INSIDE.finditer(text):
        inside = match.group(0).rstrip(".")
        if not in_repository(inside, ROOT):
            missing.append(inside)
    return missing + [match.group(0) for match in OUTSIDE.finditer(text)]


def test_no_file_names_a_file_that_is_not_in_the_repository():
    files = text_files()
    names = {path.name for path in files}
    assert {"README.md", "ARCHITECTURE.md", "seed.md", "models.py"} <= names  # the walk sees the repository
    problems = []
    for path in files:
        problems += [f"{path.relative_to(ROOT)}: {what}" for what in dangling(path, path.read_text("utf-8"), names)]
    assert not problems, "\n".join(problems)


def test_the_check_sees_what_it_looks_for():
    here = ROOT / "graphaudit" / "models.py"
    names = {"README.md", "seed.md"}
    text = ('SEED.md\'s network; (DESIGN.md, "Pictures"); see ../shared/ANCHORS.md; examples/nowhere.py; '
            "/work/shared/REVIEW.md. Fine: README.md, docs/seed.md, examples/jax_seed_mlp.py:target, graphaudit-out/.")
    assert dangling(here, text, names) == ["SEED.md", "DESIGN.md", "../shared/ANCHORS.md", "/work/shared/REVIEW.md",
                                           "examples/nowhere.py", "../shared", "/work/"]
