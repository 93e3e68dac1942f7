"""bzip2 decoders side by side on the UPS bench's product tarballs: indexed_bzip2 (PyPI: a
parallel C++ decoder, the one ocibuild uses), the standard library's bz2 (one core), and lbzip2
(parallel C, the floor). Each decodes every tarball to
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

from testsupport.synthetic_ups import bench_bundle, write_mirror

CHUNK = 1 << 20


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
    decode: Callable[[BinaryIO], Iterator[bytes]], files: list[Path]
) -> tuple[float, float, float, str]:
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
    return wall, cpu, peak, out[3]


def main() -> None:
    parser = argument_parser(__doc__ or "")
    parser.add_argument("--size-mb", type=int, default=500, help="Unpacked size of the tarballs.")
    parser.add_argument("--products", type=int, default=8)
    parser.add_argument("--workdir", type=Path, help="Mirror [default: a temp dir].")
    parser.add_argument(
        "--repeat", type=int, default=3, help="Interleaved rounds; the best counts [default: 3]."
    )
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
    decoders = [("indexed_bzip2", _indexed), ("stdlib bz2", _stdlib)]
    if have("lbzip2"):
        decoders.append(("lbzip2 (floor)", _lbzip2))
    best: dict[str, tuple[float, float, float, str]] = {}
    for round_ in range(args.repeat):
        for name, decode in decoders:
            wall, cpu, peak, output = measure(decode, files)
            print(f"round {round_ + 1}: {name:<20} {wall:6.2f} s, {cpu:6.2f} CPU s", flush=True)
            old = best.get(name)
            best[name] = (
                min(wall, old[0]) if old else wall,
                min(cpu, old[1]) if old else cpu,
                max(peak, old[2]) if old else peak,
                output,
            )
    print(f"load average {os.getloadavg()[0]:.1f}; best of {args.repeat} interleaved rounds")
    print(f"{'decoder':<28} {'wall s':>8} {'CPU s':>8} {'peak MB':>8}  output")
    for name, (wall, cpu, peak, output) in best.items():
        print(f"{name:<28} {wall:>8.2f} {cpu:>8.2f} {peak:>8.0f}  {output}")
    if "lbzip2 (floor)" in best:
        floor = best["lbzip2 (floor)"]
        for name, (wall, cpu, _, _) in best.items():
            print(f"{name}: {wall / floor[0]:.2f}x lbzip2's time, {cpu / floor[1]:.2f}x its CPU")


if __name__ == "__main__":
    main()
