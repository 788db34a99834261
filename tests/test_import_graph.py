"""The package's shape, checked from its source: no import cycles, schemas at the bottom,
gen / curate / train / eval as siblings.

Imports are read with `ast` (module level and inside functions alike, since a lazy import
closes a cycle just as surely), resolved to the module they load: `from pkg import name`
points at `pkg.name` when that is a submodule, otherwise at `pkg` (its `__init__`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT_PACKAGE = "distill"
SIBLINGS = ("gen", "curate", "train", "eval")
GROUND = "schemas"


def module_files() -> dict[str, Path]:
    modules = {}
    for path in (SRC / ROOT_PACKAGE).rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _resolve_from(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The distill modules that `module` imports anywhere in its body."""
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = _resolve_from(node, module, path.name == "__init__.py")
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                targets.add(submodule if submodule in known else source)
    return {t for t in targets if t in known and t != module}


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    known = set(files)
    return {module: imports_of(module, path, known) for module, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def top_package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_relative_and_submodule_imports_resolve(tmp_path: Path) -> None:
    path = tmp_path / "mod.py"
    path.write_text("from . import sibling\nfrom .pkg import thing\ndef f():\n import x.y\n")
    known = {"p.mod", "p.sibling", "p.pkg", "x.y"}
    assert imports_of("p.mod", path, known) == {"p.sibling", "p.pkg", "x.y"}


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_schemas_is_the_ground_floor() -> None:
    graph = import_graph()
    upward = {
        module: sorted(t for t in targets if top_package(t) != GROUND)
        for module, targets in graph.items()
        if top_package(module) == GROUND
    }
    assert not {m: t for m, t in upward.items() if t}, upward


@pytest.mark.parametrize("package", SIBLINGS)
def test_siblings_do_not_import_each_other(package: str) -> None:
    graph = import_graph()
    crossing = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if top_package(module) == package
        for target in targets
        if top_package(target) in SIBLINGS and top_package(target) != package
    )
    assert not crossing, crossing
