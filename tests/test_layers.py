"""The layers point down only, and no modules import each other in a cycle.

streamserver < recorder < retention < signalling: each package may import those below it and
none above; bench may import anything. Checked twice: in the source (every import statement,
those inside functions and under ``if TYPE_CHECKING:`` included, parsed with ast), and at run
time (every module of a package imported in a fresh interpreter, then ``sys.modules`` read),
in the spirit of aiohttp's tests/test_circular_imports.py.

Violations known today, being fixed, are listed once below (KNOWN_UPWARD, KNOWN_LOADED,
KNOWN_CYCLES): the tests fail on any other, and on a listed one that no longer happens, so
remove each entry as it is fixed.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("streamserver", "recorder", "retention", "signalling", "bench")
RANK = {package: rank for rank, package in enumerate(LAYERS)}
TOP = "bench"  # may import anything

# (importing module, imported package) -> why it is still there
KNOWN_UPWARD: dict[tuple[str, str], str] = {}
# (package imported, higher package that got loaded with it) -> why
KNOWN_LOADED: dict[tuple[str, str], str] = {}
# modules that import each other, as a cycle (sorted) -> why
KNOWN_CYCLES: dict[tuple[str, ...], str] = {}


def modules(package: str) -> list[str]:
    names = []
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


ALL_MODULES = {name for package in LAYERS for name in modules(package)}


def source_of(module: str) -> Path:
    path = ROOT.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def imported(module: str) -> Iterator[str]:
    """Every project module ``module`` imports, anywhere in its source."""
    path = source_of(module)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # ``from a import b``: the module a.b where there is one, else a itself
            targets = [
                f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in ALL_MODULES else stem
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in ALL_MODULES:  # ``import a.b.c`` for a name in a.b
                target = target.rpartition(".")[0]
            if target and target != module:
                yield target


GRAPH = {module: set(imported(module)) for module in sorted(ALL_MODULES)}


@pytest.mark.parametrize("package", LAYERS[:-1])
def test_imports_point_down_in_the_source(package: str) -> None:
    found = {
        (module, target.partition(".")[0])
        for module in modules(package)
        for target in GRAPH[module]
        if RANK[target.partition(".")[0]] > RANK[package]
    }
    known = {key for key in KNOWN_UPWARD if key[0].partition(".")[0] == package}
    assert sorted(found - known) == [], "upward imports (a lower layer imports a higher one)"
    assert sorted(known - found) == [], "fixed: remove these from KNOWN_UPWARD"


LOADER = """
import importlib, json, sys
layers, names = json.loads(sys.argv[1])
failed = {}
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed[name] = repr(exc)
loaded = sorted({m.partition(".")[0] for m in sys.modules} & set(layers))
print(json.dumps({"loaded": loaded, "failed": failed}))
"""


@pytest.mark.parametrize("package", LAYERS[:-1])
def test_a_package_loads_nothing_above_it(package: str) -> None:
    """Every module of ``package`` imported in a fresh interpreter, which then holds no higher
    layer (and every module imports: a cycle at import time fails here)."""
    result = subprocess.run(
        [sys.executable, "-c", LOADER, json.dumps([LAYERS, modules(package)])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["failed"] == {}
    found = {(package, p) for p in report["loaded"] if RANK[p] > RANK[package]}
    known = {key for key in KNOWN_LOADED if key[0] == package}
    assert sorted(found - known) == [], "a higher layer got loaded"
    assert sorted(known - found) == [], "fixed: remove these from KNOWN_LOADED"


def cycles(graph: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[tuple[str, ...]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(tuple(sorted(component)))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_no_import_cycles() -> None:
    found = set(cycles(GRAPH))
    assert sorted(found - set(KNOWN_CYCLES)) == [], "modules that import each other"
    assert sorted(set(KNOWN_CYCLES) - found) == [], "fixed: remove these from KNOWN_CYCLES"


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [("a", "b", "c")]
