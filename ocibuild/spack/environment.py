"""The environment Spack prints for installed packages: `spack load --sh ROOT...` and, for a
view, `spack env activate --sh` (`spack/user_environment.py`, `spack/build_environment.py:
SetupContext`, `spack/util/environment.py`), computed from what the image holds, to be frozen
into its config.

`spack load`: for each package of the roots' link and run closure, leaves first, the prefix
inspections (`bin` -> PATH, `man` and `share/man` -> MANPATH, `share/aclocal` -> ACLOCAL_PATH,
`lib/pkgconfig`, `lib64/pkgconfig`, `share/pkgconfig` -> PKG_CONFIG_PATH, the prefix ->
CMAKE_PREFIX_PATH) of the directories that exist and are not system directories (externals
too: the external glibc at /usr adds /usr/share/man when the image has it); then `bin` and
`bin64` of the roots and of what they run, prepended again; then SPACK_LOADED_HASHES. Nothing
is de-duplicated. `spack env activate` with a view: every inspection of the view's root
whether it exists or not, then the same per-package changes with each prefix replaced by the
view's root, then duplicates pruned. Values are applied to the image's environment so far,
variable by variable in name order; MANPATH ends with `:` (man's default path).

What packages add in their `setup_run_environment` (Python code of the package recipe, not in
the build cache) cannot be known without Spack; a recipe's `env:` sets it.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ocibuild.spack.cache import Node
from ocibuild.spack.dag import topological

# `modules:prefix_inspections` on Linux, in Spack's order
INSPECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("bin", ("PATH",)),
    ("man", ("MANPATH",)),
    ("share/man", ("MANPATH",)),
    ("share/aclocal", ("ACLOCAL_PATH",)),
    ("lib/pkgconfig", ("PKG_CONFIG_PATH",)),
    ("lib64/pkgconfig", ("PKG_CONFIG_PATH",)),
    ("share/pkgconfig", ("PKG_CONFIG_PATH",)),
    ("", ("CMAKE_PREFIX_PATH",)),
)
SYSTEM_PATHS = ("/", "/usr", "/usr/local")
SYSTEM_DIRS = frozenset(
    [
        posixpath.join(p, s)
        for s in ("bin", "bin64", "include", "lib", "lib64")
        for p in SYSTEM_PATHS
    ]
    + list(SYSTEM_PATHS)
)
LOADED_HASHES = "SPACK_LOADED_HASHES"

# UseMode flags (`spack/build_environment.py`)
ROOT, RUNTIME, RUNTIME_EXECUTABLE, ADDED = 1, 2, 4, 32


@dataclass(frozen=True)
class Change:
    """One modification: prepend `value` to the path list `name`, or prune its duplicates."""

    name: str
    value: str = ""
    prune: bool = False


IsDir = Callable[[str], bool]  # whether an absolute path is a directory of the image


def is_system_path(path: str) -> bool:
    return bool(path) and posixpath.normpath(path) in SYSTEM_DIRS


def _inspect(prefix: str, is_dir: IsDir) -> list[Change]:
    changes = []
    for sub, names in INSPECTIONS:
        path = posixpath.join(prefix, sub) if sub else prefix
        if is_dir(path) and not is_system_path(path):
            changes += [Change(name, path) for name in names]
    return changes


def _runtime_modes(roots: Sequence[Node], nodes: Mapping[str, Node]) -> list[tuple[Node, int]]:
    """Spack's `effective_deptypes(*roots, context=RUN)`: each node reached and how, root to
    leaf."""
    edges: list[tuple[Node | None, Node, frozenset[str]]] = []
    visited: set[str] = set()

    def children(node: Node) -> list[tuple[Node, frozenset[str]]]:
        deps = sorted(node.deps("link", "run"), key=lambda d: d.name)
        return [(nodes[d.hash], d.deptypes) for d in deps if d.hash in nodes]

    def visit(parent: Node | None, node: Node, deptypes: frozenset[str]) -> None:
        # the TopoVisitor with all_edges: an edge to a finished node is listed, not followed
        if node.hash in visited:
            edges.append((parent, node, deptypes))
            return
        stack = [(parent, node, deptypes, children(node))]
        while stack:
            p, n, t, rest = stack[-1]
            if rest:
                child, types = rest.pop(0)
                if child.hash in visited:
                    edges.append((n, child, types))
                else:
                    stack.append((n, child, types, children(child)))
                continue
            stack.pop()
            visited.add(n.hash)
            edges.append((p, n, t))

    for root in roots:
        visit(None, root, frozenset())
    modes: dict[str, int] = {}
    out: list[tuple[Node, int]] = []
    for parent, child, types in reversed(edges):
        if parent is None:
            modes[child.hash] = ROOT
            continue
        mode = modes.setdefault(parent.hash, 0)
        if not mode:
            continue
        add = 0
        if mode & ROOT:
            if "run" in types:
                add |= RUNTIME_EXECUTABLE
            elif "link" in types:
                add |= RUNTIME
        if mode & (RUNTIME | RUNTIME_EXECUTABLE):
            if "link" in types:
                add |= RUNTIME
            if "run" in types:
                add |= RUNTIME_EXECUTABLE
        if add:
            modes[child.hash] = modes.get(child.hash, 0) | add
        if not mode & ADDED:
            modes[parent.hash] = mode | ADDED
            out.append((parent, mode))
    return out + [(nodes[h], m) for h, m in modes.items() if m and not m & ADDED]


def run_changes(
    roots: Sequence[Node], nodes: Mapping[str, Node], prefix: Callable[[Node], str], is_dir: IsDir
) -> list[Change]:
    """`environment_modifications_for_specs(*roots)`: the static inspections, then the
    dynamic part Spack can compute without package code."""
    changes: list[Change] = []
    for node in reversed(topological(roots, nodes)):
        changes += _inspect(node.external or prefix(node), is_dir)
    reached = list(reversed(_runtime_modes(roots, nodes)))
    ordered = [x for x in reached if x[0].external is not None] + [
        x for x in reached if x[0].external is None
    ]
    for node, mode in ordered:
        if mode & (ROOT | RUNTIME_EXECUTABLE):
            home = node.external or prefix(node)
            changes += [
                Change("PATH", posixpath.join(home, d))
                for d in ("bin", "bin64")
                if is_dir(posixpath.join(home, d))
            ]
    return changes


def load_changes(
    roots: Sequence[Node], nodes: Mapping[str, Node], prefix: Callable[[Node], str], is_dir: IsDir
) -> list[Change]:
    """`spack load --sh ROOT...`."""
    changes = run_changes(roots, nodes, prefix, is_dir)
    return changes + [Change(LOADED_HASHES, root.hash) for root in roots]


def activate_changes(
    roots: Sequence[Node],
    nodes: Mapping[str, Node],
    prefix: Callable[[Node], str],
    is_dir: IsDir,
    view: str,
) -> list[Change]:
    """`spack env activate --sh` of an environment of `roots` with its view at `view`
    (absolute), without SPACK_ENV and SPACK_ENV_VIEW (the image has no environment directory)."""
    changes = [
        Change(name, posixpath.join(view, sub) if sub else view)
        for sub, names in INSPECTIONS
        for name in names
    ]
    closure = topological(roots, nodes)
    projected = {prefix(n): view for n in closure if n.external is None}
    spec_changes = run_changes(roots, nodes, prefix, is_dir)
    if projected:
        pattern = re.compile("|".join(re.escape(p) for p in projected))
        spec_changes = [
            Change(c.name, pattern.sub(lambda m: projected[m.group()], c.value))
            for c in spec_changes
        ]
    changes += spec_changes
    return changes + [Change(name, prune=True) for name in dict.fromkeys(c.name for c in changes)]


def apply_changes(changes: Sequence[Change], env: Mapping[str, str]) -> dict[str, str]:
    """The variables `changes` set, applied to `env` as Spack's `shell_modifications` applies
    them: by variable in name order, MANPATH ending with `:`; only those that changed."""
    by_name: dict[str, list[Change]] = {}
    for change in changes:
        by_name.setdefault(change.name, []).append(change)
    new = dict(env)
    for name in sorted(by_name):
        for change in by_name[name]:
            current = new.get(name, "")
            parts = current.split(":") if current else []
            if change.prune:
                parts = list(dict.fromkeys(posixpath.normpath(p) for p in parts))
            else:
                parts = [posixpath.normpath(change.value), *parts]
            new[name] = ":".join(parts)
    if "MANPATH" in new and not new["MANPATH"].endswith(":"):
        new["MANPATH"] += ":"
    return {name: new[name] for name in sorted(by_name) if new.get(name) != env.get(name)}
