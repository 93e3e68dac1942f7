"""bzip2 decompression on every core, streamed.

A bzip2 stream is a sequence of independently compressed blocks, bit-packed one after the
other: each starts with the 48-bit magic 0x314159265359 and its 32-bit CRC, and the stream ends
with 0x177245385090 and the combined CRC of its blocks. The reader finds the block magics (at
any bit offset, with `bytes.find` on the byte-aligned middle of the magic for each of the 8
shifts) and the end-of-stream magic where a stream ends (before the "BZh" of a concatenated
stream, or at the end of the file), wraps each block into a one-block stream of its own and
decompresses several at once in threads (`bz2.decompress` releases the GIL), handing the output
over in order. Memory is bounded by the blocks in flight, whatever the size of the file.

A magic that occurs by chance inside compressed data splits a block wrongly: that piece fails
to decompress and is joined with the next one. Every block's CRC is checked by the decompressor
and every stream's combined CRC here, so a damaged or truncated file is an error, never wrong
bytes.
"""

from __future__ import annotations

import bz2
import io
import threading
from collections import deque
from collections.abc import Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

from ocibuild.layer.codec import threads

BLOCK_MAGIC = 0x314159265359
END_MAGIC = 0x177245385090
READ_SIZE = 4 << 20
MAX_BLOCK_BITS = 8 * (2 << 20)  # a compressed block is under 1 MB: beyond, it is damage
# Blocks decompressing at once in this process, whatever the number of readers: bzip2's
# inverse BWT walks a 3.6 MB table at random, and more decompressors than cores thrash caches.
_CORES = threading.BoundedSemaphore(threads())


class Bzip2Error(OSError):
    """Data that is not a complete, intact bzip2 stream."""


@dataclass(frozen=True)
class _Piece:
    """Bits [start, start + nbits) of the file as an integer, beginning at a magic."""

    value: int
    nbits: int
    is_block: bool  # starts with the block magic (else with the end-of-stream magic)

    def join(self, other: _Piece) -> _Piece:
        return _Piece(
            (self.value << other.nbits) | other.value, self.nbits + other.nbits, self.is_block
        )

    @property
    def crc(self) -> int:
        """The 32 bits after the magic: a block's CRC, or a stream's combined CRC."""
        return (self.value >> (self.nbits - 80)) & 0xFFFFFFFF if self.nbits >= 80 else -1


def _patterns(magic: int) -> list[tuple[bytes, int, int]]:
    """(the whole bytes of the magic placed at bit offset k of a byte, k, their byte index)."""
    out = []
    for k in range(8):
        placed = magic << (56 - 48 - k)
        raw = placed.to_bytes(7, "big")
        first = 0 if k == 0 else 1  # bytes first..5 lie entirely inside the magic
        out.append((raw[first:6], k, first))
    return out


_BLOCK_PATTERNS = _patterns(BLOCK_MAGIC)
_END_PATTERNS = _patterns(END_MAGIC)


def _bits(buffer: bytes, start: int, end: int) -> int:
    """Bits [start, end) of `buffer` (bit 0 = most significant bit of byte 0) as an integer."""
    lo, hi = start // 8, -(-end // 8)
    value = int.from_bytes(buffer[lo:hi], "big")
    return (value >> (hi * 8 - end)) & ((1 << (end - start)) - 1)


def _find(
    buffer: bytes, begin: int, stop: int, patterns: list[tuple[bytes, int, int]], magic: int
) -> list[int]:
    """Bit positions in [begin, stop) where `magic` starts."""
    found = set()
    for pattern, k, first in patterns:
        at = max(0, begin // 8 - 1)
        while (i := buffer.find(pattern, at)) >= 0:
            at = i + 1
            bit = (i - first) * 8 + k
            if bit >= stop:
                break
            if (
                bit >= begin
                and bit + 48 <= len(buffer) * 8
                and _bits(buffer, bit, bit + 48) == magic
            ):
                found.add(bit)
    return sorted(found)


def _end_before(buffer: bytes, block: int) -> int | None:
    """The end-of-stream magic of the previous stream, when the block at bit `block` opens a
    concatenated stream: it is byte-aligned after "BZh<level>", which follows the magic, the
    stream CRC and 0-7 padding bits."""
    byte = block // 8
    if block % 8 or byte < 15 or buffer[byte - 4 : byte - 1] != b"BZh":
        return None
    for pad in range(8):
        bit = block - 32 - pad - 80
        if _bits(buffer, bit, bit + 48) == END_MAGIC:
            return bit
    return None


def _end_in_tail(buffer: bytes, block: int) -> int | None:
    """The end-of-stream magic after the last block, which runs to the end of the file: just
    before the stream CRC and the padding, else anywhere after the block's start."""
    end = len(buffer) * 8
    for pad in range(8):
        bit = end - pad - 80
        if bit > block and _bits(buffer, bit, bit + 48) == END_MAGIC:
            return bit
    found = _find(buffer, block + 48, end - 47, _END_PATTERNS, END_MAGIC)
    return found[0] if found else None


def _markers(buffer: bytes, begin: int, stop: int) -> list[tuple[int, bool]]:
    """(bit position, is a block magic) of the block magics starting at bits [begin, stop), and
    of the end-of-stream magics of the streams they follow."""
    out = []
    for bit in _find(buffer, begin, stop, _BLOCK_PATTERNS, BLOCK_MAGIC):
        end = _end_before(buffer, bit)
        if end is not None:
            out.append((end, False))
        out.append((bit, True))
    return sorted(out)


def _pieces(raw: BinaryIO) -> Iterator[_Piece]:
    """The file cut at every magic, in order (the 'BZh' header before the first one dropped)."""
    buffer = raw.read(READ_SIZE)
    if not (buffer[:3] == b"BZh" and buffer[3:4].isdigit()):
        raise Bzip2Error("not a bzip2 file")
    searched = 32  # bits of the buffer already searched for magics
    current: tuple[int, bool] | None = None  # (bit offset, is block) of the open piece
    while True:
        more = raw.read(READ_SIZE)
        limit = len(buffer) * 8 - (48 if more else 0)
        for bit, is_block in _markers(buffer, searched, max(searched, limit)):
            if current is not None:
                yield _Piece(_bits(buffer, current[0], bit), bit - current[0], current[1])
            current = (bit, is_block)
        searched = max(searched, limit)
        if not more:
            break
        # keep the buffer from the open piece's first byte on (or a few bytes, before any)
        drop = current[0] // 8 if current is not None else max(0, searched // 8 - 6)
        buffer = buffer[drop:] + more
        searched -= drop * 8
        if current is not None:
            current = (current[0] - drop * 8, current[1])
    end = len(buffer) * 8
    if current is None:  # no block: an empty stream, "BZh9" and its end-of-stream magic
        current = (eos, False) if (eos := _end_in_tail(buffer, 31)) is not None else (32, True)
    if current[1] and (eos := _end_in_tail(buffer, current[0])) is not None:
        yield _Piece(_bits(buffer, current[0], eos), eos - current[0], True)
        current = (eos, False)
    yield _Piece(_bits(buffer, current[0], end), end - current[0], current[1])


def _decompress(piece: _Piece) -> bytes:
    """A piece starting with a block magic, made into a one-block stream and decompressed."""
    if piece.crc < 0:
        raise ValueError("a block shorter than its header")
    total = piece.nbits + 48 + 32
    pad = -total % 8
    value = (((piece.value << 48) | END_MAGIC) << 32 | piece.crc) << pad
    stream = b"BZh9" + value.to_bytes((total + pad) // 8, "big")
    with _CORES:
        return bz2.decompress(stream)


def _blocks(
    pieces: Iterator[_Piece], pool: ThreadPoolExecutor, ahead: int
) -> Generator[bytes, None, None]:
    """Decompressed blocks in order, `ahead` of them decompressing at once."""
    flight: deque[tuple[_Piece, Future[bytes] | None]] = deque()
    combined = 0

    def refill() -> None:
        while len(flight) < ahead and (piece := next(pieces, None)) is not None:
            flight.append((piece, pool.submit(_decompress, piece) if piece.is_block else None))

    refill()
    last: _Piece | None = None
    while flight:
        piece, future = flight.popleft()
        if not piece.is_block:
            if piece.crc != combined:
                raise Bzip2Error("stream CRC mismatch: the file is damaged")
            combined = 0
            last = piece
            refill()
            continue
        try:
            data = future.result() if future else _decompress(piece)
        except (OSError, ValueError, EOFError):
            # a chance magic inside compressed data, or damage: join with what follows
            refill()
            if not flight or piece.nbits > MAX_BLOCK_BITS:
                raise Bzip2Error(
                    "a bzip2 block does not decompress: truncated or damaged"
                ) from None
            following, _ = flight.popleft()
            flight.appendleft((piece.join(following), None))
            continue
        combined = (((combined << 1) | (combined >> 31)) ^ piece.crc) & 0xFFFFFFFF
        last = piece
        refill()
        yield data
    if last is None or last.is_block:
        raise Bzip2Error("the bzip2 stream ends without its end-of-stream marker: truncated")
    if last.nbits > 87 and last.value & ((1 << (last.nbits - 80)) - 1):
        raise Bzip2Error("data after the end of the bzip2 stream: a truncated stream?")


class ParallelBzip2Reader(io.RawIOBase):
    """A readable stream of the decompressed content of a bzip2 file, decompressed on `workers`
    threads."""

    def __init__(self, raw: BinaryIO, workers: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="bzip2")
        self._blocks = _blocks(_pieces(raw), self._pool, max(2, 2 * workers))
        self._current = memoryview(b"")

    def readable(self) -> bool:
        return True

    def _fill(self) -> bool:
        while not self._current:
            block = next(self._blocks, None)
            if block is None:
                return False
            self._current = memoryview(block)
        return True

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            return b"".join(iter(lambda: self.read(1 << 20), b""))
        if not size or not self._fill():
            return b""
        data = bytes(self._current[:size])
        self._current = self._current[size:]
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if not self._fill():
            return 0
        n = min(len(buffer), len(self._current))
        buffer[:n] = self._current[:n]
        self._current = self._current[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._blocks.close()
            self._pool.shutdown(wait=True, cancel_futures=True)
        super().close()
