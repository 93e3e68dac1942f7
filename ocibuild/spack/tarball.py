"""A package's `.spack` tarball, read in two passes and never unpacked.

The first pass (`scan`) reads the member headers to the end: the buildinfo, which says what to
relocate, is the last member; the prefix is the directory holding `.spack/binary_distribution`
(`spack/binary_distribution.py: _ensure_common_prefix`); the listing of the prefix serves the
view and the environment. For a layer about to be written it also keeps the members and their
contents while they fit in the layer's `KeepBudget` (KEEP_MEMORY, shared by its tarballs), and
the second pass takes them instead of decoding and parsing the tarball again (the fixtures'
build, warm: 196 ms read twice, 167 ms kept). The second pass (`relocated_entries`) streams the
members again through the UPS tarball reader (a thread per tarball decoding gzip with isal,
members checked by the one safe-path resolver and the size limits), moves them into the new
prefix and relocates them as `spack install --cache-only` does: listed text files and binaries
(spooled, at most `SPOOL_MEMORY` bytes of each in memory), listed symlinks, overlong shebangs
(sbang), and Spack's permissions (directories of the prefix 02755, files 0755 or 0644). Members
outside the prefix (other than its parent directories) are refused; so is a symlink resolving
outside the install tree, checked against the relocated tree.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
import tempfile
import threading
from collections.abc import Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO, cast

from ocibuild.errors import SourceError, UnsafePathError
from ocibuild.layer.entry import Entry, Kind, check_relative
from ocibuild.layer.reader import UNREADABLE, each_member, member_content, open_stream
from ocibuild.layer.safepath import LayerTree, check_tar_member
from ocibuild.limits import check_expansion
from ocibuild.spack import elf
from ocibuild.spack.buildinfo import BUILDINFO, BuildInfo, parse_buildinfo
from ocibuild.spack.cache import Node
from ocibuild.spack.relocate import PrefixMaps, TextReplacer, relocate_binary, relocate_link
from ocibuild.spack.sbang import LINE_LIMIT, shebang_prefix
from ocibuild.ups.tarball import CHUNK, Kept, ProductTarball, open_tarball, tarball_entries

SPOOL_MEMORY = 8 << 20  # bytes of one relocated file kept in memory; the rest goes to disk
KEEP_MEMORY = 32 << 20  # bytes of a layer's tarballs parsed once, not twice
BUILDINFO_SIZE = 64 << 20  # the largest buildinfo read (it lists every relocated file)
DIR_MODE = 0o2755  # a package's directories: group-readable, so setgid (config:allow_sgid)


@dataclass(frozen=True)
class PackageTarball:
    """A package's tarball, fetched and checked against its spec file's checksum."""

    node: Node
    url: str
    path: Path
    size: int
    sha256: str

    def __str__(self) -> str:
        return f"{self.node.short}: {self.url}"

    def as_product(self, kept: Kept | None = None) -> ProductTarball:
        return ProductTarball(
            self.node.name, self.node.version, self.url, self.path, self.size, self.sha256, kept
        )


@dataclass(frozen=True)
class Scan:
    """What the first pass learnt of a tarball; `kept`, a small one's members and contents,
    for the second pass to take."""

    prefix: str  # the package prefix as the tarball names it (`opt/spack-build/.../zlib-...`)
    members: int
    info: BuildInfo
    tree: Mapping[str, tuple[Kind, str]]  # path relative to the prefix -> kind, symlink target
    kept: Kept | None = field(default=None, compare=False, repr=False)


class KeepBudget:
    """The bytes the first passes over one layer's tarballs may keep in memory, together."""

    def __init__(self, total: int | None = None) -> None:
        self._left = KEEP_MEMORY if total is None else total
        self._lock = threading.Lock()

    def take(self, size: int) -> bool:
        with self._lock:
            if size > self._left:
                return False
            self._left -= size
            return True

    def give(self, size: int) -> None:
        with self._lock:
            self._left += size

    def holds(self, size: int) -> bool:
        with self._lock:
            return size <= self._left


def scan(tarball: PackageTarball, keep: KeepBudget | None = None) -> Scan:
    """Read the tarball's headers and its buildinfo; refuse a tarball without one. With a
    `keep` budget, a tarball whose contents fit in it is kept for the second pass."""
    if keep is not None and not keep.holds(tarball.size):
        keep = None  # its contents are more than its compressed bytes: they would not fit
    names: list[tuple[str, Kind, str]] = []
    buildinfo: tuple[str, bytes] | None = None
    kept: list[tuple[tarfile.TarInfo, bytes]] | None = [] if keep is not None else None
    taken = 0
    try:
        with (
            open_tarball(tarball.path) as stream,
            open_stream(stream) as tar,
        ):
            unpacked = 0
            for member in each_member(tar):
                check_tar_member(member, str(tarball))
                unpacked += 512 + member.size
                check_expansion(unpacked, tarball.size, str(tarball))
                name = check_relative(member.name, f"{tarball}: member")
                names.append((name, _kind(member, tarball), member.linkname))
                content = b""
                if keep is not None and kept is not None and member.isreg() and member.size:
                    if keep.take(member.size):
                        taken += member.size
                        content = b"".join(member_content(tar, member))
                    else:  # read twice, then
                        keep.give(taken)
                        kept, taken = None, 0
                if kept is not None:
                    kept.append((member, content))
                if name.endswith("/" + BUILDINFO) and member.isreg():
                    if member.size > BUILDINFO_SIZE:
                        raise SourceError(f"{tarball}: {member.name} is {member.size} bytes")
                    if buildinfo is None or len(name) < len(buildinfo[0]):
                        buildinfo = (name, content or b"".join(member_content(tar, member)))
            while stream.read(CHUNK):
                pass
    except UNREADABLE as e:
        raise SourceError(
            f"{tarball}: not a readable tarball (truncated or damaged?): {e}"
        ) from None
    if buildinfo is None:
        raise SourceError(f"{tarball}: no {BUILDINFO} (not a Spack build cache tarball)")
    prefix = buildinfo[0][: -len("/" + BUILDINFO)]
    info = parse_buildinfo(buildinfo[1], str(tarball))
    tree: dict[str, tuple[Kind, str]] = {}
    for name, kind, link in names:
        rel = _relative(name, prefix)
        if rel is None:
            if kind is Kind.DIR and prefix.startswith(name + "/"):
                continue
            raise UnsafePathError(
                f"{tarball}: member {name} is outside the package prefix /{prefix}"
            )
        if rel:
            tree[rel] = (kind, link)
    return Scan(prefix, len(names), info, tree, None if kept is None else Kept(kept))


def _kind(info: tarfile.TarInfo, tarball: PackageTarball) -> Kind:
    if info.isdir():
        return Kind.DIR
    if info.isreg():
        return Kind.FILE
    if info.issym():
        return Kind.SYMLINK
    if info.islnk():
        return Kind.HARDLINK
    raise UnsafePathError(f"{tarball}: member {info.name!r} is a device or special file")


def _relative(name: str, prefix: str) -> str | None:
    if name == prefix:
        return ""
    if name.startswith(prefix + "/"):
        return name[len(prefix) + 1 :]
    return None


@dataclass(frozen=True)
class Relocation:
    """Where a package goes and what changes on the way."""

    tarball: PackageTarball
    scan: Scan
    prefix: str  # the new prefix, image-relative (`opt/spack/__spack.../zlib-1.2.13-...`)
    maps: PrefixMaps
    sbang: str  # the new sbang path, absolute


def layer_entries(packages: list[Relocation], root: str, readers: int) -> Iterator[Entry]:
    """The entries of packages sharing a layer, in order, under the install tree `root`
    (image-relative, unpadded); `readers` tarballs decode at once."""
    tree = LayerTree(root=root, eager=False)
    emitted: set[str] = set()
    products = [p.tarball.as_product(p.scan.kept) for p in packages]
    stream = tarball_entries(products, "", readers)
    try:
        for package in packages:
            what = str(package.tarball)
            for directory in _parents(package.prefix, root):
                if directory not in emitted:
                    emitted.add(directory)
                    tree.add(directory, Kind.DIR, what=what)
                    yield Entry(directory, Kind.DIR, mode=0o755)
            for entry in relocated_entries(_take(stream, package.scan.members, what), package):
                tree.add(entry.path, entry.kind, entry.link, what=what)
                yield entry
        tree.finish()
    finally:
        if isinstance(stream, Generator):
            stream.close()  # stops the reader threads


def _parents(prefix: str, root: str) -> list[str]:
    """The directories from the install tree's root down to the prefix's parent (Spack makes
    them 0755)."""
    parent = posixpath.dirname(prefix)
    below = parent[len(root) :].strip("/").split("/") if parent != root else []
    return [root] + [posixpath.join(root, *below[: i + 1]) for i in range(len(below))]


def _take(stream: Iterator[Entry], count: int, what: str) -> Iterator[Entry]:
    for _ in range(count):
        entry = next(stream, None)
        if entry is None:
            raise SourceError(f"{what}: the tarball changed between its two reads")
        yield entry


def relocated_entries(entries: Iterable[Entry], package: Relocation) -> Iterator[Entry]:
    """A package's tarball entries (paths as the tarball names them) in its new prefix."""
    old = package.scan.prefix
    info, maps = package.scan.info, package.maps
    what = str(package.tarball)
    spool: BinaryIO | None = None
    try:
        for entry in entries:
            if spool is not None:
                spool.close()
                spool = None
            rel = _relative(entry.path, old)
            if rel is None:
                if entry.kind is Kind.DIR and old.startswith(entry.path + "/"):
                    continue  # a parent directory of the prefix: the new ones are made apart
                raise UnsafePathError(
                    f"{what}: member {entry.path} is outside the package prefix /{old}"
                )
            path = posixpath.join(package.prefix, rel) if rel else package.prefix
            if entry.kind is Kind.DIR:
                yield Entry(path, Kind.DIR, mode=DIR_MODE | (entry.mode & 0o7000))
            elif entry.kind is Kind.SYMLINK:
                link = entry.link
                if maps.moved and rel in info.relocate_links:
                    link = relocate_link(link, maps.binary)
                yield Entry(path, Kind.SYMLINK, mode=0o777, link=link)
            elif entry.kind is Kind.HARDLINK:
                target = _relative(entry.link, old)
                if target is None:
                    raise UnsafePathError(
                        f"{what}: hard link {entry.path} -> {entry.link} leaves the package prefix"
                    )
                mode = _file_mode(entry.mode)
                yield Entry(
                    path, Kind.HARDLINK, mode=mode, link=posixpath.join(package.prefix, target)
                )
            else:
                relocated, spool = _content(entry, rel, package, f"{what}: {rel}")
                yield replace(relocated, path=path, mode=_file_mode(entry.mode))
    finally:
        if spool is not None:
            spool.close()


def _file_mode(mode: int) -> int:
    """Spack's permissions hook: 0755 when any execute bit is set, else 0644."""
    return (0o755 if mode & 0o111 else 0o644) | (mode & 0o7000)


def _content(
    entry: Entry, rel: str, package: Relocation, what: str
) -> tuple[Entry, BinaryIO | None]:
    """The entry with its content relocated; the spool holding it, if any, to close later."""
    info, maps = package.scan.info, package.maps
    binary = maps.moved and rel in info.relocate_binaries
    text = rel in info.relocate_textfiles and bool(maps.text)
    if not (binary or text):
        if entry.mode & 0o111 and entry.size and entry.open is not None:
            return _shebang(entry, package.sbang), None
        return entry, None
    spool: BinaryIO = _spool()
    assert entry.open is not None or not entry.size
    source = entry.open() if entry.open is not None else io.BytesIO()
    if binary:
        while chunk := source.read(CHUNK):
            spool.write(chunk)
        elf.substitute(spool, maps.binary, what)
        relocate_binary(spool, maps.binary, what)
    else:
        TextReplacer(maps.text).copy(source, spool)
    spool.seek(0)
    size = spool.seek(0, io.SEEK_END)
    spool.seek(0)
    head = spool.read(LINE_LIMIT)
    spool.seek(0)
    patched = shebang_prefix(head, entry.mode, package.sbang)
    if patched is not None:
        new_first, old_first = patched
        out: BinaryIO = _spool()
        out.write(new_first)
        spool.seek(len(old_first))
        while chunk := spool.read(CHUNK):
            out.write(chunk)
        spool.close()
        spool, size = out, out.tell()
    return _spooled(entry, spool, size), spool


def _spool() -> BinaryIO:
    return cast(BinaryIO, tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY))


def _spooled(entry: Entry, spool: BinaryIO, size: int) -> Entry:
    def open_spool() -> BinaryIO:
        spool.seek(0)
        return cast(BinaryIO, _Unclosing(spool))

    return replace(entry, size=size, open=open_spool)


def _shebang(entry: Entry, sbang: str) -> Entry:
    """An executable streamed as it is, unless the sbang hook rewrites its first line."""
    assert entry.open is not None
    stream = entry.open()
    head = b""
    while len(head) < min(LINE_LIMIT, entry.size) and (
        chunk := stream.read(LINE_LIMIT - len(head))
    ):
        head += chunk
    patched = shebang_prefix(head, entry.mode, sbang)
    start = head if patched is None else patched[0] + head[len(patched[1]) :]
    size = entry.size + len(start) - len(head)
    return replace(entry, size=size, open=lambda: cast(BinaryIO, _Chained(start, stream)))


class _Chained(io.RawIOBase):
    """`first`, then the rest of `stream`."""

    def __init__(self, first: bytes, stream: BinaryIO) -> None:
        self._first = memoryview(first)
        self._stream = stream

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._first:
            n = len(self._first) if size < 0 else min(size, len(self._first))
            data = bytes(self._first[:n])
            self._first = self._first[n:]
            return data
        return self._stream.read(size)


class _Unclosing(io.RawIOBase):
    """A spool as the writer reads it: closing it leaves the spool to its owner."""

    def __init__(self, spool: BinaryIO) -> None:
        self._spool = spool

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._spool.read(size)
