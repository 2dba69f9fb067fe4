"""The package's layers: imports point one way, cli -> delivery -> vendors -> retrieval ->
summary -> capture -> the small shared modules, and no package imports one above it (a lazy
import inside a function counts as much as one at the top). The test tools (simulators,
demo) sit beside the command line, and nothing the actions run imports them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRP = Path(__file__).resolve().parent.parent / "srp"

# Highest first. A module may import its own unit and any unit below it.
LAYERS = [
    {"cli", "__main__"},
    {"demo"},
    {"simulators"},
    {"delivery"},
    {"vendors"},
    {"retrieval"},
    {"summary"},
    {"capture"},
    {"errors", "redaction", "atomic", "oplog", "timestamps", "hashing", "__init__"},
]
TEST_TOOLS = {"simulators", "demo"}


def unit_of(module: str) -> str:
    """srp.retrieval.run -> retrieval; srp -> __init__."""
    parts = module.split(".")
    assert parts[0] == "srp", module
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRP.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every srp import in a file, at any depth."""
    found = []
    package = module_name(path) if path.name == "__init__.py" else \
        module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:   # relative: resolve against the package
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return [(line, name) for line, name in found if name == "srp" or name.startswith("srp.")]


def package_graph() -> dict[str, dict[str, str]]:
    """unit -> {imported unit: "file:line" of one such import}."""
    graph: dict[str, dict[str, str]] = {}
    for path in sorted(SRP.rglob("*.py")):
        unit = unit_of(module_name(path))
        for line, name in imports_of(path):
            target = unit_of(name)
            if target != unit:
                graph.setdefault(unit, {}).setdefault(
                    target, f"{path.relative_to(SRP.parent).as_posix()}:{line}")
    return graph


def layer(unit: str) -> int:
    for number, units in enumerate(LAYERS):
        if unit in units:
            return number
    pytest.fail(f"srp.{unit} is in no layer of this test: add it to LAYERS")


def cycle_in(graph: dict[str, dict[str, str]]) -> list[str] | None:
    """One cycle of the graph as [a, b, ..., a], or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in graph.get(node, {}):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_package_imports_one_above_it():
    upward = [f"{where}: srp.{unit} imports srp.{target}"
              for unit, targets in package_graph().items()
              for target, where in targets.items() if layer(target) < layer(unit)]
    assert not upward, "\n".join(upward)


def test_no_package_level_import_cycle():
    graph = package_graph()
    cycle = cycle_in(graph)
    assert cycle is None, " -> ".join(
        f"{a} ({graph[a][b]})" for a, b in zip(cycle, cycle[1:])) + f" -> {cycle[-1]}"


def test_what_the_actions_run_never_imports_the_test_tools():
    shipped = [f"{where}: srp.{unit} imports srp.{target}"
               for unit, targets in package_graph().items()
               if unit not in TEST_TOOLS | {"cli", "__main__"}
               for target, where in targets.items() if target in TEST_TOOLS]
    assert not shipped, "\n".join(shipped)


def test_the_cycle_check_finds_a_cycle():
    # The check itself can fail: a graph with a loop through three units is caught.
    graph = {"a": {"b": "x:1"}, "b": {"c": "x:2"}, "c": {"a": "x:3"}, "d": {"a": "x:4"}}
    assert cycle_in(graph) == ["a", "b", "c", "a"]
    assert cycle_in({"a": {"b": "x:1"}, "b": {}}) is None


def test_the_layer_check_sees_lazy_imports():
    # The command line imports each vendor inside its command: that import is seen.
    assert "srp.vendors.netmon" in {name for _line, name in imports_of(SRP / "cli.py")}
