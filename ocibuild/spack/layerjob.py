"""One Spack layer's packages, from checked tarballs to relocated entries: the steps the
`spack` source takes in its threads, and a picklable job that takes them in a process of its
own (`ocibuild.layer.apart`) for heavy layers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from ocibuild.layer.entry import Entry, clean_path
from ocibuild.spack.layout import InstallTree
from ocibuild.spack.relocate import check_lengths, prefix_maps
from ocibuild.spack.tarball import (
    KeepBudget,
    PackageTarball,
    Relocation,
    Scan,
    layer_entries,
    scan,
)


def checked_scan(tarball: PackageTarball, prefix: str, keep: KeepBudget | None = None) -> Scan:
    """The tarball's first pass, refused when its build prefix is shorter than `prefix`; with
    a `keep` budget, for a layer about to be written (its second pass takes what is kept)."""
    found = scan(tarball, keep)
    check_lengths(found.info.old_prefix, prefix, tarball.node.short)
    return found


def relocation(
    tarball: PackageTarball,
    found: Scan,
    prefix: str,
    tree: InstallTree,
    prefixes: Mapping[str, str],
) -> Relocation:
    """How the package moves into `prefix` of `tree`; `prefixes` are the new prefixes, by
    hash, of what its files may name (Spack's `hashes_to_prefixes`)."""
    maps = prefix_maps(found.info, prefix, tree.padded_root, tree.sbang, prefixes)
    return Relocation(tarball, found, clean_path(prefix), maps, tree.sbang)


@dataclass(frozen=True)
class PackageJob:
    tarball: PackageTarball
    prefix: str
    prefixes: Mapping[str, str]


@dataclass
class LayerJob:
    """A layer's packages, scanned and relocated where the layer is written; its outcome is
    the scans, in order, which the build keeps (view, environment) as if it had made them."""

    packages: tuple[PackageJob, ...]
    tree: InstallTree
    readers: int
    scans: list[Scan] = field(default_factory=list)

    def entries(self) -> Iterator[Entry]:
        keep = KeepBudget()
        self.scans = [checked_scan(p.tarball, p.prefix, keep) for p in self.packages]
        moves = [
            relocation(p.tarball, found, p.prefix, self.tree, p.prefixes)
            for p, found in zip(self.packages, self.scans, strict=True)
        ]
        return layer_entries(moves, clean_path(self.tree.root), self.readers)

    def outcome(self) -> list[Scan]:
        return self.scans
