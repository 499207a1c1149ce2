"""The layering of docs/ARCHITECTURE.md: no import cycle, and a core that names no framework."""

from __future__ import annotations

import ast
import re

import networkx as nx
from conftest import ROOT

PACKAGE = ROOT / "graphaudit"
FRAMEWORKS = re.compile(r"\b(jax|JAX|XLA|pytensor|PyTensor|MergeOptimizer|torch|PyTorch|aten|pymc|PyMC)\b")


def module_name(path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path, modules: set[str]) -> set[str]:
    """graphaudit modules that ``path`` imports, anywhere but under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        for child in node.body
        for inner in ast.walk(child)
    }
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def import_graph() -> nx.DiGraph:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    graph = nx.DiGraph()
    for path in paths:
        name = module_name(path)
        graph.add_node(name)
        for target in imported_modules(path, modules):
            # a module importing its own package's __init__ for a helper (require) is not a layer going back up
            if target != name and not (target == "graphaudit" and name != "graphaudit"):
                graph.add_edge(name, target)
    return graph


def test_no_import_cycle():
    graph = import_graph()
    cycles = sorted(nx.simple_cycles(graph), key=len)
    assert not cycles, f"import cycles: {cycles[:5]}"


# The layers, bottom up: a module imports only from its own layer and those below it.
LAYERS = [
    ("helpers", ("graphaudit.errors", "graphaudit.progress")),
    ("core", ("graphaudit.core", "graphaudit.models")),  # models: example networks, built from core ops
    ("analysis", ("graphaudit.analysis",)),
    ("views", ("graphaudit.views",)),
    ("frontends", ("graphaudit.frontends",)),
    ("cli", ("graphaudit.cli",)),
    ("api", ("graphaudit",)),  # the package itself, models, __main__
]
# The one permitted arrow upwards: a Report draws itself through lazy imports (pandas' DataFrame.plot).
UPWARD_ALLOWED = {("graphaudit.analysis.report", "graphaudit.views")}


def layer_of(module: str) -> int:
    for level, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return level
    raise AssertionError(f"{module} is in no layer")


def test_every_module_imports_only_its_layer_and_those_below():
    graph = import_graph()
    upward = [(a, b) for a, b in graph.edges
              if layer_of(b) > layer_of(a) and not any(a == x and b.startswith(y) for x, y in UPWARD_ALLOWED)]
    assert not upward, f"imports going up a layer: {sorted(upward)}"


def test_the_helpers_import_nothing_of_graphaudit():
    graph = import_graph()
    for helper in LAYERS[0][1]:
        assert not list(graph.successors(helper)), helper


def test_the_layer_packages_hold_every_module():
    top_level = {p.stem for p in PACKAGE.glob("*.py")}
    assert top_level == {"__init__", "__main__", "errors", "models", "progress", "testing"}
    for path in PACKAGE.rglob("*.py"):
        layer_of(module_name(path))


def test_report_and_draw_name_no_framework():
    for name in ("analysis/report.py", "views/draw.py", "analysis/audit.py", "analysis/rewrites.py",
                 "analysis/semantic.py", "analysis/semantic_work.py"):
        text = (PACKAGE / name).read_text()
        assert not FRAMEWORKS.search(text), f"{name} names {FRAMEWORKS.search(text).group(0)}"


def test_the_check_sees_imports_and_cycles():
    """The helpers above would find a cycle if there were one."""
    graph = nx.DiGraph([("a", "b"), ("b", "a")])
    assert list(nx.simple_cycles(graph))
    modules = {"graphaudit", "graphaudit.core.ops", "graphaudit.core.graph"}
    assert imported_modules(PACKAGE / "core" / "grad.py", modules | {"graphaudit.core.grad"}) >= {
        "graphaudit.core.ops", "graphaudit.core.graph"}
    assert layer_of("graphaudit.core.grad") < layer_of("graphaudit.analysis.merge") < layer_of("graphaudit.cli")


def test_the_architecture_page_names_every_module():
    """Every module by its path under graphaudit/ (a package's ``__init__.py`` may go unnamed: it re-exports)."""
    page = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    modules = [str(path.relative_to(PACKAGE)) for path in sorted(PACKAGE.rglob("*.py")) if path.name != "__init__.py"]
    missing = [module for module in modules if f"`{module}`" not in page]
    assert not missing, f"docs/ARCHITECTURE.md does not name {missing}"
