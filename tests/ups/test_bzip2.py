"""bzip2 decompressed block by block on several threads: the same bytes as bz2, errors for
damage, recovery from a block magic that occurs by chance inside compressed data."""

from __future__ import annotations

import bz2
import io
import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from ocibuild.ups.bzip2 import Bzip2Error, ParallelBzip2Reader, _blocks, _Piece, _pieces


def data(size: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    return b"".join(rng.randbytes(64) + bytes(rng.randrange(64)) for _ in range(size // 96))


def parallel(compressed: bytes, workers: int = 2) -> bytes:
    with ParallelBzip2Reader(io.BytesIO(compressed), workers) as reader:
        return b"".join(iter(lambda: reader.read(300_000), b""))


@pytest.mark.parametrize(
    ("content", "level"),
    [
        (b"", 9),
        (b"x", 9),
        (data(3_000_000), 9),  # several blocks, at bit offsets of every kind
        (data(1_000_000), 1),  # 100k blocks
        (b"ab" * 2_000_000, 9),  # run-length heavy
    ],
    ids=["empty", "one-byte", "blocks", "level-1", "runs"],
)
def test_same_bytes_as_bz2(content: bytes, level: int) -> None:
    assert parallel(bz2.compress(content, level)) == content


def test_concatenated_streams() -> None:
    one, two = data(1_500_000, 2), data(700_000, 3)
    assert parallel(bz2.compress(one) + bz2.compress(two, 5)) == one + two
    assert parallel(bz2.compress(b"") + bz2.compress(one) + bz2.compress(b"z", 1)) == one + b"z"
    assert parallel(bz2.compress(two) + bytes(16)) == two  # zero padding after the end


def test_every_truncation_of_a_two_stream_file() -> None:
    second = bz2.compress(random.Random(4).randbytes(3000))
    compressed = bz2.compress(data(100_000)) + second
    cuts = [c for c in range(1, len(second) + 120, 13) if c != len(second)]
    for cut in cuts:  # cutting len(second) leaves a whole first stream, which is valid
        with pytest.raises(Bzip2Error):
            parallel(compressed[:-cut])


def test_reads_of_any_size() -> None:
    content = data(2_000_000)
    with ParallelBzip2Reader(io.BytesIO(bz2.compress(content)), 3) as reader:
        assert reader.read(7) == content[:7]
        buffer = bytearray(1000)
        assert reader.readinto(buffer) == 1000 and bytes(buffer) == content[7:1007]
        assert reader.read() == content[1007:]
        assert reader.read(10) == b""


@pytest.mark.parametrize("cut", [1, 10, 500_000, -200, -10, -1])
def test_truncated(cut: int) -> None:
    compressed = bz2.compress(data(2_000_000))
    with pytest.raises(Bzip2Error, match=r"truncated|damaged"):
        parallel(compressed[:cut] if cut < 0 else compressed[: len(compressed) - cut])


def test_damaged_byte() -> None:
    compressed = bytearray(bz2.compress(data(2_000_000)))
    compressed[len(compressed) // 2] ^= 0x5A
    with pytest.raises(Bzip2Error):
        parallel(bytes(compressed))


def test_not_bzip2() -> None:
    with pytest.raises(Bzip2Error, match="not a bzip2 file"):
        parallel(b"PK\x03\x04 not at all")


def test_a_chance_block_magic_is_joined_back() -> None:
    content = data(3_000_000)
    pieces = list(_pieces(io.BytesIO(bz2.compress(content))))
    assert [p.is_block for p in pieces] == [True] * (len(pieces) - 1) + [False]
    # cut the second block where a block magic could have occurred by chance
    whole = pieces[1]
    at = whole.nbits // 3
    head = _Piece(whole.value >> (whole.nbits - at), at, True)
    tail = _Piece(whole.value & ((1 << (whole.nbits - at)) - 1), whole.nbits - at, True)
    assert head.join(tail) == whole
    cut = [pieces[0], head, tail, *pieces[2:]]
    with ThreadPoolExecutor(2) as pool:
        assert b"".join(_blocks(iter(cut), pool, 4)) == content
