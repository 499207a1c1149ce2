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


def test_the_graph_and_the_ops_are_below_everything():
    graph = import_graph()
    assert not any(target.startswith("graphaudit.ops") for target in graph.successors("graphaudit.graph"))
    for module in ("graphaudit.graph", "graphaudit.ops", "graphaudit.merge", "graphaudit.grad", "graphaudit.report"):
        below = nx.descendants(graph, module)
        assert not any(m.startswith(("graphaudit.frontends", "graphaudit.cli")) for m in below), module


def test_report_and_draw_name_no_framework():
    for name in ("report.py", "draw.py", "audit.py", "rewrites.py", "semantic.py", "semantic_work.py"):
        text = (PACKAGE / name).read_text()
        assert not FRAMEWORKS.search(text), f"{name} names {FRAMEWORKS.search(text).group(0)}"


def test_the_check_sees_imports_and_cycles():
    """The helpers above would find a cycle if there were one."""
    graph = nx.DiGraph([("a", "b"), ("b", "a")])
    assert list(nx.simple_cycles(graph))
    modules = {"graphaudit", "graphaudit.ops", "graphaudit.graph"}
    assert imported_modules(PACKAGE / "grad.py", modules | {"graphaudit.grad"}) >= {"graphaudit.ops", "graphaudit.graph"}
