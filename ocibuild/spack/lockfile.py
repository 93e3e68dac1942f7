"""A Spack environment's `spack.lock` (lockfile version 4 or 5, `spack/environment/
environment.py: _read_lockfile_dict`): its roots in the lock's order, by DAG hash, and the
concrete specs they name. The lock pins hashes; what is installed still comes from the build
cache's signed spec files, which must agree with it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocibuild.errors import SourceError
from ocibuild.jsonread import read_json
from ocibuild.spack.cache import Node, parse_node

LOCKFILE_VERSIONS = (4, 5)


@dataclass(frozen=True)
class SpackLock:
    roots: tuple[Node, ...]
    nodes: dict[str, Node]


def read_lock(path: Path) -> SpackLock:
    what = str(path)
    try:
        doc: Any = read_json(path.read_bytes(), what)
    except OSError as e:
        raise SourceError(f"{what}: cannot read the Spack lock file ({e.strerror})") from None
    except ValueError as e:
        raise SourceError(f"{what}: not a JSON Spack lock file ({e})") from None
    if not isinstance(doc, dict):
        raise SourceError(f"{what}: not a Spack lock file")
    meta = doc.get("_meta", {})
    version = meta.get("lockfile-version") if isinstance(meta, dict) else None
    if version not in LOCKFILE_VERSIONS:
        raise SourceError(
            f"{what}: lockfile-version {version!r}; ocibuild reads versions "
            f"{', '.join(map(str, LOCKFILE_VERSIONS))} (Spack 0.21 to 0.23)"
        )
    concrete = doc.get("concrete_specs")
    roots = doc.get("roots")
    if not isinstance(concrete, dict) or not isinstance(roots, list):
        raise SourceError(f"{what}: no roots or concrete_specs")
    nodes: dict[str, Node] = {}
    for key, raw in concrete.items():
        node = parse_node(raw, what)
        if node.hash != key:
            raise SourceError(f"{what}: concrete spec {key} holds {node.short}")
        nodes[key] = node
    out = []
    for root in roots:
        key = root.get("hash") if isinstance(root, dict) else None
        if not isinstance(key, str) or key not in nodes:
            raise SourceError(f"{what}: root {root!r} is not one of its concrete specs")
        out.append(nodes[key])
    return SpackLock(tuple(out), nodes)
