"""The layout's rules, checked by walking every import of the package (issue 20).

Imports inside functions count too: a lazy import keeps a dependency out of start-up time, not out of the
design. `if TYPE_CHECKING:` imports do not count (they never run).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "python"
MIGRATIONS = "runlink.tracker.migrations"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((PACKAGE_ROOT / "runlink").rglob("*.py")):
        name = _module_name(path)
        if not name.startswith(MIGRATIONS) and ".example_dags" not in name:
            found[name] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported(name: str, path: Path) -> set[str]:
    """The runlink modules `name` imports, resolved to modules that exist (`from pkg import sub` -> pkg.sub)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            skip.update(id(child) for inner in node.body for child in ast.walk(inner))
    targets: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    resolved = set()
    for target in targets:
        while target and target not in MODULES:
            target = target.rpartition(".")[0]
        if target.startswith("runlink") and target != name:
            resolved.add(target)
    return resolved


GRAPH = {name: _imported(name, path) for name, path in MODULES.items()}


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _violations(importer_prefixes: tuple[str, ...], imported_prefix: str) -> list[str]:
    return _imports_of([a for a in GRAPH if any(_within(a, p) for p in importer_prefixes)], imported_prefix)


def _imports_of(importers: list[str], imported_prefix: str) -> list[str]:
    return sorted(f"{a} imports {b}" for a in importers for b in GRAPH[a] if _within(b, imported_prefix))


def _cycles(prefix: str) -> list[list[str]]:
    """Strongly connected components of more than one module among the modules under `prefix` (Tarjan)."""
    nodes = [n for n in GRAPH if _within(n, prefix)]
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for dep in GRAPH[node]:
            if not _within(dep, prefix) or _is_ancestor_package(dep, node):
                continue
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in nodes:
        if node not in index:
            visit(node)
    return found


def _is_ancestor_package(dep: str, node: str) -> bool:
    """A module importing its own package's `__init__` (which re-exports it) is not a design cycle."""
    return node.startswith(dep + ".") and MODULES[dep].name == "__init__.py"


def test_the_walk_sees_the_package() -> None:
    assert "runlink.tracker.app" in GRAPH
    assert "runlink.tracker.models" in GRAPH["runlink.tracker.app"] or any(
        _within(d, "runlink.tracker") for d in GRAPH["runlink.tracker.app"])


def test_no_import_cycle_between_tracker_modules() -> None:
    assert _cycles("runlink.tracker") == []


def test_no_import_cycle_in_the_agent() -> None:
    assert _cycles("runlink") == [] or all(any(_within(m, "runlink.tracker") for m in c) for c in _cycles("runlink"))


def test_ui_and_alerts_import_nothing_from_routes() -> None:
    assert _violations(("runlink.tracker.ui", "runlink.tracker.alerts"), "runlink.tracker.routes") == []


def test_storage_imports_no_layer_above_it() -> None:
    storage = ("runlink.tracker.models", "runlink.tracker.db", "runlink.tracker.sqlutil")
    for upper in ("runlink.tracker.routes", "runlink.tracker.ui", "runlink.tracker.ingest",
                  "runlink.tracker.alerts", "runlink.cli"):
        assert _violations(storage, upper) == []


def test_agent_code_never_imports_the_tracker() -> None:
    """Airflow workers and Spark drivers load the agent; the tracker's dependencies must never follow."""
    agent = [n for n in GRAPH if not _within(n, "runlink.tracker") and not _within(n, "runlink.cli")
             and n != "runlink.__main__"]
    assert _imports_of(agent, "runlink.tracker") == []


def test_the_tracker_never_imports_the_cli() -> None:
    assert _violations(("runlink.tracker",), "runlink.cli") == []


def test_routes_are_the_only_importers_of_routes() -> None:
    importers = defaultdict(set)
    for a, deps in GRAPH.items():
        for b in deps:
            if _within(b, "runlink.tracker.routes") and not _within(a, "runlink.tracker.routes"):
                importers[b].add(a)
    allowed = {"runlink.tracker.app", "runlink.tracker.openapi_doc"}
    assert {b: sorted(a - allowed) for b, a in importers.items() if a - allowed} == {}
