"""A streaming reader of cpio `newc` archives (rpm payloads), including rpm's stripped
`07070X` variant that names members by their index in the header's file list."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from ocibuild.errors import SourceError
from ocibuild.layer.entry import check_relative
from ocibuild.limits import MEMBER_SIZE

NEWC = b"070701"
NEWC_CRC = b"070702"
STRIPPED = b"07070X"
TRAILER = "TRAILER!!!"
_FIELDS = 13
CHUNK = 1 << 20


@dataclass(frozen=True)
class CpioMember:
    name: str  # image-relative, checked; "" for stripped members
    index: int  # position in the rpm header's file list (stripped format), else -1
    ino: int
    mode: int
    nlink: int
    size: int


class MemberContent(io.RawIOBase):
    """The content of the current member: a window of exactly `size` bytes of the archive.
    Closing it does not close the archive; the reader skips what was not read."""

    def __init__(self, stream: BinaryIO, size: int, what: str) -> None:
        self.stream, self.remaining, self.what = stream, size, what

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        want = self.remaining if size is None or size < 0 else min(size, self.remaining)
        data = self.stream.read(want)
        if not data:
            raise SourceError(f"{self.what}: payload ends inside a file")
        self.remaining -= len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        while self.remaining:
            self.read(CHUNK)


class CpioReader:
    """Iterate the members of a cpio stream; `content` is valid until the next member.

    `sizes` gives member sizes by header index for the stripped format (whose headers carry
    none)."""

    def __init__(self, stream: BinaryIO, what: str, sizes: list[int] | None = None) -> None:
        self.stream, self.what, self.sizes = stream, what, sizes or []
        self.offset = 0
        self.content: MemberContent | None = None
        self.content_size = 0

    def _read(self, size: int) -> bytes:
        data = self.stream.read(size)
        while len(data) < size:
            more = self.stream.read(size - len(data))
            if not more:
                raise SourceError(f"{self.what}: truncated cpio payload")
            data += more
        self.offset += size
        return data

    def _pad(self) -> None:
        if self.offset % 4:
            self._read(4 - self.offset % 4)

    def __iter__(self) -> Iterator[CpioMember]:
        while True:
            if self.content is not None:
                self.content.drain()
                self.offset += self.content_size
                self._pad()
                self.content = None
            magic = self._read(6)
            if magic == STRIPPED:
                index = int(self._read(8), 16)
                self._pad()
                if index >= len(self.sizes):
                    raise SourceError(
                        f"{self.what}: stripped cpio member {index} is not in the header"
                    )
                member = CpioMember("", index, 0, 0, 1, self.sizes[index])
            elif magic in (NEWC, NEWC_CRC):
                newc = self._newc()
                if newc is None:
                    return
                member = newc
            else:
                raise SourceError(f"{self.what}: not a cpio newc payload (magic {magic!r})")
            self.content_size = member.size
            self.content = MemberContent(self.stream, member.size, self.what)
            yield member

    def _newc(self) -> CpioMember | None:
        raw = self._read(8 * _FIELDS)
        try:
            ino, mode, _uid, _gid, nlink, _mtime, size, *_, namesize, _check = (
                int(raw[i : i + 8], 16) for i in range(0, 8 * _FIELDS, 8)
            )
        except ValueError:
            raise SourceError(f"{self.what}: corrupt cpio header") from None
        if not 0 < namesize <= 65536:
            raise SourceError(f"{self.what}: corrupt cpio header (name size {namesize})")
        name = self._read(namesize).rstrip(b"\0").decode("utf-8", "surrogateescape")
        self._pad()
        if name == TRAILER:
            return None
        path = check_relative(
            name[2:] if name.startswith("./") else name, f"{self.what}: payload entry"
        )
        MEMBER_SIZE.check(size, f"{self.what}: member {path!r}")
        return CpioMember(path, -1, ino, mode, nlink, size)
