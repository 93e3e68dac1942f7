"""Installing packages into one layer: who owns each path, and the layer's entries.

Every package's file list is known before any content is streamed (an rpm header, a listing
pass over a .deb's data.tar). From the lists the layer decides which package installs each
path: directories shared by packages are fine (the first package's metadata wins), identical
files are installed once (like rpm's shared files), a 32-bit/64-bit pair of different ELF files
resolves to the 64-bit one (rpm's file colors), and anything else is a conflict naming both
packages. The directories of all packages come first in the layer, so a package that puts
files under a directory another package owns never gives that directory default metadata.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ocibuild.errors import SourceError
from ocibuild.layer.entry import Entry, Kind
from ocibuild.layer.safepath import LayerTree
from ocibuild.layer.tarstream import path_key

PREFERRED_COLOR = 2  # ELF64, as rpm's %_prefer_color on x86_64


@dataclass(frozen=True)
class PayloadFile:
    """One path a package installs, with the metadata it gets in the image."""

    path: str
    kind: Kind
    mode: int
    uid: int = 0
    gid: int = 0
    uname: str = ""
    gname: str = ""
    size: int = 0
    link: str = ""  # symlink target as written; hardlink target (image-relative)
    digest: str = ""  # content identity of a regular file
    color: int = 0
    devmajor: int = 0
    devminor: int = 0

    def entry(self, **changes: object) -> Entry:
        fields = {
            "path": self.path,
            "kind": self.kind,
            "mode": self.mode,
            "uid": self.uid,
            "gid": self.gid,
            "uname": self.uname,
            "gname": self.gname,
            "size": self.size if self.kind is Kind.FILE else 0,
            "link": self.link,
            "devmajor": self.devmajor,
            "devminor": self.devminor,
        }
        fields.update(changes)
        return Entry(**fields)  # type: ignore[arg-type]

    def same_as(self, other: PayloadFile) -> bool:
        return (self.kind, self.mode, self.uid, self.gid, self.size, self.link, self.digest) == (
            other.kind,
            other.mode,
            other.uid,
            other.gid,
            other.size,
            other.link,
            other.digest,
        )


@dataclass(frozen=True)
class PackageFiles:
    label: str  # name-version.arch, for messages
    files: Sequence[PayloadFile]


def owned_by(owners: dict[str, int], index: int) -> Callable[[str], bool]:
    """Whether the layer installs a path from the package at `index` (see `claim_paths`)."""
    return lambda path: owners.get(path) == index


def claim_paths(packages: Sequence[PackageFiles]) -> dict[str, int]:
    """path -> index (in `packages`) of the package whose copy the layer installs."""
    for package in packages:
        check_package(package)
    owners: dict[str, int] = {}
    chosen: dict[str, PayloadFile] = {}
    for index, package in enumerate(packages):
        for f in package.files:
            if not f.path:
                continue
            first = chosen.get(f.path)
            if first is None:
                owners[f.path], chosen[f.path] = index, f
                continue
            if first.kind is Kind.DIR and f.kind is Kind.DIR:
                continue
            if first.same_as(f) and first.kind is not Kind.DIR:
                continue
            if _colors_differ(first, f):
                if f.color == PREFERRED_COLOR:
                    owners[f.path], chosen[f.path] = index, f
                continue
            other = packages[owners[f.path]].label
            raise SourceError(
                f"file conflict: /{f.path} is in both {other} and {package.label} "
                f"({_difference(first, f)})"
            )
    return owners


def check_package(package: PackageFiles) -> None:
    """A package's own paths form a safe tree: nothing under its files or symlinks, no link
    leaving the image even through its other links, hardlinks only to its own files."""
    tree = LayerTree(what=package.label)
    for f in sorted(package.files, key=lambda f: (f.kind is Kind.HARDLINK, path_key(f.path))):
        tree.add(f.path, f.kind, f.link)
    tree.finish()


def _colors_differ(a: PayloadFile, b: PayloadFile) -> bool:
    """Two ELF files of different classes (rpm file colors), one of the preferred class."""
    both_files = a.kind is Kind.FILE and b.kind is Kind.FILE
    return both_files and a.color != b.color and {a.color, b.color} == {1, PREFERRED_COLOR}


def _difference(a: PayloadFile, b: PayloadFile) -> str:
    if a.kind is not b.kind:
        return f"{a.kind.value} vs {b.kind.value}"
    if a.digest != b.digest or a.size != b.size:
        return "different content"
    if a.link != b.link:
        return f"links to {a.link} vs {b.link}"
    return f"mode {oct(a.mode)} {a.uid}:{a.gid} vs {oct(b.mode)} {b.uid}:{b.gid}"


def directory_entries(packages: Sequence[PackageFiles], owners: dict[str, int]) -> list[Entry]:
    """Every directory the packages own, with its owner's metadata, parents first."""
    dirs = [
        f.entry()
        for index, package in enumerate(packages)
        for f in package.files
        if f.kind is Kind.DIR and f.path and owners.get(f.path) == index
    ]
    return sorted(dirs, key=lambda e: path_key(e.path))
