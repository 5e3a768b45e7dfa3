"""The package graph of chaosrunner/ has no cycle (issue 11.3).

Every `import` and `from ... import` counts, at module level or inside a function,
under `if TYPE_CHECKING:` too: a lazy or type-only import is still a dependency.
Modules directly under chaosrunner/ (errors.py, timestamps.py, ...) are leaves of their
own; a subpackage's modules count as the subpackage.
"""

from __future__ import annotations

import ast
import itertools
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "chaosrunner"


def unit(module: str) -> str:
    """`chaosrunner.engine.runner` -> `engine`; `chaosrunner.errors` -> `errors`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m.startswith("chaosrunner.")}


def package_graph() -> dict[str, dict[str, list[str]]]:
    """unit -> unit it imports -> the files that do."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        source = unit(module)
        for imported in imports_of(path):
            target = unit(imported)
            known = (PACKAGE / target).is_dir() or (PACKAGE / f"{target}.py").exists()
            if known and target != source:
                graph[source][target].append(str(path.relative_to(PACKAGE.parent)))
    return graph


def find_cycle(graph: dict[str, dict[str, list[str]]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def test_the_package_graph_has_no_cycle() -> None:
    graph = package_graph()
    cycle = find_cycle(graph)
    if cycle is not None:
        steps = [f"{a} -> {b} ({', '.join(sorted(set(graph[a][b])))})"
                 for a, b in itertools.pairwise(cycle)]
        raise AssertionError("import cycle between packages:\n  " + "\n  ".join(steps))


def test_spec_is_a_leaf_above_errors() -> None:
    assert set(package_graph()["spec"]) <= {"errors", "timestamps", "secrets"}


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b": ["x"]}, "b": {"c": ["y"]}, "c": {"a": ["z"]}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": ["x"]}}) is None


def test_every_function_level_import_of_chaosrunner_says_why() -> None:
    """Issue 11.7: a lazy import pays (a heavy client, a cycle inside a package, process
    state) and says so in a comment on the line or the line above."""
    silent: list[str] = []
    for path in PACKAGE.rglob("*.py"):
        lines = path.read_text().splitlines()
        for function in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if not (isinstance(node, ast.ImportFrom) and node.level == 0
                        and (node.module or "").startswith("chaosrunner")):
                    continue
                said = "#" in lines[node.lineno - 1]
                for above in reversed(lines[:node.lineno - 1]):  # this block of imports
                    if above.strip().startswith("#"):
                        said = True
                    if not above.strip().startswith(("#", "from chaosrunner")):
                        break
                if not said:
                    silent.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert not silent, "function-level imports without a reason: " + ", ".join(silent)
