"""`layer.tarheader.Header` reads every header as tarfile does: the same member, or the same
error, for headers tarfile writes in each format, for those headers changed byte by byte (with
and without a checksum that still matches), and for any 512 bytes at all."""

from __future__ import annotations

import io
import tarfile

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ocibuild.layer.tarheader import Header

TYPES = tarfile.SUPPORTED_TYPES  # every type tarfile reads, GNU's long names and sparse files too
# where each field starts: a change there changes what the field says (a byte after its NUL
# would not)
FIELD_STARTS = [0, 100, 108, 116, 124, 136, 148, 156, 157, 257, 263, 265, 297, 329, 337, 345]
FORMATS = [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]
DECODINGS = [("utf-8", "surrogateescape"), ("ascii", "strict"), ("latin-1", "strict")]
SLOTS = [*tarfile.TarInfo.__slots__, "_sparse_structs"]

# names around the fields' limits (100 for a name, 155 more for a ustar prefix)
names = st.one_of(
    st.integers(1, 260).map(lambda n: "d/" * (n // 4) + "f" * (n - 2 * (n // 4))),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=120),
    st.sampled_from(["dir/", "a/b/", "./x", "é/ü", "x" * 99 + "/"]),
)
numbers = st.one_of(st.integers(0, 0o7777777), st.integers(-(1 << 40), 1 << 40))


@st.composite
def headers(draw: st.DrawFn) -> bytes:
    """One 512-byte block of a member as tarfile writes it (in PAX, perhaps its extended header
    block): what a tarball holds."""
    info = tarfile.TarInfo(draw(names) or "x")
    info.type = draw(st.sampled_from(TYPES))
    info.mode = draw(st.integers(0, 0o7777))
    info.uid, info.gid = draw(numbers), draw(numbers)
    info.size = draw(st.integers(0, 1 << 40))
    info.mtime = draw(numbers)
    info.linkname = draw(names)
    info.uname, info.gname = draw(st.text(max_size=40)), draw(st.text(max_size=40))
    info.devmajor, info.devminor = draw(numbers), draw(numbers)
    try:
        written = info.tobuf(draw(st.sampled_from(FORMATS)), "utf-8", "surrogateescape")
    except ValueError:  # out of range for the format: GNU's base-256 numbers hold more
        try:
            written = info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
        except ValueError:
            assume(False)
    blocks = [written[i : i + 512] for i in range(0, len(written), 512)]
    return draw(st.sampled_from(blocks))


def with_checksum(block: bytes) -> bytes:
    """`block` with its checksum field made to match its bytes again."""
    blank = block[:148] + b" " * 8 + block[156:]
    return block[:148] + b"%06o\0 " % (sum(blank) & 0o777777) + block[156:]


@st.composite
def changed(draw: st.DrawFn) -> bytes:
    block = bytearray(draw(headers()))
    for _ in range(draw(st.integers(1, 6))):
        where = draw(st.one_of(st.integers(0, 511), st.sampled_from(FIELD_STARTS)))
        block[where] = draw(st.sampled_from([0, 32, 48, 55, 56, 97, 0x80, 0xFF]))
    return with_checksum(bytes(block)) if draw(st.booleans()) else bytes(block)


def read(cls: type[tarfile.TarInfo], block: bytes, decoding: tuple[str, str]) -> object:
    try:
        info = cls.frombuf(block, *decoding)
    except Exception as e:
        return (type(e), str(e))
    return {slot: getattr(info, slot) for slot in SLOTS if hasattr(info, slot)}


def same(block: bytes, decoding: tuple[str, str]) -> None:
    assert read(Header, block, decoding) == read(tarfile.TarInfo, block, decoding)


@settings(max_examples=1000)
@given(headers(), st.sampled_from(DECODINGS))
def test_headers_tarfile_wrote(block: bytes, decoding: tuple[str, str]) -> None:
    same(block, decoding)


@settings(max_examples=1000)
@given(changed(), st.sampled_from(DECODINGS))
def test_headers_changed(block: bytes, decoding: tuple[str, str]) -> None:
    same(block, decoding)


@given(st.binary(max_size=600), st.booleans(), st.sampled_from(DECODINGS))
def test_any_bytes(data: bytes, checksum: bool, decoding: tuple[str, str]) -> None:
    block = with_checksum(data.ljust(512, b"\0")[:512]) if checksum else data
    same(block, decoding)


def test_a_whole_archive_reads_the_same() -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for n in (1, 99, 100, 101, 156, 300):
            info = tarfile.TarInfo("p/" + "n" * n)
            info.size = n
            tar.addfile(info, io.BytesIO(b"x" * n))
        link = tarfile.TarInfo("l")
        link.type, link.linkname = tarfile.SYMTYPE, "t" * 200
        tar.addfile(link)

    def members(tarinfo: type[tarfile.TarInfo]) -> list[dict[str, object]]:
        raw.seek(0)
        with tarfile.open(fileobj=raw, mode="r|", tarinfo=tarinfo) as tar:
            return [
                {slot: getattr(m, slot) for slot in SLOTS if slot != "tarfile" and hasattr(m, slot)}
                for m in tar
            ]

    assert members(Header) == members(tarfile.TarInfo)
    assert len(members(Header)) == 7
