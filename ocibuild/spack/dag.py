"""The concrete DAG of a build cache: roots matched by name, version or hash (no concretizer:
the cache's concrete specs are the truth), the packages they need at run time, and Spack's
topological order.

A root is `NAME`, `NAME@VERSION` (`@1.2` also matches 1.2.13, as Spack's version range does),
`/HASH` (a prefix of the DAG hash) or `NAME@VERSION/HASH`. It must match exactly one spec the
cache holds. What is installed is the roots and their link and run dependencies, transitively
(`spack install --cache-only` installs no build-only dependency); externals are not installed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ocibuild.errors import SourceError
from ocibuild.spack.cache import Node

ROOT_SPEC = re.compile(
    r"(?P<name>[A-Za-z0-9_][A-Za-z0-9_.+-]*)?(?:@(?P<version>[^/\s]+))?(?:/(?P<hash>[a-z0-9]+))?"
)
RUN_DEPTYPES = ("link", "run")


@dataclass(frozen=True)
class RootSpec:
    name: str = ""
    version: str = ""
    hash: str = ""

    def __str__(self) -> str:
        text = self.name + (f"@{self.version}" if self.version else "")
        return text + (f"/{self.hash}" if self.hash else "")

    def matches(self, node: Node) -> bool:
        if self.name and node.name != self.name:
            return False
        if self.hash and not node.hash.startswith(self.hash):
            return False
        return not self.version or (
            node.version == self.version or node.version.startswith(self.version + ".")
        )


def parse_root(text: str) -> RootSpec:
    """`zlib`, `zlib@1.2.13`, `/vptum3y` or `zlib@1.2.13/vptum3y`; ValueError otherwise."""
    m = ROOT_SPEC.fullmatch(text.strip())
    if m is None or not text.strip() or not (m["name"] or m["hash"]):
        raise ValueError(
            f"{text!r} is not a root spec: NAME, NAME@VERSION, /HASH or NAME@VERSION/HASH "
            "(the build cache's concrete specs are matched, nothing is concretized)"
        )
    return RootSpec(m["name"] or "", m["version"] or "", m["hash"] or "")


def match_roots(wanted: Sequence[RootSpec], candidates: Iterable[Node], where: str) -> list[Node]:
    """The one spec of `candidates` each root names; none or several is an error naming them."""
    pool = [n for n in candidates if n.external is None]
    found = []
    for root in wanted:
        hits = [n for n in pool if root.matches(n)]
        if not hits:
            same_name = sorted(n.short for n in pool if n.name == root.name)
            known = f"; it has {', '.join(same_name)}" if same_name else ""
            raise SourceError(f"{root}: no such spec in the build cache {where}{known}")
        if len(hits) > 1:
            names = ", ".join(sorted(n.short for n in hits))
            raise SourceError(
                f"{root} matches {len(hits)} specs in the build cache {where}: {names}; "
                "name one by its version or hash"
            )
        found.append(hits[0])
    return found


def run_closure(roots: Sequence[Node], nodes: Mapping[str, Node]) -> list[Node]:
    """The roots and everything they link to or run, transitively, roots first then in the
    order met; a dependency missing from `nodes` is an error naming who needs it."""
    seen: dict[str, Node] = {}
    stack = list(reversed(roots))
    while stack:
        node = stack.pop()
        if node.hash in seen:
            continue
        seen[node.hash] = node
        for dep in reversed(node.deps(*RUN_DEPTYPES)):
            child = nodes.get(dep.hash)
            if child is None:
                types = ", ".join(sorted(dep.deptypes))
                raise SourceError(
                    f"{node.short} needs {dep.name}/{dep.hash[:7]} ({types}), "
                    "which is not in its DAG"
                )
            stack.append(child)
    return list(seen.values())


def topological(
    roots: Sequence[Node], nodes: Mapping[str, Node], deptypes: Sequence[str] = RUN_DEPTYPES
) -> list[Node]:
    """Spack's `traverse_nodes(roots, order="topo", deptype=...)`: depth first from each root
    in turn, dependencies by name, each node after all its dependents (`spack/traverse.py:
    TopoVisitor`)."""
    visited: set[str] = set()
    post: list[Node] = []

    def visit(node: Node) -> None:
        # an explicit stack: DAGs of real stacks are deep enough to matter for recursion
        stack: list[tuple[Node, list[Node]]] = [(node, _children(node, nodes, deptypes))]
        while stack:
            current, children = stack[-1]
            while children and children[0].hash in visited:
                children.pop(0)
            if children:
                child = children.pop(0)
                visited.add(child.hash)
                stack.append((child, _children(child, nodes, deptypes)))
                continue
            stack.pop()
            post.append(current)

    for root in roots:
        if root.hash in visited:
            continue
        visited.add(root.hash)
        visit(root)
    return list(reversed(post))


def _children(node: Node, nodes: Mapping[str, Node], deptypes: Sequence[str]) -> list[Node]:
    deps = sorted(node.deps(*deptypes), key=lambda d: d.name)
    return [nodes[d.hash] for d in deps if d.hash in nodes]
