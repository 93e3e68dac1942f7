"""Product tarballs -> layer entries under the products root, streamed, never unpacked.

Each tarball is decompressed and parsed by a reader thread that hands members and their content
to the layer writer through a buffer of bounded size. bzip2, scisoft's format and the slow
part, is decompressed on every core by indexed_bzip2 (a parallel C++ decoder: about 1.4x
faster than a block-parallel decoder over the standard library's bz2, for 1.4x less CPU; see
bench/bzip2_bench.py); gzip and xz outside the GIL. Entries come in the tarball's own order:
the tarball is pinned by sha256, so the order is deterministic. A FILE entry's content is read
from the stream when the writer asks for it, before the next entry.

Unsafe members reject the tarball: absolute paths, `..`, members under a file or a symlink,
links leaving the products root even through other links (`ocibuild.layer.safepath`), device
and other special files, sparse members, whiteout names, members past the size limits.
"""

from __future__ import annotations

import contextlib
import lzma
import posixpath
import tarfile
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

import indexed_bzip2

from ocibuild import decoders
from ocibuild.cputime import sample, stage
from ocibuild.errors import LayerError, SourceError, UnsafePathError
from ocibuild.layer.codec import threads
from ocibuild.layer.entry import Entry, Kind, check_relative, clean_path
from ocibuild.layer.reader import (
    UNREADABLE,
    each_member,
    gunzipped,
    member_content,
    open_stream,
)
from ocibuild.layer.safepath import LayerTree, check_tar_member
from ocibuild.limits import check_expansion

CHUNK = 1 << 20
READ_AHEAD_BYTES = 32 << 20  # per tarball: what a reader may decompress before it is consumed
HEADER_COST = 512  # what one member's metadata counts against the read-ahead budget


class Kept:
    """A small tarball's members and contents, kept by a first pass over it for the second,
    which takes them once: a tarball read twice is then decoded and parsed once."""

    def __init__(self, members: list[tuple[tarfile.TarInfo, bytes]]) -> None:
        self._members: list[tuple[tarfile.TarInfo, bytes]] | None = members

    def take(self) -> list[tuple[tarfile.TarInfo, bytes]] | None:
        members, self._members = self._members, None
        return members


@dataclass(frozen=True)
class ProductTarball:
    """A fetched product tarball: what it is, where it came from, where it is cached; `kept`,
    its members as a first pass kept them."""

    product: str
    version: str
    url: str
    path: Path
    size: int
    sha256: str
    kept: Kept | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.product} {self.version}: {self.url}"


BZIP2_MAGIC = b"BZh"
BZIP2_NAMES = (".tar.bz2", ".tbz2", ".tbz")


def decodes_on_every_core(name: str) -> bool:
    """Whether reading the tarball of this name keeps every core busy: bzip2, which scisoft
    names .tar.bz2 (the stream itself is told by its magic bytes when it is opened)."""
    return name.endswith(BZIP2_NAMES)


@contextlib.contextmanager
def open_tarball(path: Path) -> Iterator[BinaryIO]:
    """The tar stream of a .tar.bz2, .tar.gz, .tar.xz or plain .tar, by its magic bytes."""
    with open(path, "rb") as raw:
        magic = raw.read(6)
        raw.seek(0)
        if magic.startswith(BZIP2_MAGIC):
            # with parallelization 1 it decodes in this thread holding the GIL, stalling the
            # other readers and the layer writer; from 2 on, its own threads decode
            with indexed_bzip2.open(str(path), parallelization=max(2, threads())) as stream:
                yield _Bzip2Stream(stream)  # type: ignore[misc]
                sample()  # its decoder threads exit with it
        elif magic.startswith(b"\x1f\x8b"):
            # smaller blocks than a layer's: a build reads several tarballs at once
            with gunzipped(raw, block_size=256 << 10) as stream:
                yield stream
        elif magic.startswith(b"\xfd7zXZ\x00"):
            with lzma.LZMAFile(raw) as stream:
                yield stream  # type: ignore[misc]
        else:
            yield raw


class _Bzip2Stream:
    """indexed_bzip2's reader, with its errors (a C++ exception for a truncated stream, one
    missing its end-of-stream marker and CRC, or a block failing its CRC) as OSError."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        try:
            return self._stream.read(size)
        except RuntimeError as e:
            raise OSError(f"bzip2 stream truncated or damaged ({e})") from None


def tarball_entries(
    tarballs: Sequence[ProductTarball | Future[ProductTarball]], into: str, readers: int = 1
) -> Iterator[Entry]:
    """Entries of `tarballs` under `into`, one tarball after the other, with up to `readers`
    tarballs decompressing at once; a tarball still downloading is waited for when its turn
    comes."""
    into = clean_path(into)
    waiting = deque(tarballs)
    running: deque[_Reader] = deque()
    seen: dict[str, tuple[Kind, ProductTarball]] = {}
    tree = LayerTree(root=into, eager=True)

    def start_next() -> None:
        if waiting:
            tarball = waiting.popleft()
            if isinstance(tarball, Future):
                tarball = tarball.result()
            reader = _Reader(tarball, into)
            reader.start()
            running.append(reader)

    try:
        for _ in range(max(1, readers)):
            start_next()
        while running:
            yield from _reader_entries(running[0], seen, tree)
            decoders.stop(running.popleft())
            start_next()
        tree.finish()
    finally:
        # stopped and joined, not only told to stop: a reader still inside the bzip2 decoder
        # when the interpreter ends aborts the process (ocibuild.decoders)
        for reader in running:
            decoders.stop(reader)


def _reader_entries(
    reader: _Reader, seen: dict[str, tuple[Kind, ProductTarball]], tree: LayerTree
) -> Iterator[Entry]:
    tarball = reader.tarball
    current: _MemberStream | None = None
    while True:
        kind, value = reader.buffer.get()
        if kind == "data":
            continue  # content of a file the writer did not read (an empty read is allowed)
        if current is not None:
            current.expire()
            current = None
        if kind == "error":
            raise value
        if kind == "end":
            return
        entry: Entry = value
        _check_unique(entry, tarball, seen)
        tree.add(entry.path, entry.kind, entry.link, what=str(tarball))
        if entry.kind is Kind.FILE and entry.size:
            stream = current = _MemberStream(reader.buffer, entry)
            entry = replace(entry, open=lambda stream=stream: stream)  # type: ignore[misc]
        yield entry


def _check_unique(
    entry: Entry, tarball: ProductTarball, seen: dict[str, tuple[Kind, ProductTarball]]
) -> None:
    previous = seen.get(entry.path)
    if previous is not None and not (previous[0] is Kind.DIR and entry.kind is Kind.DIR):
        other = previous[1]
        where = "twice in the tarball" if other is tarball else f"also in {other}"
        raise SourceError(f"{tarball}: {entry.path} is {where}")
    seen[entry.path] = (entry.kind, tarball)


class _Closed(Exception):
    pass


class _Buffer:
    """A queue bounded by the bytes it holds, between a reader thread and the layer writer."""

    def __init__(self, budget: int) -> None:
        self._items: deque[tuple[tuple[str, Any], int]] = deque()
        self._bytes = 0
        self._budget = budget
        self._closed = False
        self._cond = threading.Condition()

    def put(self, item: tuple[str, Any], cost: int) -> None:
        with self._cond:
            while not self._closed and self._items and self._bytes + cost > self._budget:
                self._cond.wait()
            if self._closed:
                raise _Closed
            self._items.append((item, cost))
            self._bytes += cost
            self._cond.notify_all()

    def get(self) -> tuple[str, Any]:
        with self._cond:
            while not self._items:
                self._cond.wait()
            item, cost = self._items.popleft()
            self._bytes -= cost
            self._cond.notify_all()
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._items.clear()
            self._bytes = 0
            self._cond.notify_all()


class _MemberStream:
    """The content of one file entry, read from the reader's buffer; valid until the
    entries generator moves on to the next entry."""

    def __init__(self, buffer: _Buffer, entry: Entry) -> None:
        self._buffer = buffer
        self._path = entry.path
        self._remaining = entry.size
        self._chunk = memoryview(b"")
        self._expired = False

    def expire(self) -> None:
        self._expired = True

    def read(self, size: int = -1) -> bytes:
        if self._expired:
            raise LayerError(f"{self._path}: content read after the next entry was requested")
        if not self._remaining:
            return b""
        if not self._chunk:
            kind, value = self._buffer.get()
            if kind == "error":
                raise value
            if kind != "data":
                raise LayerError(f"{self._path}: content ended early in the tarball stream")
            self._chunk = memoryview(value)
        n = len(self._chunk) if size < 0 else min(size, len(self._chunk))
        n = min(n, self._remaining)
        data = bytes(self._chunk[:n])
        self._chunk = self._chunk[n:]
        self._remaining -= n
        return data

    def __enter__(self) -> _MemberStream:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class _Reader(threading.Thread):
    def __init__(self, tarball: ProductTarball, into: str) -> None:
        super().__init__(name=f"ups-reader-{tarball.product}", daemon=True)
        self.tarball = tarball
        self.into = into
        self.buffer = _Buffer(READ_AHEAD_BYTES)
        decoders.register(self, self.cancel)

    def cancel(self) -> None:
        self.buffer.close()

    def run(self) -> None:
        try:
            with stage("decode"):
                self._read()
            self.buffer.put(("end", None), 0)
        except _Closed:
            return
        except SourceError as e:
            self._fail(e)
        except UNREADABLE as e:
            detail = str(e) or type(e).__name__
            self._fail(
                SourceError(
                    f"{self.tarball}: not a readable tarball (truncated or damaged?): {detail}"
                )
            )
        except Exception as e:  # reported to the consumer, whatever it is
            self._fail(e)

    def _fail(self, error: Exception) -> None:
        with contextlib.suppress(_Closed):
            self.buffer.put(("error", error), 0)

    def _read(self) -> None:
        kept = self.tarball.kept.take() if self.tarball.kept is not None else None
        if kept is not None:
            self._replay(kept)
            return
        with (
            open_tarball(self.tarball.path) as stream,
            open_stream(stream) as tar,
        ):
            unpacked = 0
            for info in each_member(tar):
                entry = member_entry(info, self.into, self.tarball)
                unpacked += HEADER_COST + info.size
                check_expansion(unpacked, self.tarball.size, str(self.tarball))
                self.buffer.put(("entry", entry), HEADER_COST)
                if entry.kind is not Kind.FILE or not info.size:
                    continue
                for chunk in member_content(tar, info, CHUNK):
                    self.buffer.put(("data", chunk), len(chunk))
            # tar stops at its end-of-archive blocks; reading the compressed stream to its end
            # is what checks its tail (bzip2's stream CRC, gzip's CRC and length)
            while chunk := stream.read(CHUNK):
                unpacked += len(chunk)
                check_expansion(unpacked, self.tarball.size, str(self.tarball))

    def _replay(self, kept: list[tuple[tarfile.TarInfo, bytes]]) -> None:
        """The members a first pass kept, each through `member_entry` as in `_read` (the
        first pass checked the expansion limits and the tarball's end)."""
        for info, content in kept:
            entry = member_entry(info, self.into, self.tarball)
            self.buffer.put(("entry", entry), HEADER_COST)
            if entry.kind is Kind.FILE and info.size:
                for start in range(0, len(content), CHUNK):
                    chunk = content[start : start + CHUNK]
                    self.buffer.put(("data", chunk), len(chunk))


def member_entry(info: tarfile.TarInfo, into: str, tarball: ProductTarball) -> Entry:
    """The entry of one tarball member, placed under `into`; unsafe members raise."""
    try:
        rel = check_relative(info.name, "member")
    except UnsafePathError as e:
        raise UnsafePathError(f"{tarball}: {e}") from None
    check_tar_member(info, str(tarball))
    path = posixpath.join(into, rel) if rel else into
    mode = info.mode & 0o7777
    if info.isdir():
        return Entry(path, Kind.DIR, mode=mode)
    if info.isreg():
        return Entry(path, Kind.FILE, mode=mode, size=info.size)
    if info.issym():
        return Entry(path, Kind.SYMLINK, mode=0o777, link=info.linkname)
    if info.islnk():
        try:
            target = check_relative(info.linkname, f"hard link {info.name} ->")
        except UnsafePathError as e:
            raise UnsafePathError(f"{tarball}: {e}") from None
        return Entry(path, Kind.HARDLINK, mode=mode, link=posixpath.join(into, target))
    # device nodes and FIFOs were refused by check_tar_member, as in every source
    raise UnsafePathError(f"{tarball}: member {info.name!r} has the tar type {info.type!r}")
