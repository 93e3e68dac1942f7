"""Image -> squashfs: ocibuild against what HPC sites run today, same run.

Builds the deterministic payload (bench/payload.py, ~1 GB in ~12,000 files by default) into a
one-layer image, then times (wall clock, peak memory of the whole process tree) making one squashfs
of it, every file root-owned:

  ocibuild export --format squashfs   layers flattened and streamed into tar2sqfs (gzip 6)
  umoci unpack + mksquashfs -all-root what Shifter's gateway does (gzip, level 9)
  tar2sqfs (gzip 9) of the layer      squashfs-tools-ng on the layer tar, its defaults
  ch-convert dir -> squash            Charliecloud's converter, from umoci's unpacked tree

Target on a 2-core machine: ocibuild at most 0.25x the time of umoci unpack + mksquashfs, an
image within 10% of mksquashfs's size, and peak memory under 300 MB.

    python3 bench/squash_bench.py [--size-mb 1000] [--files 12000] [--workdir DIR]
    python3 bench/squash_bench.py --size-mb 250,500,1000,2000        # a row per size
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    Timing,
    add_payload_arguments,
    argument_parser,
    files_for,
    fresh,
    have,
    payload_recipe,
    series_table,
    timed,
    workdir,
)

REF = "localhost/bench/payload:latest"
OURS = "ocibuild export --format squashfs"
GATEWAY = "umoci unpack + mksquashfs -all-root"


def main() -> None:
    parser = argument_parser(__doc__)
    add_payload_arguments(parser)
    parser.add_argument(
        "--workdir", type=Path, help="Where to put the payload and outputs [default: a temp dir]."
    )
    args = parser.parse_args()
    for tool in ("umoci", "mksquashfs", "tar2sqfs"):
        if not have(tool):
            raise SystemExit(f"{tool} is needed (Debian: umoci, squashfs-tools, squashfs-tools-ng)")

    work = workdir(args.workdir, "ocibuild-squash-bench-")
    rows: list[tuple[int, dict[str, Timing]]] = []
    for size in args.size_mb:
        size_work = work if len(args.size_mb) == 1 else work / f"{size}mb"
        rows.append((size, measure(size_work, size, files_for(size, args.files))))
    if len(rows) > 1:
        print()
        print(series_table(rows, [OURS, GATEWAY]))


def measure(work: Path, size_mb: int, files: int) -> dict[str, Timing]:
    """Every way of making the squashfs of the payload image of `size_mb`, printed as a table;
    returns ocibuild's timing and the gateway's (umoci unpack + mksquashfs) by name."""
    recipe = payload_recipe(work, size_mb, files)
    cores = len(os.sched_getaffinity(0))
    python = sys.executable
    store = fresh(work, "store")
    build = timed(
        "ocibuild build (not compared)", f"{python} -m ocibuild -q --store {store} recipe {recipe}"
    )
    layer = _only_layer(store)

    results: list[tuple[Timing, Path]] = []

    def run(name: str, command: str, output: Path) -> None:
        if output.is_dir():
            shutil.rmtree(output)
        output.unlink(missing_ok=True)
        results.append((timed(name, command), output))

    ours = work / "ocibuild.sqfs"
    run(
        OURS,
        f"{python} -m ocibuild -q --store {store} export {REF} --format squashfs --all-root -o {ours}",
        ours,
    )
    bundle = fresh(work, "bundle")
    unpack = timed("umoci unpack", f"umoci unpack --image {store}:{REF} {bundle} >/dev/null")
    gateway = work / "mksquashfs.sqfs"
    run(
        "mksquashfs -all-root (after umoci unpack)",
        f"mksquashfs {bundle}/rootfs {gateway} -all-root -noappend -no-progress -quiet",
        gateway,
    )
    tar2sqfs = work / "tar2sqfs.sqfs"
    run(
        f"zcat layer | tar2sqfs -j{cores} -c gzip",
        f"zcat {layer} | tar2sqfs -q -f -j{cores} -c gzip {tar2sqfs}",
        tar2sqfs,
    )
    if have("ch-convert"):
        converted = work / "ch-convert.sqfs"
        run(
            "ch-convert dir -> squash (after umoci unpack)",
            f"USER=${{USER:-root}} ch-convert -i dir -o squash {bundle}/rootfs {converted}",
            converted,
        )
    shutil.rmtree(bundle, ignore_errors=True)

    by = {t.name: (t, out) for t, out in results}
    gateway_seconds = unpack.seconds + by["mksquashfs -all-root (after umoci unpack)"][0].seconds
    gateway_size = gateway.stat().st_size
    print()
    print(f"payload: {size_mb} MB in {files} files; {cores} cores")
    print(
        f"(built in {build.seconds:.1f} s; umoci unpack {unpack.seconds:.1f} s, {unpack.peak_mb:.0f} MB)"
    )
    header = f"{'tool':<46} {'seconds':>8} {'peak MB':>8} {'size MB':>8} {'x gateway time':>15} {'x mksquashfs size':>18}"
    print(header)
    for timing, output in results:
        seconds = timing.seconds + (unpack.seconds if "after umoci unpack" in timing.name else 0)
        size = output.stat().st_size
        print(
            f"{timing.name:<46} {seconds:>8.2f} {timing.peak_mb:>8.0f} {size / 1e6:>8.1f} "
            f"{seconds / gateway_seconds:>15.3f} {size / gateway_size:>18.3f}"
        )
    print("(times after umoci unpack include it)")
    ocibuild_timing = by[OURS][0]
    ratio = ocibuild_timing.seconds / gateway_seconds
    size_ratio = ours.stat().st_size / gateway_size
    print()
    print(
        f"ocibuild vs umoci unpack + mksquashfs: {ratio:.3f}x the time (target <= 0.25x): "
        f"{'ok' if ratio <= 0.25 else 'MISSED'}"
    )
    print(
        f"ocibuild size vs mksquashfs: {size_ratio:.3f}x (target within 10%): "
        f"{'ok' if abs(size_ratio - 1) <= 0.10 else 'MISSED'}"
    )
    print(
        f"ocibuild peak memory: {ocibuild_timing.peak_mb:.0f} MB (target < 300 MB): "
        f"{'ok' if ocibuild_timing.peak_mb < 300 else 'MISSED'}"
    )

    gateway_timing = by["mksquashfs -all-root (after umoci unpack)"][0]
    return {
        OURS: ocibuild_timing,
        GATEWAY: Timing(GATEWAY, gateway_seconds, max(unpack.peak_mb, gateway_timing.peak_mb)),
    }


def _only_layer(store: Path) -> Path:
    """The payload image's layer blob (the largest blob of the store)."""
    blobs = sorted((store / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    return blobs[-1]


if __name__ == "__main__":
    main()
