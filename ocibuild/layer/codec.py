"""Layer compression: gzip (ISA-L, multi-threaded), zstd (multi-threaded) or none.

Both compressors run their work outside the GIL, and give the same bytes whatever the number
of threads, so a layer's digest does not depend on the machine that built it.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

from ocibuild.oci.mediatypes import MediaType

COMPRESSIONS = ("gzip", "zstd", "none")
GZIP_BLOCK = 4 << 20  # part of the output format: changing it changes every gzip layer digest
DEFAULT_LEVEL = {"gzip": 2, "zstd": 3, "none": 0}
LEVEL_RANGE = {"gzip": (0, 3), "zstd": (1, 19), "none": (0, 0)}
MEDIA_TYPE = {
    "gzip": MediaType.OCI_LAYER_GZIP,
    "zstd": MediaType.OCI_LAYER_ZSTD,
    "none": MediaType.OCI_LAYER,
}


@dataclass(frozen=True)
class Compression:
    algorithm: str = "gzip"
    level: int | None = None

    def __post_init__(self) -> None:
        if self.algorithm not in COMPRESSIONS:
            raise ValueError(
                f"unknown compression {self.algorithm!r} (one of {', '.join(COMPRESSIONS)})"
            )
        low, high = LEVEL_RANGE[self.algorithm]
        if self.level is not None and not low <= self.level <= high:
            raise ValueError(f"{self.algorithm} level {self.level} is outside {low}..{high}")

    @property
    def effective_level(self) -> int:
        return DEFAULT_LEVEL[self.algorithm] if self.level is None else self.level

    @property
    def media_type(self) -> str:
        return MEDIA_TYPE[self.algorithm]

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.effective_level}" if self.algorithm != "none" else "none"


def threads() -> int:
    return max(1, len(os.sched_getaffinity(0)))


@contextmanager
def compressor(sink: BinaryIO, compression: Compression):  # type: ignore[no-untyped-def]
    """A writable that compresses into `sink`; closing it flushes everything into `sink`."""
    if compression.algorithm == "gzip":
        from isal import igzip_threaded

        writer = igzip_threaded.open(
            sink,
            "wb",
            compresslevel=compression.effective_level,
            threads=threads(),
            block_size=GZIP_BLOCK,
        )
        try:
            yield writer
        finally:
            writer.close()
    elif compression.algorithm == "zstd":
        import zstandard

        cctx = zstandard.ZstdCompressor(level=compression.effective_level, threads=threads())
        writer = cctx.stream_writer(sink, closefd=False)
        try:
            yield writer
        finally:
            writer.close()
    else:
        yield sink
