"""The least a layer writer must do with a tar stream: read it from stdin, hash it (the diff_id),
compress it with ISA-L gzip on every core, hash the compressed bytes (the digest). No tar
parsing, no writing: what a benchmark's floor pipeline ends in.

    lbzip2 -dc -n 2 product.tar.bz2 | python3 bench/stream_floor.py [--isal-level 2]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys

from isal import igzip_threaded


class HashSink:
    def __init__(self) -> None:
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return len(data)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--isal-level", type=int, default=2, help="ISA-L level (ocibuild's gzip 6 is 2)."
    )
    args = parser.parse_args()
    diff_id, sink = hashlib.sha256(), HashSink()
    writer = igzip_threaded.open(
        sink, "wb", compresslevel=args.isal_level, threads=len(os.sched_getaffinity(0))
    )
    while chunk := sys.stdin.buffer.read(1 << 20):
        diff_id.update(chunk)
        writer.write(chunk)
    writer.close()
    print(f"diff_id sha256:{diff_id.hexdigest()} digest sha256:{sink.hash.hexdigest()}")


if __name__ == "__main__":
    main()
