"""Decompress package payloads and repository indexes as streams: gzip, bzip2, xz/lzma, zstd.

The compression is told by the container (an rpm header, an index file name) and checked
against the stream's magic bytes, so a mislabelled file still opens, and a corrupt one fails
with an error naming what was being read.
"""

from __future__ import annotations

import bz2
import io
import lzma
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO, cast

from ocibuild.errors import SourceError
from ocibuild.layer.reader import DECODE_ERRORS

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x5d\x00\x00", "lzma"),
)
_NAMES = {
    "gz": "gzip",
    "gzip": "gzip",
    "bz2": "bzip2",
    "bzip2": "bzip2",
    "xz": "xz",
    "lzma": "lzma",
    "zst": "zstd",
    "zstd": "zstd",
    "": "none",
    "none": "none",
    "identity": "none",
}


def compression_of(name: str) -> str:
    """`Packages.xz` -> xz, `data.tar.zst` -> zstd, `gzip` -> gzip, `primary.xml` -> none."""
    lowered = name.lower()
    if lowered in _NAMES:
        return _NAMES[lowered]
    suffix = lowered.rsplit(".", 1)[-1] if "." in lowered else ""
    return _NAMES.get(suffix, "none")


def sniff(head: bytes) -> str:
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return "none"


@contextmanager
def decompressed(stream: BinaryIO, hint: str, what: str) -> Iterator[BinaryIO]:
    """A readable stream of the decompressed content of `stream` (compressed as `hint`,
    or as its magic bytes say)."""
    if hint == "none":
        yield stream
        return
    buffered: Any = stream if hasattr(stream, "peek") else io.BufferedReader(cast(Any, stream))
    algorithm = sniff(buffered.peek(8)[:8])
    if algorithm == "none":
        raise SourceError(f"{what}: not {hint}-compressed data (unknown magic bytes)")
    try:
        reader = _open(buffered, algorithm)
    except DECODE_ERRORS as e:
        raise SourceError(f"{what}: cannot decompress ({algorithm}): {e}") from None
    try:
        yield _Guarded(reader, what, algorithm)  # type: ignore[misc]
    finally:
        reader.close()


def _open(stream: BinaryIO, algorithm: str) -> BinaryIO:
    if algorithm == "gzip":
        from isal import igzip

        return cast(BinaryIO, igzip.GzipFile(fileobj=stream, mode="rb"))
    if algorithm == "bzip2":
        return cast(BinaryIO, bz2.BZ2File(stream, "rb"))
    if algorithm in ("xz", "lzma"):
        return cast(BinaryIO, lzma.LZMAFile(stream, "rb"))
    if algorithm == "zstd":
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(
            stream, read_across_frames=True, closefd=False
        )
        return cast(BinaryIO, reader)
    return stream


class _Guarded(io.RawIOBase):
    """Turns a decompressor's errors into a `SourceError` naming the file being read."""

    def __init__(self, inner: BinaryIO, what: str, algorithm: str) -> None:
        self.inner, self.what, self.algorithm = inner, what, algorithm

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        try:
            return self.inner.read(size)
        except DECODE_ERRORS as e:
            raise SourceError(f"{self.what}: corrupt {self.algorithm} data ({e})") from None

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
