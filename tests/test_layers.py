"""The import graph is layered (README, "Layout"): a package imports only from the layers
below it, never from a package beside it or above it — imports inside functions count.

A lower domain that must let a higher one take part calls a hook (backend/core/hooks.py)
instead of importing it. ``backend/domains.py`` imports every domain (their tables and
hooks), so it sits above them and below what runs them all (the demo, the benchmarks'
data, the web layer). The entry points (the app, the CLI, the arq worker) sit above
everything and may import anything; nothing imports them but each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

BACKEND = Path(__file__).resolve().parent.parent / "backend"

# bottom to top; packages in one layer may not import each other
LAYERS: list[set[str]] = [
    {"core"},
    {"authz"},
    {"tenants"},
    {"cases"},
    {"notifications"},
    {"evaluations", "rosters"},
    {"stats"},
    {"jobs"},
    {"domains"},
    {"benchdata", "demo", "web"},
    {"schema"},
]
ENTRY_POINTS = {"backend.app", "backend.cli", "backend.jobs.worker"}


def _module(path: Path) -> str:
    parts = path.relative_to(BACKEND.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package(module: str) -> str:
    return module.split(".")[1] if module.count(".") else module


def _layer(package: str) -> int:
    for n, layer in enumerate(LAYERS):
        if package in layer:
            return n
    raise AssertionError(f"backend/{package}/ is in no layer: add it to LAYERS (and README)")


def _is_module(name: str) -> bool:
    relative = Path(*name.split(".")[1:]) if name.count(".") else Path()
    return (BACKEND / relative).with_suffix(".py").exists() or (BACKEND / relative).is_dir()


def _imports(path: Path) -> set[str]:
    """The backend modules ``path`` imports (``from pkg import module`` is that module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.add(name if _is_module(name) else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {m for m in found if m == "backend" or m.startswith("backend.")}


def _edges() -> list[tuple[str, str]]:
    return [
        (_module(path), target)
        for path in sorted(BACKEND.rglob("*.py"))
        for target in _imports(path)
    ]


def test_every_package_imports_only_from_the_layers_below_it() -> None:
    wrong = []
    for source, target in _edges():
        if source in ENTRY_POINTS or target.count(".") == 0:
            continue
        if target in ENTRY_POINTS:
            wrong.append(f"{source} imports the entry point {target}")
            continue
        src, dst = _package(source), _package(target)
        if src in {"app", "cli"} or src == dst:
            continue
        if _layer(dst) >= _layer(src):
            wrong.append(f"{source} -> {target} ({src} may not import {dst})")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_module_imports_itself_round_a_cycle() -> None:
    """Within a package too: module A importing B importing A is a cycle (tarjan)."""
    graph: dict[str, set[str]] = {}
    for source, target in _edges():
        graph.setdefault(source, set()).add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, cycles


def test_the_layout_in_the_readme_names_every_package() -> None:
    readme = (BACKEND.parent / "README.md").read_text(encoding="utf-8")
    packages = {p.name for p in BACKEND.iterdir() if (p / "__init__.py").exists()}
    missing = sorted(p for p in packages if f"backend/{p}/" not in readme)
    assert not missing, f"README's layout table lacks {missing}"
