"""The rpm file format: lead, signature header, header, payload (rpm's doc/manual/format.md).

Only what installing needs is decoded: the package's identity, its file list with modes, owners,
links, digests and colors, the payload's format and compression, and which scriptlets it carries.
"""

from __future__ import annotations

import io
import stat
import struct
from dataclasses import dataclass
from typing import BinaryIO

from ocibuild.errors import SourceError, UnsafePathError
from ocibuild.layer.entry import Kind, check_relative
from ocibuild.limits import MEMBER_SIZE

LEAD_SIZE = 96
LEAD_MAGIC = b"\xed\xab\xee\xdb"
HEADER_MAGIC = b"\x8e\xad\xe8\x01"
MAX_HEADER = 512 << 20

# header tags (rpm's include/rpm/rpmtag.h)
NAME, VERSION, RELEASE, EPOCH, ARCH = 1000, 1001, 1002, 1003, 1022
FILESIZES, FILEMODES, FILERDEVS, FILEDIGESTS, FILELINKTOS, FILEFLAGS = (
    1028,
    1030,
    1033,
    1035,
    1036,
    1037,
)
FILEUSERNAME, FILEGROUPNAME, OLDFILENAMES = 1039, 1040, 1027
FILEDEVICES, FILEINODES, DIRINDEXES, BASENAMES, DIRNAMES = 1095, 1096, 1116, 1117, 1118
FILECOLORS, PAYLOADFORMAT, PAYLOADCOMPRESSOR, LONGFILESIZES = 1140, 1124, 1125, 5008
PAYLOADDIGEST, PAYLOADDIGESTALGO = 5092, 5093
# signature header tags of OpenPGP signatures (rpm's rpmtag.h): over the header alone
# (DSAHEADER is also rpm 4's tag for ECDSA and EdDSA keys), and over header and payload
RSAHEADER, DSAHEADER, SIGPGP, SIGGPG = 268, 267, 1002, 1005
SIGNATURE_TAGS = (RSAHEADER, DSAHEADER, SIGPGP, SIGGPG)
PROVIDENAME, PROVIDEFLAGS, PROVIDEVERSION = 1047, 1112, 1113
# scriptlets that would run at install time: (body tag, program tag) -> name
SCRIPTLETS = {
    "pretrans": (1151, 1153),
    "pre": (1023, 1085),
    "post": (1024, 1086),
    "posttrans": (1152, 1154),
    "triggers": (1065, 1092),
    "filetriggers": (5066, 5067),
    "transfiletriggers": (5076, 5077),
}
GHOST = 1 << 6  # RPMFILE_GHOST: listed, never in the payload, not installed

_COUNT_TYPES = {2: "B", 3: "H", 4: "I", 5: "Q"}  # INT8, INT16, INT32, INT64 (unsigned, BE)


@dataclass(frozen=True)
class RpmFile:
    """One path of a package, as its header describes it."""

    index: int
    path: str  # image-relative
    kind: Kind
    mode: int
    size: int
    uname: str
    gname: str
    link: str
    digest: str
    color: int
    rdev: int
    inode: tuple[int, int]  # (device, inode): members of one hardlink set share it
    ghost: bool


@dataclass(frozen=True)
class RpmHeader:
    name: str
    epoch: str
    version: str
    release: str
    arch: str
    files: tuple[RpmFile, ...]
    payload_format: str
    payload_compressor: str
    payload_offset: int
    scriptlets: tuple[str, ...]
    header_offset: int = 0  # where the (signed) header starts in the file
    signatures: tuple[tuple[int, bytes], ...] = ()  # (signature tag, OpenPGP signature)
    payload_digest: str = ""  # hex digest of the compressed payload, from the header
    payload_digest_algo: int = 0  # OpenPGP hash algorithm number (8: SHA-256)

    @property
    def evr(self) -> str:
        text = f"{self.epoch}:{self.version}" if self.epoch else self.version
        return f"{text}-{self.release}"

    @property
    def nevra(self) -> str:
        return f"{self.name}-{self.evr}.{self.arch}"


class _Header:
    """A parsed header structure: tag -> (type, offset, count) over its data store."""

    def __init__(self, index: dict[int, tuple[int, int, int]], store: bytes, what: str) -> None:
        self.index, self.store, self.what = index, store, what

    def has(self, tag: int) -> bool:
        return tag in self.index

    def strings(self, tag: int) -> list[str]:
        if tag not in self.index:
            return []
        kind, offset, count = self.index[tag]
        if kind not in (6, 8, 9):
            raise SourceError(f"{self.what}: header tag {tag} is not a string")
        out = []
        for _ in range(count if kind != 6 else 1):
            end = self.store.find(b"\0", offset)
            if end < 0:
                raise SourceError(f"{self.what}: header string of tag {tag} is not terminated")
            out.append(self.store[offset:end].decode("utf-8", "surrogateescape"))
            offset = end + 1
        return out

    def blob(self, tag: int) -> bytes:
        """A BIN value (a signature), b"" when the tag is absent."""
        if tag not in self.index:
            return b""
        kind, offset, count = self.index[tag]
        if kind != 7 or offset + count > len(self.store):
            raise SourceError(f"{self.what}: header tag {tag} is not binary data in the header")
        return self.store[offset : offset + count]

    def string(self, tag: int, default: str = "") -> str:
        values = self.strings(tag)
        return values[0] if values else default

    def ints(self, tag: int) -> list[int]:
        if tag not in self.index:
            return []
        kind, offset, count = self.index[tag]
        code = _COUNT_TYPES.get(kind)
        if code is None:
            raise SourceError(f"{self.what}: header tag {tag} is not an integer array")
        size = struct.calcsize(">" + code) * count
        if offset + size > len(self.store):
            raise SourceError(f"{self.what}: header tag {tag} runs past the header")
        return list(struct.unpack_from(f">{count}{code}", self.store, offset))


def _read_exact(stream: BinaryIO, size: int, what: str) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise SourceError(f"{what}: truncated rpm file")
    return data


def _read_header(stream: BinaryIO, what: str, pad: bool) -> tuple[_Header, int]:
    intro = _read_exact(stream, 16, what)
    if intro[:4] != HEADER_MAGIC:
        raise SourceError(f"{what}: bad rpm header magic")
    count, size = struct.unpack(">II", intro[8:16])
    if count * 16 + size > MAX_HEADER:
        raise SourceError(f"{what}: rpm header of {count} tags and {size} bytes is too large")
    raw_index = _read_exact(stream, count * 16, what)
    store = _read_exact(stream, size, what)
    index = {}
    for tag, kind, offset, n in struct.iter_unpack(">IIII", raw_index):
        if offset > size:
            raise SourceError(f"{what}: header tag {tag} points outside the header")
        index[tag] = (kind, offset, n)
    used = 16 + count * 16 + size
    if pad and used % 8:
        _read_exact(stream, 8 - used % 8, what)
        used += 8 - used % 8
    return _Header(index, store, what), used


def read_header(stream: BinaryIO, what: str) -> RpmHeader:
    """Read the lead, signature and header of an rpm, leaving `stream` at the payload."""
    lead = _read_exact(stream, LEAD_SIZE, what)
    if lead[:4] != LEAD_MAGIC:
        raise SourceError(f"{what}: not an rpm file (bad lead magic)")
    signature, sig_size = _read_header(stream, what, pad=True)
    header, size = _read_header(stream, what, pad=False)
    digests = header.strings(PAYLOADDIGEST)
    return RpmHeader(
        name=header.string(NAME),
        epoch=str(header.ints(EPOCH)[0]) if header.has(EPOCH) else "",
        version=header.string(VERSION),
        release=header.string(RELEASE),
        arch=header.string(ARCH),
        files=tuple(_files(header, what)),
        payload_format=header.string(PAYLOADFORMAT, "cpio"),
        payload_compressor=header.string(PAYLOADCOMPRESSOR, "gzip"),
        payload_offset=LEAD_SIZE + sig_size + size,
        scriptlets=tuple(
            name
            for name, (body, program) in SCRIPTLETS.items()
            if header.has(body) or header.has(program)
        ),
        header_offset=LEAD_SIZE + sig_size,
        signatures=tuple((t, signature.blob(t)) for t in SIGNATURE_TAGS if signature.has(t)),
        payload_digest=digests[0] if digests else "",
        payload_digest_algo=(header.ints(PAYLOADDIGESTALGO) or [0])[0],
    )


def header_blob(blob: bytes, what: str) -> _Header:
    """A header as the rpm database stores it: the header structure without its magic."""
    header, _ = _read_header(io.BytesIO(HEADER_MAGIC + bytes(4) + blob), what, pad=False)
    return header


def file_paths(header: _Header, what: str) -> list[str]:
    """The header's file paths, absolute as rpm lists them."""
    if not header.has(BASENAMES):
        return header.strings(OLDFILENAMES)
    dirnames = header.strings(DIRNAMES)
    try:
        return [
            dirnames[d] + b
            for d, b in zip(header.ints(DIRINDEXES), header.strings(BASENAMES), strict=True)
        ]
    except (IndexError, ValueError):
        raise SourceError(f"{what}: inconsistent file list in the rpm header") from None


def _files(header: _Header, what: str) -> list[RpmFile]:
    paths = file_paths(header, what)
    n = len(paths)
    sizes = header.ints(LONGFILESIZES) or header.ints(FILESIZES)
    modes = header.ints(FILEMODES)
    rdevs = header.ints(FILERDEVS) or [0] * n
    digests = header.strings(FILEDIGESTS) or [""] * n
    links = header.strings(FILELINKTOS) or [""] * n
    flags = header.ints(FILEFLAGS) or [0] * n
    users = header.strings(FILEUSERNAME) or ["root"] * n
    groups = header.strings(FILEGROUPNAME) or ["root"] * n
    colors = header.ints(FILECOLORS) or [0] * n
    devices = header.ints(FILEDEVICES) or [1] * n
    inodes = header.ints(FILEINODES) or list(range(1, n + 1))
    arrays = (sizes, modes, rdevs, digests, links, flags, users, groups, colors, devices, inodes)
    if any(len(a) != n for a in arrays):
        raise SourceError(f"{what}: rpm header file arrays disagree in length")
    files = []
    for i, raw in enumerate(paths):
        if not raw.startswith("/"):
            raise UnsafePathError(f"{what}: file {raw!r} is not an absolute path")
        path = check_relative(raw.lstrip("/"), f"{what}: file")
        MEMBER_SIZE.check(sizes[i], f"{what}: {raw}")  # a declared size, believed up to a budget
        files.append(
            RpmFile(
                index=i,
                path=path,
                kind=kind_of(modes[i], f"{what}: {raw}"),
                mode=stat.S_IMODE(modes[i]),
                size=sizes[i],
                uname=users[i],
                gname=groups[i],
                link=links[i],
                digest=digests[i],
                color=colors[i],
                rdev=rdevs[i],
                inode=(devices[i], inodes[i]),
                ghost=bool(flags[i] & GHOST),
            )
        )
    return files


def kind_of(mode: int, what: str) -> Kind:
    fmt = stat.S_IFMT(mode)
    kinds = {
        stat.S_IFREG: Kind.FILE,
        stat.S_IFDIR: Kind.DIR,
        stat.S_IFLNK: Kind.SYMLINK,
        stat.S_IFCHR: Kind.CHAR,
        stat.S_IFBLK: Kind.BLOCK,
        stat.S_IFIFO: Kind.FIFO,
    }
    if fmt not in kinds:
        raise SourceError(f"{what}: unsupported file type {oct(fmt)}")
    return kinds[fmt]
