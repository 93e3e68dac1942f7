"""The layer writer: deterministic PAX tar, one-pass hashing, codecs; the streaming tar reader."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from ocibuild.compression import Compression
from ocibuild.errors import LayerError, UnsafePathError
from ocibuild.layer.entry import Entry, Kind, bytes_entry, clean_path, dir_entry, whiteout_entry
from ocibuild.layer.tarstream import sorted_entries
from ocibuild.layer.writer import write_layer


def sample_entries() -> list[Entry]:
    return [
        bytes_entry("usr/bin/tool", b"#!/bin/sh\necho hi\n", mode=0o755),
        Entry("usr/bin/alias", Kind.SYMLINK, mode=0o777, link="tool"),
        Entry("usr/lib/a.so", Kind.HARDLINK, link="usr/lib/b.so"),
        bytes_entry("usr/lib/b.so", b"\x7fELF" * 1000, mode=0o644, uid=1000, gid=100),
        dir_entry("opt", mode=0o700),
        Entry("etc/x", Kind.FILE, size=3, open=lambda: io.BytesIO(b"abc"), xattrs={"user.k": b"v"}),
    ]


def layer(entries: list[Entry], algorithm: str = "gzip", mtime: int = 0) -> tuple[bytes, object]:
    out = io.BytesIO()
    blob = write_layer(sorted_entries(entries), out, Compression(algorithm), mtime)
    return out.getvalue(), blob


def members(tar_bytes: bytes) -> list[tarfile.TarInfo]:
    return list(tarfile.open(fileobj=io.BytesIO(tar_bytes)))


@pytest.mark.parametrize("algorithm", ["gzip", "zstd", "none"])
def test_digests_match_content(algorithm: str) -> None:
    data, blob = layer(sample_entries(), algorithm)
    tar = {
        "gzip": gzip.decompress,
        "none": bytes,
        "zstd": lambda d: zstandard.ZstdDecompressor().stream_reader(io.BytesIO(d)).read(),
    }[algorithm](data)
    assert blob.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert blob.diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
    assert blob.size == len(data) and blob.tar_size == len(tar)


def test_same_entries_in_any_order_give_same_bytes() -> None:
    entries = sample_entries()
    first, _ = layer(entries)
    second, _ = layer(list(reversed(entries)))
    assert first == second


def test_tar_is_sorted_with_parents_and_fixed_metadata() -> None:
    data, _ = layer(sample_entries(), "none", mtime=1451606400)
    infos = members(data)
    names = [i.name for i in infos]
    assert names == [
        "etc",
        "etc/x",
        "opt",
        "usr",
        "usr/bin",
        "usr/bin/alias",
        "usr/bin/tool",
        "usr/lib",
        "usr/lib/a.so",
        "usr/lib/b.so",
    ]
    assert all(i.mtime == 1451606400 for i in infos)
    by_name = {i.name: i for i in infos}
    assert by_name["opt"].mode == 0o700 and by_name["usr"].mode == 0o755
    # the hardlink group's first path in sorted order carries the content
    assert by_name["usr/lib/a.so"].isfile() and by_name["usr/lib/a.so"].size == 4000
    assert by_name["usr/lib/b.so"].islnk() and by_name["usr/lib/b.so"].linkname == "usr/lib/a.so"
    assert by_name["usr/bin/alias"].issym() and by_name["usr/bin/alias"].linkname == "tool"
    assert by_name["etc/x"].pax_headers["SCHILY.xattr.user.k"] == "v"


def test_content_shorter_than_size_is_an_error() -> None:
    bad = Entry("f", Kind.FILE, size=10, open=lambda: io.BytesIO(b"abc"))
    with pytest.raises(LayerError, match="short"):
        layer([bad])


def test_duplicate_file_in_unsorted_stream_is_an_error() -> None:
    out = io.BytesIO()
    with pytest.raises(LayerError, match="twice"):
        write_layer([bytes_entry("a", b"1"), bytes_entry("a", b"2")], out, Compression("none"))


def test_whiteout_and_clean_path() -> None:
    assert whiteout_entry("/tmp/junk").path == "tmp/.wh.junk"
    assert clean_path("/a/./b//c/") == "a/b/c"
    with pytest.raises(UnsafePathError):
        clean_path("../etc/passwd")
    with pytest.raises(UnsafePathError):
        clean_path("/a/../../b")


def test_gzip_output_does_not_depend_on_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    from ocibuild.layer import codec

    entries = [bytes_entry(f"f{i}", bytes(range(256)) * 4096 * (i + 1)) for i in range(4)]
    monkeypatch.setattr(codec, "threads", lambda: 1)
    one, _ = layer(entries)
    monkeypatch.setattr(codec, "threads", lambda: 4)
    four, _ = layer(entries)
    assert one == four


_KINDS = {
    Kind.FILE: tarfile.REGTYPE,
    Kind.DIR: tarfile.DIRTYPE,
    Kind.SYMLINK: tarfile.SYMTYPE,
    Kind.HARDLINK: tarfile.LNKTYPE,
    Kind.CHAR: tarfile.CHRTYPE,
    Kind.BLOCK: tarfile.BLKTYPE,
    Kind.FIFO: tarfile.FIFOTYPE,
}
# mostly ASCII, at the lengths around the fields' (100 for names, 32 for owners) and others
_PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
_lengths = st.sampled_from([1, 31, 32, 33, 99, 100, 101, 102, 155, 256]) | st.integers(0, 300)


@st.composite
def _strings(draw: st.DrawFn, top: int) -> str:
    length = min(draw(_lengths), top)
    text = draw(st.text(_PRINTABLE, min_size=length, max_size=length))
    if text and draw(st.integers(0, 9)) == 0:  # now and then one character that is not ASCII
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + "é" + text[at + 1 :]
    return text


_names = _strings(300)
_owners = _strings(40)
_numbers = st.integers(0, 2**21) | st.sampled_from([0, 0o7777777, 0o7777777 + 1])


@st.composite
def _entries(draw: st.DrawFn) -> tuple[Entry, int]:
    kind = draw(st.sampled_from(list(_KINDS)))
    entry = Entry(
        draw(_names.filter(bool)),
        kind,
        draw(st.integers(0, 0o177777)),
        draw(_numbers),
        draw(_numbers),
        draw(_owners),
        draw(_owners),
        draw(st.integers(0, 2**20) | st.just(0o77777777777 + 1)),
        link=draw(_names) if kind in (Kind.SYMLINK, Kind.HARDLINK) else "",
        devmajor=draw(_numbers) if kind in (Kind.CHAR, Kind.BLOCK) else 0,
        devminor=draw(_numbers) if kind in (Kind.CHAR, Kind.BLOCK) else 0,
        xattrs=draw(st.just({}) | st.dictionaries(st.just("user.a"), st.binary(), min_size=1)),
    )
    return entry, draw(st.just(1451606400) | st.integers(-1, 2**33))


@settings(max_examples=600, deadline=None)
@given(_entries())
def test_headers_are_the_bytes_tarfile_writes(case: tuple[Entry, int]) -> None:
    """The headers built directly (short names, and long ASCII names in a PAX header) are
    byte for byte what tarfile writes for the same entry, whichever path built them."""
    from ocibuild.layer.tarstream import tar_header

    entry, mtime = case
    info = tarfile.TarInfo(entry.path + ("/" if entry.kind is Kind.DIR else ""))
    info.type = _KINDS[entry.kind]
    info.mode, info.uid, info.gid = entry.mode & 0o7777, entry.uid, entry.gid
    info.uname, info.gname, info.mtime = entry.uname, entry.gname, mtime
    info.size = entry.size if entry.kind is Kind.FILE else 0
    info.linkname, info.devmajor, info.devminor = entry.link, entry.devmajor, entry.devminor
    info.pax_headers = {
        f"SCHILY.xattr.{name}": value.decode("utf-8", "surrogateescape")
        for name, value in sorted(entry.xattrs.items())
    }
    try:
        expected = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    except ValueError:  # a number tarfile cannot write either
        with pytest.raises(ValueError):
            tar_header(entry, mtime)
        return
    assert tar_header(entry, mtime) == expected


def test_long_and_unicode_names_use_pax() -> None:
    long_name = "p/" + "x" * 150
    data, _ = layer([bytes_entry(long_name, b"1"), bytes_entry("café", b"2")], "none")
    assert [m.name for m in members(data)] == ["café", "p", long_name]


def test_a_streamed_tar_forgets_the_members_it_has_read() -> None:
    """tarfile keeps every member it reads; the project's readers must not, or memory grows
    with the number of files of a layer or tarball."""
    from ocibuild.layer.reader import each_member, open_stream

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for i in range(2000):
            info = tarfile.TarInfo(f"{'d' * 120}/f{i}")
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    raw.seek(0)
    seen = []
    with open_stream(raw) as tar:
        for info in each_member(tar):
            seen.append(info.name)
            assert len(tar.members) <= 1
            assert tar.extractfile(info).read() == b"x"  # type: ignore[union-attr]
    assert seen == [f"{'d' * 120}/f{i}" for i in range(2000)]
