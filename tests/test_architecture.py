"""The import graph as `docs/layout.md` draws it: no cycle, and no arrow from the core up into
the dialects or the wiring. (`make check` runs the same rules as import-linter contracts.)"""

from __future__ import annotations

import grimp

CORE = ("canonical", "jobs", "worker", "engines", "webhooks", "storage", "db", "janitor",
        "images", "netsafety", "events")
ABOVE_THE_CORE = ("api", "app", "services", "dialects", "cli")


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("roomrender")


def _package(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_the_import_graph_has_no_cycle() -> None:
    assert _cycles(_graph()) == []


def test_the_core_never_imports_a_dialect_or_the_wiring() -> None:
    graph = _graph()
    arrows = [
        (module, imported)
        for module in sorted(graph.modules) if _package(module) in CORE
        for imported in graph.find_modules_directly_imported_by(module)
        if _package(imported) in ABOVE_THE_CORE
    ]
    assert arrows == []


def test_the_canonical_vocabulary_imports_nothing_of_roomrender() -> None:
    graph = _graph()
    arrows = [
        (module, imported)
        for module in sorted(graph.modules) if _package(module) == "canonical"
        for imported in graph.find_modules_directly_imported_by(module)
        if _package(imported) != "canonical"
    ]
    assert arrows == []
