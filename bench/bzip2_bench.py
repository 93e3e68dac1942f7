"""bzip2 decoders side by side on the UPS bench's product tarballs: ocibuild's own parallel block
decoder (ocibuild.ups.bzip2), indexed_bzip2 (PyPI: a parallel C++ decoder), the standard
library's bz2 (one core), and lbzip2 (parallel C, the floor). Each decodes every tarball to
/dev/null (the output's size and CRC-32 check they agree); wall seconds, CPU seconds and peak memory.

    python3 bench/bzip2_bench.py [--size-mb 500] [--products 8] [--workdir DIR]
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import argument_parser, have, workdir

from ocibuild.ups.bzip2 import ParallelBzip2Reader
from testsupport.synthetic_ups import bench_bundle, write_mirror

CHUNK = 1 << 20


def _ours(f: BinaryIO) -> Iterator[bytes]:
    with ParallelBzip2Reader(f, os.cpu_count() or 1) as stream:
        while chunk := stream.read(CHUNK):
            yield chunk


def _indexed(f: BinaryIO) -> Iterator[bytes]:
    import indexed_bzip2

    with indexed_bzip2.open(f, parallelization=os.cpu_count() or 1) as stream:
        while chunk := stream.read(CHUNK):
            yield chunk


def _stdlib(f: BinaryIO) -> Iterator[bytes]:
    import bz2

    with bz2.open(f) as stream:
        while chunk := stream.read(CHUNK):
            yield chunk


def _lbzip2(f: BinaryIO) -> Iterator[bytes]:
    proc = subprocess.Popen(["lbzip2", "-d", "-c"], stdin=f, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    while chunk := proc.stdout.read(CHUNK):
        yield chunk
    if proc.wait() != 0:
        raise SystemExit("lbzip2 failed")


def measure(
    name: str, decode: Callable[[BinaryIO], Iterator[bytes]], files: list[Path]
) -> tuple[str, float]:
    """In a child process, so that peak memory and CPU time are its own."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        crc, size = 0, 0
        start = time.perf_counter()
        for path in files:
            with open(path, "rb") as f:
                for chunk in decode(f):
                    crc = zlib.crc32(chunk, crc)
                    size += len(chunk)
        wall = time.perf_counter() - start
        usage = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = usage.ru_utime + usage.ru_stime + kids.ru_utime + kids.ru_stime
        peak = max(usage.ru_maxrss, kids.ru_maxrss) / 1024
        os.write(write, f"{wall} {cpu} {peak} {size}:{crc:08x}".encode())
        os._exit(0)
    os.close(write)
    out = os.read(read, 200).decode().split()
    os.waitpid(pid, 0)
    wall, cpu, peak = (float(x) for x in out[:3])
    return f"{name:<28} {wall:>8.2f} {cpu:>8.2f} {peak:>8.0f}  {out[3]}", wall


def main() -> None:
    parser = argument_parser(__doc__ or "")
    parser.add_argument("--size-mb", type=int, default=500, help="Unpacked size of the tarballs.")
    parser.add_argument("--products", type=int, default=8)
    parser.add_argument("--workdir", type=Path, help="Mirror [default: a temp dir].")
    args = parser.parse_args()
    root = workdir(args.workdir, "ocibuild-bzip2-bench-")
    bundle = bench_bundle(args.size_mb * 1_000_000, args.products)
    mirror = root / "mirror"
    if not mirror.exists():
        write_mirror(mirror, [bundle], jobs=os.cpu_count() or 1)
    files = sorted(mirror.glob("packages/**/*.tar.bz2"))
    compressed = sum(f.stat().st_size for f in files) / 1e6
    print(
        f"{len(files)} tarballs, {compressed:.0f} MB of bzip2, {args.size_mb} MB unpacked,"
        f" {os.cpu_count()} cores"
    )
    print(f"{'decoder':<28} {'wall s':>8} {'CPU s':>8} {'peak MB':>8}  output")
    decoders = [("ocibuild.ups.bzip2", _ours), ("indexed_bzip2", _indexed), ("stdlib bz2", _stdlib)]
    if have("lbzip2"):
        decoders.append(("lbzip2 (floor)", _lbzip2))
    walls = {}
    for name, decode in decoders:
        line, walls[name] = measure(name, decode, files)
        print(line, flush=True)
    if "lbzip2 (floor)" in walls:
        for name, wall in walls.items():
            print(f"{name}: {wall / walls['lbzip2 (floor)']:.2f}x lbzip2")


if __name__ == "__main__":
    main()
