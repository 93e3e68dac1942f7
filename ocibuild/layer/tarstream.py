"""Entries -> a deterministic PAX tar byte stream.

Deterministic means: the same entries give the same bytes, whatever the machine, the time, or
the order the filesystem listed things in. Callers sort with `sorted_entries` when they can
reopen content in any order; streamed sources (product tarballs) keep their own pinned order.
"""

from __future__ import annotations

import posixpath
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

from ocibuild.errors import LayerError
from ocibuild.layer.entry import Entry, Kind
from ocibuild.layer.safepath import LayerTree

BLOCK = 512
CHUNK = 1 << 20
_TYPES = {
    Kind.FILE: tarfile.REGTYPE,
    Kind.DIR: tarfile.DIRTYPE,
    Kind.SYMLINK: tarfile.SYMTYPE,
    Kind.HARDLINK: tarfile.LNKTYPE,
    Kind.CHAR: tarfile.CHRTYPE,
    Kind.BLOCK: tarfile.BLKTYPE,
    Kind.FIFO: tarfile.FIFOTYPE,
}


def path_key(path: str) -> tuple[str, ...]:
    """Sort key under which a directory always comes before everything inside it."""
    return tuple(path.split("/"))


def sorted_entries(entries: Iterable[Entry]) -> list[Entry]:
    """Sort by path, let later duplicates win, and make every hardlink group point at its
    first member in sorted order (tar needs a link's target before the link)."""
    by_path: dict[str, Entry] = {}
    for entry in entries:
        by_path[entry.path] = entry
    ordered = sorted(by_path.values(), key=lambda e: path_key(e.path))
    return _relink_hardlinks(ordered)


def _relink_hardlinks(ordered: list[Entry]) -> list[Entry]:
    by_path = {e.path: e for e in ordered}
    groups: dict[str, list[str]] = {}
    for entry in ordered:
        if entry.kind is Kind.HARDLINK:
            target = by_path.get(entry.link)
            if target is None or target.kind is not Kind.FILE:
                raise LayerError(
                    f"hardlink {entry.path} -> {entry.link}: target is not a file of this layer"
                )
            groups.setdefault(entry.link, [entry.link]).append(entry.path)
    if not groups:
        return ordered
    rewritten: dict[str, Entry] = {}
    for content_path, members in groups.items():
        head = min(members, key=path_key)
        content = by_path[content_path]
        for member in members:
            if member == head:
                rewritten[member] = replace(content, path=head)
            else:
                rewritten[member] = replace(
                    content, path=member, kind=Kind.HARDLINK, link=head, size=0, open=None
                )
    return [rewritten.get(e.path, e) for e in ordered]


def tar_header(entry: Entry, mtime: int) -> bytes:
    fast = _ustar_header(entry, mtime)
    if fast is not None:
        return fast
    info = tarfile.TarInfo(entry.path + ("/" if entry.kind is Kind.DIR and entry.path else ""))
    info.type = _TYPES[entry.kind]
    info.mode = entry.mode & 0o7777
    info.uid, info.gid = entry.uid, entry.gid
    info.uname, info.gname = entry.uname, entry.gname
    info.mtime = mtime
    info.size = entry.size if entry.kind is Kind.FILE else 0
    info.linkname = entry.link
    info.devmajor, info.devminor = entry.devmajor, entry.devminor
    if entry.xattrs:
        info.pax_headers = {
            f"SCHILY.xattr.{name}": value.decode("utf-8", "surrogateescape")
            for name, value in sorted(entry.xattrs.items())
        }
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


_USTAR_LIMIT = 0o7777777  # the largest uid/gid/dev number a 8-byte octal field holds


def _ustar_header(entry: Entry, mtime: int) -> bytes | None:
    """The same bytes `tarfile` writes for an entry that needs no PAX extension, built
    directly: layers of many small files spend most of their time in headers."""
    name = entry.path + ("/" if entry.kind is Kind.DIR and entry.path else "")
    if (
        entry.xattrs
        or not name.isascii()
        or not entry.link.isascii()
        or not entry.uname.isascii()
        or not entry.gname.isascii()
        or len(name) > 100
        or len(entry.link) > 100
        or max(entry.uid, entry.gid, entry.devmajor, entry.devminor) > _USTAR_LIMIT
        or not 0 <= mtime <= 0o77777777777
    ):
        return None
    size = entry.size if entry.kind is Kind.FILE else 0
    if size > 0o77777777777:
        return None
    header = b"".join(
        (
            name.encode().ljust(100, b"\0"),
            b"%07o\0" % (entry.mode & 0o7777),
            b"%07o\0" % entry.uid,
            b"%07o\0" % entry.gid,
            b"%011o\0" % size,
            b"%011o\0" % mtime,
            b"        ",
            _TYPES[entry.kind],
            entry.link.encode().ljust(100, b"\0"),
            b"ustar\x0000",
            entry.uname.encode()[:32].ljust(32, b"\0"),
            entry.gname.encode()[:32].ljust(32, b"\0"),
            *(
                (b"%07o\0" % entry.devmajor, b"%07o\0" % entry.devminor)
                if entry.kind in (Kind.CHAR, Kind.BLOCK)
                else (b"\0" * 16,)
            ),
            b"\0" * 155,
        )
    )
    checksum = sum(header)
    header = header[:148] + b"%06o\0 " % checksum + header[156:]
    return header.ljust(BLOCK, b"\0")


def tar_stream(
    entries: Iterable[Entry],
    mtime: int = 0,
    on_entry: Callable[[Entry], None] | None = None,
) -> Iterator[bytes]:
    """Yield the tar archive of `entries` in chunks. Parent directories that no entry names are
    added (0755, root); repeated directories keep their first appearance; a repeated
    non-directory path is an error."""
    emitted: set[str] = {""}
    tree = LayerTree(whiteouts=True, specials=True)
    for entry in entries:
        if not entry.path:
            continue  # the root itself is never an entry of a layer
        if entry.path in emitted:
            if entry.kind is Kind.DIR and tree.kind(entry.path) is Kind.DIR:
                continue
            raise LayerError(f"{entry.path} appears twice in one layer")
        tree.add(entry.path, entry.kind, entry.link)
        if posixpath.dirname(entry.path) not in emitted:
            for parent in _ancestors(entry.path):
                if parent not in emitted:
                    emitted.add(parent)
                    yield tar_header(Entry(parent, Kind.DIR, mode=0o755), mtime)
        emitted.add(entry.path)
        if on_entry:
            on_entry(entry)
        yield tar_header(entry, mtime)
        if entry.kind is Kind.FILE and entry.size:
            yield from _content(entry)
    tree.finish()
    yield b"\0" * (2 * BLOCK)


def _ancestors(path: str) -> list[str]:
    out = []
    parent = posixpath.dirname(path)
    while parent:
        out.append(parent)
        parent = posixpath.dirname(parent)
    out.reverse()
    return out


def _content(entry: Entry) -> Iterator[bytes]:
    if entry.open is None:
        raise LayerError(f"{entry.path}: file entry without content")
    remaining = entry.size
    try:
        stream = entry.open()
    except OSError as e:
        raise LayerError(
            f"{entry.path}: cannot read {entry.source or 'its content'}: {e.strerror}"
        ) from None
    with stream:
        while remaining:
            chunk = stream.read(min(CHUNK, remaining))
            if not chunk:
                raise LayerError(
                    f"{entry.path}: content ended {remaining} bytes short of its size "
                    f"{entry.size} (changed while building?)"
                )
            remaining -= len(chunk)
            yield chunk
        if stream.read(1):
            raise LayerError(
                f"{entry.path}: content is longer than its size {entry.size} (changed while building?)"
            )
    pad = -entry.size % BLOCK
    if pad:
        yield b"\0" * pad
