"""The import graph of the product packages, as grimp builds it (every import, TYPE_CHECKING and function-local
ones included): no cycle anywhere, between modules or between the packages inside each top-level package.

The layers and forbidden imports themselves are import-linter's contracts (.importlinter, run by ``make test``);
this checks what they cannot say at once: that the whole module graph is acyclic.
"""

from __future__ import annotations

from collections.abc import Iterable

import grimp
import pytest

PRODUCT = ("switch", "schemes", "hsm", "processors", "atmp", "settlement")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PRODUCT)


def _cycles(nodes: Iterable[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node, or with a self-loop (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(root: str) -> None:
        nonlocal counter
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
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
                if len(component) > 1 or node in edges.get(node, ()):
                    found.append(sorted(component))

    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles("abc", {"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c"]]
    assert _cycles("abc", {"a": {"b"}, "b": {"c"}}) == []


def test_no_module_imports_itself_back(graph: grimp.ImportGraph) -> None:
    modules = [m for m in graph.modules if m.split(".")[0] in PRODUCT]
    assert len(modules) > 150 and "switch.runtime.node" in modules and "processors.cell.host" in modules
    edges = {m: {i for i in graph.find_modules_directly_imported_by(m) if i.split(".")[0] in PRODUCT}
             for m in modules}
    assert _cycles(modules, edges) == []


@pytest.mark.parametrize("depth", [2, 3])
def test_no_cycle_between_the_packages_inside_each_top_level_package(graph: grimp.ImportGraph, depth: int) -> None:
    """Modules folded into their package at ``depth`` (switch.runtime, switch.exchange, processors.cell, ...):
    the packages of one top-level package form no cycle either. (Between top-level packages the dependency is
    two-way by design: the domain packages use switch's model, and switch's command line composes them.)"""
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        top = module.split(".")[0]
        if top not in PRODUCT:
            continue
        source = ".".join(module.split(".")[:depth])
        for imported in graph.find_modules_directly_imported_by(module):
            if imported.split(".")[0] != top:
                continue
            target = ".".join(imported.split(".")[:depth])
            if target != source and not target.startswith(source + ".") and not source.startswith(target + "."):
                edges.setdefault(source, set()).add(target)
    assert _cycles(set(edges) | {t for ts in edges.values() for t in ts}, edges) == []
