"""The base image's rpm database: the packages rpm installed there, with Provides and files.

rpm keeps one header per installed package (the package's header without its magic) in the
`Packages` table of `rpmdb.sqlite` (rpm >= 4.16: Fedora 33+, RHEL 9) or in the Berkeley DB hash
file `Packages` (CentOS 6 and 7, RHEL 8). The Berkeley DB file is read by a minimal read-only
reader of the hash format, as rpm's own `lib/backend/bdb_ro.c` does: every hash page's key/data
pairs, data items stored on the page or in a chain of overflow pages. Only the `Packages` file
is read; rpm's index files are not needed.
"""

from __future__ import annotations

import contextlib
import sqlite3
import struct
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from ocibuild.errors import SourceError
from ocibuild.ospkg.repomd import Capability
from ocibuild.ospkg.rpmfile import (
    ARCH,
    EPOCH,
    NAME,
    PROVIDEFLAGS,
    PROVIDENAME,
    PROVIDEVERSION,
    RELEASE,
    VERSION,
    file_paths,
    header_blob,
)
from ocibuild.ospkg.rpmresolve import InstalledRpm
from ocibuild.ospkg.rpmver import EQUAL, EVR, GREATER, LESS

RPMDB_DIRS = ("usr/lib/sysimage/rpm", "var/lib/rpm")
SQLITE, SQLITE_WAL, BDB = "rpmdb.sqlite", "rpmdb.sqlite-wal", "Packages"
RPMDB_FILES = tuple(f"{d}/{name}" for d in RPMDB_DIRS for name in (SQLITE, SQLITE_WAL, BDB))

# Berkeley DB (db_page.h): the hash metadata page and the page types and item types read here
HASH_MAGIC = 0x061561
HASH_VERSIONS = (8, 9, 10)
PAGE_HEADER = 26  # lsn, pgno, prev_pgno, next_pgno, entries, hf_offset, level, type
P_HASH_UNSORTED, P_OVERFLOW, P_HASH = 2, 7, 13
H_KEYDATA, H_OFFPAGE = 1, 3
_SENSE = LESS | GREATER | EQUAL


def read_rpmdb(files: dict[str, bytes]) -> list[InstalledRpm]:
    """The packages of the rpm database among `files` (image-relative path -> content), or [].
    A sqlite database is preferred to a Berkeley DB one."""
    for directory in RPMDB_DIRS:
        data = files.get(f"{directory}/{SQLITE}")
        if data:
            what = f"/{directory}/{SQLITE}"
            return _installed(
                _sqlite_pairs(data, files.get(f"{directory}/{SQLITE_WAL}"), what), what
            )
    for directory in RPMDB_DIRS:
        data = files.get(f"{directory}/{BDB}")
        if data:
            what = f"/{directory}/{BDB}"
            return _installed(bdb_pairs(data, what), what)
    return []


def _installed(pairs: Iterable[tuple[bytes, bytes]], what: str) -> list[InstalledRpm]:
    """The packages of (record number, header) pairs."""
    packages = []
    for n, (key, blob) in enumerate(pairs, 1):
        if key == bytes(len(key)):  # record 0 of a Berkeley DB Packages: rpm's counter
            continue
        package = _package(blob, f"{what}: record {n}")
        if package is not None:
            packages.append(package)
    return sorted(packages, key=lambda p: (p.name, p.arch))


def _package(blob: bytes, what: str) -> InstalledRpm | None:
    header = header_blob(blob, what)
    arch = header.string(ARCH)
    if not arch:  # gpg-pubkey entries: imported keys, not packages
        return None
    epoch = header.ints(EPOCH)
    version = f"{epoch[0]}:{header.string(VERSION)}" if epoch else header.string(VERSION)
    names = header.strings(PROVIDENAME)
    flags = header.ints(PROVIDEFLAGS) or [0] * len(names)
    versions = header.strings(PROVIDEVERSION) or [""] * len(names)
    if not len(names) == len(flags) == len(versions):
        raise SourceError(f"{what}: the Provides arrays disagree in length")
    return InstalledRpm(
        header.string(NAME),
        f"{version}-{header.string(RELEASE)}",
        arch,
        provides=tuple(
            Capability(n, f & _SENSE, EVR.parse(v) if f & _SENSE else EVR())
            for n, f, v in zip(names, flags, versions, strict=True)
        ),
        files=frozenset(file_paths(header, what)),
    )


def _sqlite_pairs(data: bytes, wal: bytes | None, what: str) -> Iterator[tuple[bytes, bytes]]:
    """(hnum, header) of the `Packages` table; sqlite needs a file to open."""
    with tempfile.TemporaryDirectory(prefix="ocibuild-rpmdb-") as tmp:
        path = Path(tmp) / SQLITE
        path.write_bytes(data)
        if wal:
            (Path(tmp) / SQLITE_WAL).write_bytes(wal)
        try:
            with contextlib.closing(sqlite3.connect(path)) as db:
                rows = db.execute("SELECT hnum, blob FROM Packages ORDER BY hnum")
                for hnum, blob in rows:
                    if not isinstance(blob, bytes):
                        raise SourceError(f"{what}: package record {hnum} is not a header")
                    yield struct.pack(">I", hnum), blob
        except sqlite3.Error as e:
            raise SourceError(f"{what}: not a readable rpm database ({e})") from None


def bdb_pairs(data: bytes, what: str) -> Iterator[tuple[bytes, bytes]]:
    """The key/data pairs of a Berkeley DB hash database file, in page order."""
    if len(data) < 512:
        raise SourceError(f"{what}: not a Berkeley DB hash database (too short)")
    order = next((o for o in "<>" if struct.unpack_from(o + "I", data, 12)[0] == HASH_MAGIC), "")
    if not order:
        raise SourceError(f"{what}: not a Berkeley DB hash database (bad magic)")
    version, pagesize = struct.unpack_from(order + "II", data, 16)
    (last,) = struct.unpack_from(order + "I", data, 32)
    if version not in HASH_VERSIONS:
        raise SourceError(f"{what}: unsupported Berkeley DB hash version {version}")
    if pagesize < 512 or pagesize > 65536 or pagesize & (pagesize - 1):
        raise SourceError(f"{what}: bad Berkeley DB page size {pagesize}")
    if (last + 1) * pagesize > len(data):
        raise SourceError(f"{what}: truncated Berkeley DB file ({last + 1} pages expected)")
    db = _Pages(data, order, pagesize, last, what)
    for pgno in range(1, last + 1):
        page = db.page(pgno)
        if page[25] not in (P_HASH, P_HASH_UNSORTED):
            continue
        (count,) = struct.unpack_from(order + "H", page, 20)
        if PAGE_HEADER + 2 * count > pagesize:
            raise SourceError(f"{what}: page {pgno}: {count} items do not fit")
        offsets = struct.unpack_from(f"{order}{count}H", page, PAGE_HEADER)
        for i in range(0, count - 1, 2):
            yield db.item(page, pgno, offsets, i), db.item(page, pgno, offsets, i + 1)


class _Pages:
    """A Berkeley DB file's pages and the items on them, every read checked against the file."""

    def __init__(self, data: bytes, order: str, pagesize: int, last: int, what: str) -> None:
        self.data = memoryview(data)
        self.order = order  # "<" or ">": the byte order of the machine that wrote the file
        self.pagesize = pagesize
        self.last = last
        self.what = what

    def page(self, pgno: int) -> memoryview:
        if not 1 <= pgno <= self.last:
            raise SourceError(f"{self.what}: reference to page {pgno} outside the file")
        page = self.data[pgno * self.pagesize : (pgno + 1) * self.pagesize]
        if struct.unpack_from(self.order + "I", page, 8)[0] != pgno:
            raise SourceError(f"{self.what}: page {pgno} does not carry its own number")
        return page

    def item(self, page: memoryview, pgno: int, offsets: tuple[int, ...], i: int) -> bytes:
        """Item `i` of a hash page: items are packed from the page's end downwards."""
        start = offsets[i]
        end = self.pagesize if i == 0 else offsets[i - 1]
        if not PAGE_HEADER + 2 * len(offsets) <= start < end <= self.pagesize:
            raise SourceError(f"{self.what}: page {pgno}: item {i} lies outside its page")
        kind = page[start]
        if kind == H_KEYDATA:
            return bytes(page[start + 1 : end])
        if kind == H_OFFPAGE and end - start >= 12:
            first, length = struct.unpack_from(self.order + "II", page, start + 4)
            return self.overflow(first, length)
        raise SourceError(f"{self.what}: page {pgno}: unsupported hash item type {kind}")

    def overflow(self, pgno: int, length: int) -> bytes:
        """An item of `length` bytes stored in a chain of overflow pages from `pgno`."""
        out = bytearray()
        for _ in range(self.last):  # a chain visits each page at most once
            if len(out) == length:
                return bytes(out)
            page = self.page(pgno)
            (used,) = struct.unpack_from(self.order + "H", page, 22)
            if page[25] != P_OVERFLOW or not 0 < used <= min(length - len(out), len(page) - 26):
                raise SourceError(f"{self.what}: page {pgno}: broken overflow chain")
            out += page[PAGE_HEADER : PAGE_HEADER + used]
            (pgno,) = struct.unpack_from(self.order + "I", page, 16)
        if len(out) == length:
            return bytes(out)
        raise SourceError(f"{self.what}: overflow chain longer than the file")
