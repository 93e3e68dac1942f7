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
    fast = _fast_header(entry, mtime)
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
_PAX_HEADER = "././@PaxHeader"  # the name tarfile (and star) give an extended header


def _fast_header(entry: Entry, mtime: int) -> bytes | None:
    """The same bytes `tarfile` writes, built directly, for an entry whose strings are ASCII
    and numbers fit their fields; names longer than their fields go into a PAX extended
    header as tarfile puts them. None for anything else (tarfile then writes it). Layers of
    many small files, and Spack's long padded paths, spend most of their time in headers."""
    name = entry.path + ("/" if entry.kind is Kind.DIR and entry.path else "")
    size = entry.size if entry.kind is Kind.FILE else 0
    if (
        entry.xattrs
        or not name.isascii()
        or not entry.link.isascii()
        or not entry.uname.isascii()
        or not entry.gname.isascii()
        or max(entry.uid, entry.gid, entry.devmajor, entry.devminor) > _USTAR_LIMIT
        or not 0 <= mtime <= 0o77777777777
        or size > 0o77777777777
    ):
        return None
    records = b"".join(
        _pax_record(keyword, value)
        for keyword, value, field in (
            ("path", name, 100),
            ("linkpath", entry.link, 100),
            ("uname", entry.uname, 32),
            ("gname", entry.gname, 32),
        )
        if len(value) > field
    )
    header = _ustar_block(
        name,
        mode=entry.mode & 0o7777,
        uid=entry.uid,
        gid=entry.gid,
        size=size,
        mtime=mtime,
        kind=_TYPES[entry.kind],
        link=entry.link,
        uname=entry.uname,
        gname=entry.gname,
        device=(entry.devmajor, entry.devminor) if entry.kind in (Kind.CHAR, Kind.BLOCK) else None,
    )
    if not records:
        return header
    extended = _ustar_block(_PAX_HEADER, size=len(records), kind=tarfile.XHDTYPE)
    padding = -len(records) % BLOCK
    return extended + records + b"\0" * padding + header


def _pax_record(keyword: str, value: str) -> bytes:
    """One `LENGTH KEYWORD=VALUE\\n` record, LENGTH counting its own digits."""
    body = f" {keyword}={value}\n".encode()
    length = len(body)
    while len(str(length)) + len(body) != length:
        length = len(str(length)) + len(body)
    return str(length).encode() + body


def _ustar_block(
    name: str,
    *,
    mode: int = 0,
    uid: int = 0,
    gid: int = 0,
    size: int = 0,
    mtime: int = 0,
    kind: bytes,
    link: str = "",
    uname: str = "",
    gname: str = "",
    device: tuple[int, int] | None = None,
) -> bytes:
    """A ustar header block; its ASCII strings are cut to their fields, as tarfile cuts them."""
    header = b"".join(
        (
            name.encode()[:100].ljust(100, b"\0"),
            b"%07o\0" % mode,
            b"%07o\0" % uid,
            b"%07o\0" % gid,
            b"%011o\0" % size,
            b"%011o\0" % mtime,
            b"        ",
            kind,
            link.encode()[:100].ljust(100, b"\0"),
            b"ustar\x0000",
            uname.encode()[:32].ljust(32, b"\0"),
            gname.encode()[:32].ljust(32, b"\0"),
            b"%07o\0%07o\0" % device if device is not None else b"\0" * 16,
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
