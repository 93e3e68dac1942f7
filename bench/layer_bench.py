"""Layer writing: ocibuild against umoci, buildah and the plain compression floor, same run.

Builds the deterministic payload (bench/payload.py, ~1 GB in ~12,000 files by default) into one
layer, and times (wall clock, peak memory of the process tree; each tool's best of --repeat
interleaved rounds):

  ocibuild gzip layer         ocibuild recipe --no-cache (isal gzip, all cores)
  ocibuild zstd layer         ocibuild recipe --no-cache --compression zstd
  umoci repack                umoci repack of the same tree (gzip)
  buildah bud + push oci:     COPY of the tree, then push to an OCI layout (if buildah exists)
  tar | pigz -6 -p N          the gzip floor
  tar | zstd -3 -T0           the zstd floor

Targets on a 2-core machine: gzip layer >= 3x faster than umoci repack; zstd layer within 1.5x
of tar | zstd -3 -T0; ocibuild peak memory under 300 MB.

    python3 bench/layer_bench.py [--size-mb 1000] [--files 12000] [--workdir DIR]
    python3 bench/layer_bench.py --size-mb 250,500,1000,2000      # a row per size
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
    table,
    timed,
    workdir,
)


def measure(work: Path, size_mb: int, files: int, repeat: int) -> list[Timing]:
    """Every tool on a payload of `size_mb` (generated once under WORK), best of `repeat`."""
    recipe = payload_recipe(work, size_mb, files)
    payload = work / "payload"
    cores = len(os.sched_getaffinity(0))
    python = sys.executable

    # warm the page cache once so every tool reads the same way
    timed("warm-up", f"tar cf - -C {work} payload > /dev/null")
    rounds: dict[str, list[Timing]] = {}

    def run(name: str, command: str) -> None:
        rounds.setdefault(name, []).append(timed(name, command))

    for _ in range(repeat):  # interleaved, so load from elsewhere hits every tool alike
        for algorithm in ("gzip", "zstd"):
            store = fresh(work, f"store-{algorithm}")
            run(
                f"ocibuild {algorithm} layer",
                f"{python} -m ocibuild -q --store {store} recipe --no-cache --compression {algorithm} {recipe}",
            )
        if have("umoci"):
            layout = fresh(work, "umoci-layout")
            bundle = fresh(work, "umoci-bundle")
            timed(
                "umoci setup",
                f"umoci init --layout {layout} && umoci new --image {layout}:t && umoci unpack --image {layout}:t {bundle} && cp -a {payload} {bundle}/rootfs/payload",
            )
            run("umoci repack", f"umoci repack --image {layout}:t {bundle}")
            shutil.rmtree(bundle, ignore_errors=True)
        if have("pigz"):
            run(
                f"tar | pigz -6 -p {cores}",
                f"tar cf - -C {work} payload | pigz -6 -p {cores} > {work}/floor.tar.gz",
            )
        if have("zstd"):
            run(
                "tar | zstd -3 -T0",
                f"tar cf - -C {work} payload | zstd -q -3 -T0 > {work}/floor.tar.zst",
            )
    return [
        Timing(name, min(t.seconds for t in runs), max(t.peak_mb for t in runs))
        for name, runs in rounds.items()
    ]


def buildah(work: Path) -> Timing:
    payload = work / "payload"
    context = fresh(work, "buildah-context")
    context.mkdir()
    shutil.copytree(payload, context / "payload", symlinks=True)
    (context / "Containerfile").write_text("FROM scratch\nCOPY payload /payload\n")
    storage = fresh(work, "buildah-storage")
    flags = f"--root {storage}/root --runroot {storage}/run --storage-driver vfs"
    oci_dir = fresh(work, "buildah-oci")
    try:
        return timed(
            "buildah bud (COPY) + push oci:",
            f"buildah {flags} bud --isolation chroot -q -t bench:latest {context} >/dev/null && buildah {flags} push -q bench:latest oci:{oci_dir}:bench",
        )
    finally:
        shutil.rmtree(storage, ignore_errors=True)
        shutil.rmtree(context, ignore_errors=True)


def verdict(timings: list[Timing]) -> None:
    by = {t.name: t for t in timings}
    gz, zst = by["ocibuild gzip layer"], by["ocibuild zstd layer"]
    if "umoci repack" in by:
        ratio = by["umoci repack"].seconds / gz.seconds
        print(
            f"gzip layer vs umoci repack: {ratio:.2f}x faster (target >= 3x): {'ok' if ratio >= 3 else 'MISSED'}"
        )
    if "tar | zstd -3 -T0" in by:
        ratio = zst.seconds / by["tar | zstd -3 -T0"].seconds
        print(
            f"zstd layer vs tar|zstd -3 -T0: {ratio:.2f}x (target <= 1.5x): {'ok' if ratio <= 1.5 else 'MISSED'}"
        )
    peak = max(gz.peak_mb, zst.peak_mb)
    print(
        f"ocibuild peak memory: {peak:.0f} MB (target < 300 MB): {'ok' if peak < 300 else 'MISSED'}"
    )


def main() -> None:
    parser = argument_parser(__doc__ or "")
    add_payload_arguments(parser)
    parser.add_argument(
        "--workdir", type=Path, help="Where to put the payload and outputs [default: a temp dir]."
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="Rounds; each tool's best time counts [default: 3]."
    )
    args = parser.parse_args()

    work = workdir(args.workdir, "ocibuild-bench-")
    cores = len(os.sched_getaffinity(0))
    rows: list[tuple[int, dict[str, Timing]]] = []
    for size in args.size_mb:
        size_work = work if len(args.size_mb) == 1 else work / f"{size}mb"
        files = files_for(size, args.files)
        timings = measure(size_work, size, files, args.repeat)
        if have("buildah") and len(args.size_mb) == 1:
            timings.append(buildah(size_work))
        print()
        print(f"payload: {size} MB in {files} files; {cores} cores; best of {args.repeat}")
        print(table(timings, "ocibuild gzip layer"))
        print()
        verdict(timings)
        rows.append((size, {t.name: t for t in timings}))
    if len(rows) > 1:
        print()
        print(series_table(rows, ["ocibuild gzip layer", "ocibuild zstd layer", "umoci repack"]))


if __name__ == "__main__":
    main()
