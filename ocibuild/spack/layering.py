"""Which packages share a layer.

`single`: all in one layer. `per-package`: one layer each. `auto`: at most `max_layers`
layers, chosen so that images sharing packages share layers. A layer is shared only when its
packages are exactly the same, so a package's layer must not depend on what else an image
holds:

1. a package whose tarball is big (`OWN_LAYER_BYTES`) has a layer of its own (the biggest
   first, at most half the budget), shared by every image holding it;
2. the others are put in a stable order, dependencies before dependents (depth first from the
   roots in name order, as Spack walks a DAG), and cut into runs after each package whose DAG
   hash has its low `level` bits zero: a cut depends only on the package, so a run of packages
   two images have in the same order (a shared sub-DAG, which depends on nothing outside it) is
   cut at the same places, and the layers inside it are the same. `level` is the smallest that
   keeps the runs within the budget.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ocibuild.spack.cache import Node

LAYERINGS = ("auto", "per-package", "single")
OWN_LAYER_BYTES = 8 << 20  # compressed tarball size from which a package has its own layer
DEFAULT_MAX_LAYERS = 32  # per `spack` layer source, the database/view layer included


def check_layering(value: str) -> str:
    if value not in LAYERINGS:
        raise ValueError(f"layering must be one of {', '.join(LAYERINGS)}, not {value!r}")
    return value


def check_max_layers(value: int) -> int:
    if not 2 <= value <= 100:
        raise ValueError(f"max_layers must be between 2 and 100, not {value}")
    return value


@dataclass(frozen=True)
class Sized:
    node: Node
    size: int  # the tarball's, compressed


def group_packages(
    packages: Sequence[Sized],
    roots: Sequence[Node],
    nodes: Mapping[str, Node],
    layering: str,
    budget: int,
) -> list[list[Sized]]:
    """The packages of each layer, in layer order, at most `budget` layers with `auto`."""
    order = _stable_order(packages, roots, nodes)
    if not order:
        return []
    if layering == "single":
        return [order]
    if layering == "per-package":
        return [[p] for p in order]
    check_layering(layering)
    big = sorted(
        (p for p in order if p.size >= OWN_LAYER_BYTES),
        key=lambda p: (-p.size, p.node.hash),
    )[: budget // 2]
    own = {p.node.hash for p in big}
    rest = [p for p in order if p.node.hash not in own]
    runs = _runs(rest, budget - len(big))
    return [[p] for p in order if p.node.hash in own] + runs


def _stable_order(
    packages: Sequence[Sized], roots: Sequence[Node], nodes: Mapping[str, Node]
) -> list[Sized]:
    """Dependencies before dependents: post-order depth first from the roots by name, then
    whatever no root reaches."""
    wanted = {p.node.hash: p for p in packages}
    out: list[Sized] = []
    seen: set[str] = set()
    starts = sorted(roots, key=lambda n: (n.name, n.version, n.hash))
    starts += sorted((p.node for p in packages), key=lambda n: (n.name, n.version, n.hash))
    for start in starts:
        if start.hash in seen:
            continue
        seen.add(start.hash)
        stack = [(start, _deps(start, nodes))]
        while stack:
            node, deps = stack[-1]
            if deps:
                dep = deps.pop(0)
                if dep.hash not in seen:
                    seen.add(dep.hash)
                    stack.append((dep, _deps(dep, nodes)))
                continue
            stack.pop()
            if node.hash in wanted:
                out.append(wanted[node.hash])
    return out


def _deps(node: Node, nodes: Mapping[str, Node]) -> list[Node]:
    deps = sorted(node.deps("link", "run"), key=lambda d: (d.name, d.hash))
    return [nodes[d.hash] for d in deps if d.hash in nodes]


def _cut_bits(node: Node) -> int:
    """Uniform bits that depend on the package alone."""
    return int.from_bytes(hashlib.sha256(node.hash.encode()).digest(), "big")


def _runs(order: Sequence[Sized], budget: int) -> list[list[Sized]]:
    level = 0
    while True:
        runs: list[list[Sized]] = [[]]
        mask = (1 << level) - 1
        for p in order:
            runs[-1].append(p)
            if _cut_bits(p.node) & mask == 0:
                runs.append([])
        runs = [r for r in runs if r]
        if len(runs) <= max(1, budget) or level >= 256:
            return runs
        level += 1
