"""The Spack database of an install tree, `<padded root>/.spack-db/`, as Spack writes it
(`spack/database.py`), so that a Spack pointed at the tree sees what the image holds.

Every node of every installed spec's DAG has a record (`Database._add` adds dependencies of all
tracked types first): installed packages with their prefix, externals with their external path,
build-only dependencies the image does not hold with the prefix they would have and
`installed: false`. `ref_count` counts the records depending on a record; `explicit` marks the
roots. `installation_time` is the build's epoch (Spack writes the clock's); `index_verifier`,
random in Spack, is derived from the index here so that the layer is reproducible.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import uuid
from collections.abc import Iterable, Mapping, Sequence

from ocibuild.layer.entry import Entry, Kind, bytes_entry, clean_path
from ocibuild.spack.cache import Node
from ocibuild.spack.layout import InstallTree

TRACKED = ("build", "link", "run")
DATABASE_VERSION = "7"


def database_index(
    installed: Sequence[Node],
    explicit: Iterable[str],
    nodes: Mapping[str, Node],
    tree: InstallTree,
    epoch: int,
) -> bytes:
    """`index.json` for the `installed` specs (those the image holds), `explicit` the roots'
    hashes; `nodes` every node of their DAGs."""
    roots = set(explicit)
    held = {n.hash for n in installed}
    order: list[Node] = []
    added: set[str] = set()

    def add(node: Node) -> None:
        stack: list[tuple[Node, list[Node]]] = [(node, _tracked(node, nodes))]
        added.add(node.hash)
        while stack:
            current, deps = stack[-1]
            if deps:
                dep = deps.pop(0)
                if dep.hash not in added:
                    added.add(dep.hash)
                    stack.append((dep, _tracked(dep, nodes)))
                continue
            stack.pop()
            order.append(current)

    for node in installed:
        if node.hash not in added:
            add(node)
    refs: dict[str, int] = dict.fromkeys(added, 0)
    for node in order:
        for dep in node.deps(*TRACKED):
            if dep.hash in refs:
                refs[dep.hash] += 1
    installs = {}
    for node in order:
        if node.external is not None:
            path, is_installed = node.external, True
        else:
            path, is_installed = tree.prefix(node), node.hash in held
        installs[node.hash] = {
            "spec": dict(node.record),
            "ref_count": refs[node.hash],
            "path": path,
            "installed": is_installed,
            "explicit": node.hash in roots,
            "installation_time": float(epoch),
            "deprecated_for": None,
        }
    doc = {"database": {"version": DATABASE_VERSION, "installs": installs}}
    return json.dumps(doc, separators=(",", ":")).encode()


def _tracked(node: Node, nodes: Mapping[str, Node]) -> list[Node]:
    return [nodes[d.hash] for d in node.deps(*TRACKED) if d.hash in nodes]


def database_entries(index: bytes, tree: InstallTree) -> list[Entry]:
    """`.spack-db/` with its index, verifier, lock files and `failures/`, as Spack leaves it."""
    db = clean_path(tree.database)
    verifier = str(uuid.UUID(hashlib.sha256(index).hexdigest()[:32]))
    entries = [
        Entry(db, Kind.DIR, mode=0o755),
        Entry(posixpath.join(db, "failures"), Kind.DIR, mode=0o755),
        bytes_entry(posixpath.join(db, "index.json"), index),
        bytes_entry(posixpath.join(db, "index_verifier"), verifier.encode()),
    ]
    # Spack's lock files: empty, made by its lock code with mode 0755
    entries += [
        bytes_entry(posixpath.join(db, name), b"", mode=0o755)
        for name in ("lock", "prefix_failures", "prefix_lock")
    ]
    return entries
