"""tar-split's record of a layer tar, the `overlay-layers/<id>.tar-split.gz` containers/storage
keeps beside each layer (podman rebuilds the layer's tar from it and the files for `save` and
`push`), made in one streaming pass that also hashes the tar.

Lines of compact JSON (vbatts/tar-split's `storage.Entry`, fields in Go's order):

- segment `{"type":2,"payload":B64,"position":N}`: every byte the tar reader consumed that is not
  file content: the previous entry's padding, then this entry's header blocks (PAX records and
  GNU long names included);
- file `{"type":1,"name":NAME,"size":S,"payload":B64,"position":N}` for every entry: `size` and
  the payload, Go's crc64 (ISO table) of the content, only when the header's size is not 0
  (`"payload":null` otherwise); `name_raw` (base64) instead of `name` when it is not UTF-8;
- after the last entry: a segment with the last padding and the end-of-archive blocks, then
  whatever follows them (a tar writer's record padding) in segments of up to 1 MiB, then an
  empty one (`"payload":""`, tar-split's read that met the end).

The reader follows Go's archive/tar as tar-split's fork of it reads a stream (USTAR, PAX, GNU
long names, a PAX global header being an entry of its own); GNU sparse files are refused.
Memory holds one header and one chunk of content at a time.
"""

from __future__ import annotations

import base64
import ctypes
import hashlib
import posixpath
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from ocibuild.errors import LayerError

BLOCK = 512
CHUNK = 1 << 20
SPECIAL_LIMIT = 1 << 20  # Go's maxSpecialFileSize: PAX records and GNU long names
SEGMENT, FILE = 2, 1
HEADER_ONLY = frozenset(b"123456")  # links, devices, directories, FIFOs: no content
ZERO_BLOCK = bytes(BLOCK)
WHITEOUT = b".wh."


class Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


@dataclass(frozen=True)
class TarFacts:
    """What containers/storage records of a layer's tar besides its tar-split."""

    digest: str  # sha256 of the whole uncompressed stream, `sha256:<hex>`
    size: int
    uids: tuple[int, ...]  # sorted, distinct, of every entry but whiteouts
    gids: tuple[int, ...]


# -- Go's crc64 with the ISO table ---------------------------------------------------------------

ISO_POLY = 0xD800000000000000  # reflected
_MASK = (1 << 64) - 1


def _table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ ISO_POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


def crc64_slow(data: bytes | memoryview, crc: int = 0) -> int:
    """Go's `crc64.Update(crc, MakeTable(ISO), data)`, a byte at a time."""
    table = _TABLE
    crc ^= _MASK
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ _MASK


_TABLE = _table()
Crc64 = Callable[[bytes, int, int, int], int]  # (data, start, length, crc) -> crc


def _slow_span(data: bytes, start: int, length: int, crc: int) -> int:
    return crc64_slow(memoryview(data)[start : start + length], crc)


def _isal_crc64() -> Crc64 | None:
    """ISA-L's `crc64_iso_refl` (the same CRC, tens of GB/s), which the isal package's
    extension module carries and exports; None where a build of it does not."""
    from isal import isal_zlib

    try:
        function = ctypes.CDLL(isal_zlib.__file__).crc64_iso_refl
    except (OSError, AttributeError):
        return None
    function.restype = ctypes.c_uint64
    function.argtypes = [ctypes.c_uint64, ctypes.c_void_p, ctypes.c_uint64]

    def crc64(data: bytes, start: int, length: int, crc: int) -> int:
        base = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value or 0  # no copy
        return int(function(crc, base + start, length)) if length else crc

    return crc64


crc64_span: Crc64 = _isal_crc64() or _slow_span


# -- Go's JSON -------------------------------------------------------------------------------------

_GO_ESCAPE = re.compile('["\\\\\x00-\x1f<>&\u2028\u2029]')
_SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def go_json_string(text: str) -> str:
    """`text` as Go's encoding/json (1.19) writes a string: HTML-safe, `\\uXXXX` for other
    control characters, everything else as UTF-8."""
    return (
        '"'
        + _GO_ESCAPE.sub(lambda m: _SHORT.get(m.group()) or f"\\u{ord(m.group()):04x}", text)
        + '"'
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# -- the stream -------------------------------------------------------------------------------------


class _Input:
    """The tar stream, hashed (unless `hashed` is false) and counted as it is read, read from a
    buffer."""

    def __init__(self, stream: BinaryIO, what: str, hashed: bool = True) -> None:
        self.stream, self.what = stream, what
        self.buffer = b""
        self.offset = 0
        self.sha = hashlib.sha256() if hashed else None
        self.size = 0

    def _fill(self) -> bool:
        data = self.stream.read(CHUNK)
        if not data:
            return False
        if self.sha is not None:
            self.sha.update(data)
        self.size += len(data)
        self.buffer = self.buffer[self.offset :] + data
        self.offset = 0
        return True

    def take(self, n: int) -> bytes:
        """Exactly `n` bytes, or fewer only where the stream ends."""
        while len(self.buffer) - self.offset < n and self._fill():
            pass
        data = self.buffer[self.offset : self.offset + n]
        self.offset += len(data)
        return data

    def exactly(self, n: int, where: str) -> bytes:
        data = self.take(n)
        if len(data) != n:
            raise LayerError(f"{self.what}: the tar ends inside {where}")
        return data

    def spans(self, n: int, where: str) -> Iterator[tuple[bytes, int, int]]:
        """The next `n` bytes as (buffer, start, length) spans, not copied."""
        while n:
            if self.offset == len(self.buffer) and not self._fill():
                raise LayerError(f"{self.what}: the tar ends {n} bytes into {where}")
            length = min(n, len(self.buffer) - self.offset)
            yield self.buffer, self.offset, length
            self.offset += length
            n -= length

    def rest(self) -> Iterator[bytes]:
        """Everything left, a chunk at a time."""
        if self.offset < len(self.buffer):
            yield self.buffer[self.offset :]
        self.buffer, self.offset = b"", 0
        while self._fill():
            yield self.buffer
            self.buffer = b""


# -- headers ------------------------------------------------------------------------------------------


@dataclass
class _Header:
    name: bytes
    type: int
    size: int
    uid: int
    gid: int


def _numeric(field: bytes, what: str) -> int:
    """Go's parseNumeric: base-256 when the high bit is set, else octal padded by spaces/NULs."""
    if field and field[0] & 0x80:
        value = int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
        return value - (1 << (8 * len(field) - 1)) if field[0] & 0x40 else value
    text = field.strip(b" \x00").split(b"\x00", 1)[0]
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise LayerError(f"{what}: a tar header with a bad number {field!r}") from None


def _string(field: bytes) -> bytes:
    return field.split(b"\x00", 1)[0]


def _header(block: bytes, what: str) -> _Header:
    stored = _numeric(block[148:156], what)
    unsigned = sum(block[:148]) + sum(block[156:]) + 8 * 32
    signed = unsigned - 2 * sum(1 for b in block[:148] + block[156:] if b & 0x80)
    if stored not in (unsigned, signed):
        raise LayerError(f"{what}: a tar header with a bad checksum (not a tar, or damaged)")
    name = _string(block[0:100])
    magic = block[257:263]
    if magic == b"ustar\x00":
        prefix = _string(block[345 : 345 + (131 if block[508:512] == b"tar\x00" else 155)])
        if prefix:
            name = prefix + b"/" + name
    return _Header(
        name=name,
        type=block[156],
        size=_numeric(block[124:136], what),
        uid=_numeric(block[108:116], what),
        gid=_numeric(block[116:124], what),
    )


def _pax_records(data: bytes, what: str) -> dict[bytes, bytes]:
    records: dict[bytes, bytes] = {}
    while data:
        length, space, _ = data.partition(b" ")
        try:
            n = int(length)
        except ValueError:
            n = 0
        if not space or n < 5 or n > len(data) or data[n - 1 : n] != b"\n":
            raise LayerError(f"{what}: a bad PAX record {data[:40]!r}")
        key, equals, value = data[len(length) + 1 : n - 1].partition(b"=")
        if not equals:
            raise LayerError(f"{what}: a bad PAX record {data[:40]!r}")
        records[key] = value
        data = data[n:]
    return records


def _pax_int(records: dict[bytes, bytes], key: bytes, default: int, what: str) -> int:
    if key not in records:
        return default
    try:
        return int(records[key])
    except ValueError:
        raise LayerError(f"{what}: PAX {key.decode()}={records[key]!r} is not a number") from None


# -- the pass --------------------------------------------------------------------------------------


class _Writer:
    def __init__(self, out: Sink) -> None:
        self.out = out
        self.position = 0

    def line(self, text: str) -> None:
        self.out.write(text.encode("utf-8") + b"\n")
        self.position += 1

    def segment(self, payload: bytes) -> None:
        self.line(f'{{"type":{SEGMENT},"payload":"{_b64(payload)}","position":{self.position}}}')

    def file(self, name: bytes, size: int, crc: bytes | None) -> None:
        try:
            named = f'"name":{go_json_string(name.decode("utf-8"))}'
        except UnicodeDecodeError:
            named = f'"name_raw":"{_b64(name)}"'
        sized = f'"size":{size},' if size else ""
        payload = f'"{_b64(crc)}"' if crc is not None else "null"
        self.line(
            f'{{"type":{FILE},{named},{sized}"payload":{payload},"position":{self.position}}}'
        )


def tar_split(stream: BinaryIO, out: Sink, what: str, digest: str | None = None) -> TarFacts:
    """Write the tar-split of the tar `stream` to `out` (uncompressed JSON lines); the tar's
    digest (hashed as it is read, unless the caller knows it: `digest`), size and owners.
    `what` names the layer in errors."""
    source = _Input(stream, what, hashed=digest is None)
    writer = _Writer(out)
    uids: set[int] = set()
    gids: set[int] = set()
    raw = bytearray()  # consumed since the last entry, not file content
    pad = 0
    while True:
        padding = source.take(pad)
        raw += padding
        if len(padding) < pad:
            if padding:
                raise LayerError(f"{what}: the tar ends inside padding")
            break
        entry = _next_entry(source, raw, what)
        if entry is None:
            break
        header, content, pad = entry
        if raw:
            writer.segment(bytes(raw))
            raw.clear()
        crc = None
        if header.size > 0:
            value = 0
            for buffer, start, length in source.spans(content, f"{header.name!r}"):
                value = crc64_span(buffer, start, length, value)
            crc = value.to_bytes(8, "big")
        writer.file(header.name, header.size, crc)
        if not posixpath.basename(header.name.rstrip(b"/")).startswith(WHITEOUT):
            uids.add(header.uid)  # containers/storage leaves whiteouts out of the id sets
            gids.add(header.gid)
    if raw:
        writer.segment(bytes(raw))
    for piece in source.rest():  # tar-split reads what follows the end in chunks, to EOF
        writer.segment(piece)
    writer.segment(b"")
    if source.sha is not None:
        digest = f"sha256:{source.sha.hexdigest()}"
    assert digest is not None
    return TarFacts(digest, source.size, tuple(sorted(uids)), tuple(sorted(gids)))


def _next_entry(source: _Input, raw: bytearray, what: str) -> tuple[_Header, int, int] | None:
    """The next entry's header (PAX records and GNU long names applied), how many bytes of
    content follow it, and of padding after them; None at the end of the archive. Consumed
    header bytes go to `raw`."""
    records: dict[bytes, bytes] = {}
    long_name: bytes | None = None
    while True:
        block = source.take(BLOCK)
        raw += block
        if not block:
            return None
        if len(block) < BLOCK:
            raise LayerError(f"{what}: the tar ends inside a header")
        if block == ZERO_BLOCK:
            second = source.take(BLOCK)
            raw += second
            if not second:
                return None
            if second != ZERO_BLOCK:
                raise LayerError(f"{what}: a zero block followed by data (a damaged tar)")
            return None
        header = _header(block, what)
        kind = bytes([header.type])
        if kind in (b"x", b"g", b"L", b"K"):
            if header.size > SPECIAL_LIMIT:
                raise LayerError(
                    f"{what}: a {'PAX' if kind in b'xg' else 'GNU long name'} header of "
                    f"{header.size} bytes (Go's archive/tar reads at most {SPECIAL_LIMIT})"
                )
            data = source.exactly(header.size, "a PAX or GNU header")
            raw += data
            if kind == b"g":  # an entry of its own, its padding read with the next header
                padding = -header.size % BLOCK
                header.size = header.uid = header.gid = 0
                return header, 0, padding
            raw += source.exactly(-header.size % BLOCK, "a header's padding")
            if kind == b"x":
                records = _pax_records(data, what)
            elif kind == b"L":
                long_name = _string(data)
            continue
        if kind == b"S" or any(k.startswith(b"GNU.sparse.") for k in records):
            raise LayerError(f"{what}: GNU sparse files are not supported")
        header.name = records.get(b"path", header.name)
        header.size = _pax_int(records, b"size", header.size, what)
        header.uid = _pax_int(records, b"uid", header.uid, what)
        header.gid = _pax_int(records, b"gid", header.gid, what)
        if long_name is not None:
            header.name = long_name
        if header.type == 0:  # old tars: a directory is a regular file named with a slash
            header.type = ord("5") if header.name.endswith(b"/") else ord("0")
        content = 0 if header.type in HEADER_ONLY else header.size
        return header, content, -content % BLOCK
