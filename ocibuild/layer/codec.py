"""Layer compression: gzip (ISA-L, multi-threaded), zstd (multi-threaded) or none.

Both compressors run their work outside the GIL, and give the same bytes whatever the number
of threads, so a layer's digest does not depend on the machine that built it.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import BinaryIO

from ocibuild import cputime
from ocibuild.compression import Compression

GZIP_BLOCK = 4 << 20  # part of the output format: changing it changes every gzip layer digest


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
            writer.flush()  # every block compressed, so that the sample sees all their CPU
            cputime.sample()  # before close() ends the compressor threads
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
        cputime.sample()  # while cctx, and so its worker threads, still live
    else:
        yield sink
