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


def tar_stream(
    entries: Iterable[Entry],
    mtime: int = 0,
    on_entry: Callable[[Entry], None] | None = None,
) -> Iterator[bytes]:
    """Yield the tar archive of `entries` in chunks. Parent directories that no entry names are
    added (0755, root); repeated directories keep their first appearance; a repeated
    non-directory path is an error."""
    seen: dict[str, Kind] = {"": Kind.DIR}
    for entry in entries:
        if not entry.path:
            continue  # the root itself is never an entry of a layer
        for parent in _ancestors(entry.path):
            if parent not in seen:
                seen[parent] = Kind.DIR
                yield tar_header(Entry(parent, Kind.DIR, mode=0o755), mtime)
            elif seen[parent] is not Kind.DIR:
                raise LayerError(f"{entry.path}: parent {parent} is not a directory in this layer")
        previous = seen.get(entry.path)
        if previous is not None:
            if previous is Kind.DIR and entry.kind is Kind.DIR:
                continue
            raise LayerError(f"{entry.path} appears twice in one layer")
        seen[entry.path] = entry.kind
        if on_entry:
            on_entry(entry)
        yield tar_header(entry, mtime)
        if entry.kind is Kind.FILE and entry.size:
            yield from _content(entry)
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
    with entry.open() as stream:
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
