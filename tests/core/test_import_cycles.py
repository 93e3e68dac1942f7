"""No two modules of ocibuild import each other, directly or around a longer loop.

Every import counts: at the top of a module, inside a function, and under `if TYPE_CHECKING:`
(a cycle there is still a knot a reader has to untie). A package's `__init__` runs before any
of its submodules, so importing `a.b.c` is an arrow to `a.b.c` only, not to `a` and `a.b`: a
package that re-exports its submodules makes no loop with them.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every module of `package` under `root`."""
    out: dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports_of(name: str, path: Path, modules: Mapping[str, Path]) -> set[str]:
    """The modules of `modules` that module `name` (at `path`) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in modules else base)
    return {m for m in found if m in modules and m != name}


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    modules = module_files(root, package)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def strongly_connected(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The groups of two or more modules that reach each other (Tarjan's algorithm, with an
    explicit stack)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while not group or group[-1] != node:
                        group.append(stack.pop())
                        on_stack.discard(group[-1])
                    if len(group) > 1:
                        groups.append(sorted(group))
            elif target not in index:
                index[target] = low[target] = len(index)
                stack.append(target)
                on_stack.add(target)
                work.append((target, iter(sorted(graph[target]))))
            elif target in on_stack:
                low[node] = min(low[node], index[target])
    return groups


def one_cycle(graph: Mapping[str, set[str]], group: list[str]) -> list[str]:
    """A shortest loop from the group's first module back to it, staying in the group."""
    start = group[0]
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for target in sorted(graph[node] & set(group)):
            if target == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [start, *reversed(path[:-1]), start]
            if target not in came_from:
                came_from[target] = node
                queue.append(target)
    raise AssertionError(f"{group} is no strongly connected group")


def cycles(root: Path, package: str) -> list[str]:
    graph = import_graph(root, package)
    return [
        f"{' -> '.join(one_cycle(graph, group))} (all of: {', '.join(group)})"
        for group in sorted(strongly_connected(graph))
    ]


def test_no_module_of_ocibuild_is_part_of_an_import_cycle() -> None:
    assert len(import_graph(ROOT, "ocibuild")) > 100
    assert cycles(ROOT, "ocibuild") == []


def test_the_check_finds_a_cycle_through_any_kind_of_import(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from pkg.a import A\n")
    (package / "a.py").write_text("from pkg import sub\nA = 1\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("def f():\n    from ..c import C\n")
    (package / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.sub.b\nC = 1\n"
    )
    (package / "d.py").write_text("import pkg.a\n")
    assert cycles(tmp_path, "pkg") == ["pkg.c -> pkg.sub.b -> pkg.c (all of: pkg.c, pkg.sub.b)"]
    (package / "a.py").write_text("from pkg.d import *\nA = 1\n")
    assert cycles(tmp_path, "pkg") == [
        "pkg.a -> pkg.d -> pkg.a (all of: pkg.a, pkg.d)",
        "pkg.c -> pkg.sub.b -> pkg.c (all of: pkg.c, pkg.sub.b)",
    ]
