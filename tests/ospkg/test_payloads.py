"""Payload readers on hand-made archives: cpio newc, compressed streams, rpm headers."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma

import pytest
import zstandard

from ocibuild.errors import SourceError, UnsafePathError
from ocibuild.ospkg.compress import compression_of, decompressed
from ocibuild.ospkg.cpio import CpioReader
from ocibuild.ospkg.rpmfile import read_header


def newc(members: list[tuple[str, int, bytes]], nlink: int = 1) -> bytes:
    out = b""
    for ino, (name, mode, data) in enumerate([*members, ("TRAILER!!!", 0, b"")]):
        raw = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(raw), 0]
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        out += header + raw + b"\0" * (-(len(header) + len(raw)) % 4)
        out += data + b"\0" * (-len(data) % 4)
    return out


def test_cpio_members_and_content() -> None:
    archive = newc(
        [("./etc", 0o40755, b""), ("./etc/a", 0o100644, b"hello"), ("./etc/b", 0o100600, b"xy")]
    )
    reader = CpioReader(io.BytesIO(archive), "test")
    seen = []
    for member in reader:
        assert reader.content is not None
        seen.append((member.name, member.size, reader.content.read(1) if member.size else b""))
    assert seen == [("etc", 0, b""), ("etc/a", 5, b"h"), ("etc/b", 2, b"x")]  # unread rest skipped


@pytest.mark.parametrize("name", ["./../escape", "../../etc/passwd", "/etc/passwd"])
def test_cpio_entries_escaping_the_root_are_refused(name: str) -> None:
    with pytest.raises(UnsafePathError):
        list(CpioReader(io.BytesIO(newc([(name, 0o100644, b"x")])), "test"))


def test_corrupt_and_truncated_cpio() -> None:
    with pytest.raises(SourceError, match="not a cpio newc payload"):
        list(CpioReader(io.BytesIO(b"0707XYjunk" * 20), "test"))
    with pytest.raises(SourceError, match="truncated cpio payload"):
        list(CpioReader(io.BytesIO(newc([("./a", 0o100644, b"data")])[:100]), "test"))


@pytest.mark.parametrize(
    ("hint", "compress"),
    [
        ("gzip", gzip.compress),
        ("bzip2", bz2.compress),
        ("xz", lzma.compress),
        ("lzma", lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE)),
        ("zstd", lambda d: zstandard.ZstdCompressor().compress(d)),
    ],
)
def test_decompressors(hint: str, compress) -> None:  # type: ignore[no-untyped-def]
    data = b"payload " * 10000
    with decompressed(io.BufferedReader(io.BytesIO(compress(data))), hint, "test") as stream:  # type: ignore[arg-type]
        assert stream.read() == data


def test_corrupt_compressed_data_names_the_file() -> None:
    broken = lzma.compress(b"x" * 100000)[:-40] + b"\0" * 40
    with (
        pytest.raises(SourceError, match=r"pkg.rpm: corrupt xz data"),
        decompressed(io.BytesIO(broken), "xz", "pkg.rpm") as s,
    ):  # type: ignore[arg-type]
        s.read()
    with (
        pytest.raises(SourceError, match="not gzip-compressed"),
        decompressed(io.BytesIO(b"plain text"), "gzip", "x"),
    ):  # type: ignore[arg-type]
        pass
    assert [
        compression_of(n)
        for n in ("Packages.xz", "data.tar.zst", "data.tar", "gzip", "primary.xml.bz2")
    ] == ["xz", "zstd", "none", "gzip", "bzip2"]


def test_not_an_rpm() -> None:
    with pytest.raises(SourceError, match="pkg: not an rpm file"):
        read_header(io.BytesIO(b"\0" * 200), "pkg")
    with pytest.raises(SourceError, match="pkg: truncated rpm file"):
        read_header(io.BytesIO(b"\xed\xab\xee\xdb" + b"\0" * 20), "pkg")
