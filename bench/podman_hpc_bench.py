"""Image -> podman-hpc's squash store: ocibuild's export against podman-hpc's own way, same run.

Builds the deterministic payload (bench/payload.py, ~1 GB in ~12,000 files by default) into a
one-layer image, writes it as an oci-archive (not timed: the way a user hands an image to
podman), then times (wall clock, peak memory of the whole process tree), in rounds that
alternate which goes first (the machine may be shared: medians of the rounds are compared):

  ocibuild export --format podman-hpc     records, tar-split and squash written from the store
  podman-hpc load + podman-hpc migrate    the real podman-hpc 1.2.2: load into its graph root,
                                          then migrate (mksquashfs.static -comp lz4 inside the
                                          image; built by testsupport/build-static-mksquashfs)

Both write an lz4 squash of the same tree. Target: the export at most 0.25x the time of load +
migrate; its memory flat with the image's size (give several sizes: a row per size, and how
seconds per GB and peak memory moved from the smallest to the largest).

    python3 bench/podman_hpc_bench.py [--size-mb 1000] [--files 12000] [--rounds 3] [--workdir DIR]
    python3 bench/podman_hpc_bench.py --size-mb 250,1000,3000
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import (
    Timing,
    add_payload_arguments,
    argument_parser,
    files_for,
    fresh,
    median,
    payload_recipe,
    series_table,
    timed,
    workdir,
)

from testsupport.podman_hpc import (
    PodmanHPC,
    build_static_mksquashfs,
    missing_tools,
    remove_tree,
)

REF = "localhost/bench/payload:latest"
OURS = "ocibuild export --format podman-hpc"
THEIRS = "podman-hpc load + migrate"


def main() -> None:
    parser = argument_parser(__doc__)
    add_payload_arguments(parser)
    parser.add_argument("--rounds", type=int, default=3, help="Rounds per size [default: 3].")
    parser.add_argument(
        "--workdir", type=Path, help="Where to put the payload and outputs [default: a temp dir]."
    )
    args = parser.parse_args()
    if missing_tools():
        raise SystemExit(f"podman-hpc's tools are missing: {', '.join(missing_tools())}")
    mksquashfs = build_static_mksquashfs()
    work = workdir(args.workdir, "ocibuild-podman-hpc-bench-")
    rows: list[tuple[int, dict[str, Timing]]] = []
    for size in args.size_mb:
        size_work = work if len(args.size_mb) == 1 else work / f"{size}mb"
        rows.append(
            (size, measure(size_work, size, files_for(size, args.files), args.rounds, mksquashfs))
        )
    if len(rows) > 1:
        print()
        print(series_table(rows, [OURS, THEIRS]))


def measure(
    work: Path, size_mb: int, files: int, rounds: int, mksquashfs: Path
) -> dict[str, Timing]:
    recipe = payload_recipe(work, size_mb, files)
    python = sys.executable
    store = work / "store"
    if not (store / "index.json").exists():
        timed(
            "ocibuild build (not compared)",
            f"{python} -m ocibuild -q --store {store} recipe {recipe}",
        )
    archive = work / "payload.tar"
    if not archive.exists():
        timed(
            "ocibuild export --format oci-archive (not compared)",
            f"{python} -m ocibuild -q --store {store} export {REF} --format oci-archive -o {archive}",
        )
    runs: dict[str, list[Timing]] = {OURS: [], THEIRS: []}
    for round_ in range(rounds):
        order = [ours, theirs] if round_ % 2 == 0 else [theirs, ours]
        for way in order:
            name, timing = way(work, store, archive, mksquashfs)
            runs[name].append(timing)
            print(
                f"round {round_ + 1}: {timing.name}: {timing.seconds:.2f} s, {timing.peak_mb:.0f} MB",
                flush=True,
            )
    medians = {name: median(name, timings) for name, timings in runs.items()}
    ratio = medians[OURS].seconds / medians[THEIRS].seconds
    print()
    print(f"payload: {size_mb} MB in {files} files; {rounds} rounds, medians")
    print(f"{'way':<40} {'seconds':>8} {'peak MB':>8} {'x load + migrate':>17}")
    for timing in medians.values():
        print(
            f"{timing.name:<40} {timing.seconds:>8.2f} {timing.peak_mb:>8.0f} "
            f"{timing.seconds / medians[THEIRS].seconds:>17.3f}"
        )
    print(
        f"ocibuild vs podman-hpc load + migrate: {ratio:.3f}x the time (target <= 0.25x): "
        f"{'ok' if ratio <= 0.25 else 'MISSED'}"
    )
    return medians


def ours(work: Path, store: Path, archive: Path, mksquashfs: Path) -> tuple[str, Timing]:
    squash = fresh(work, "ours-squash")
    timing = timed(
        OURS,
        f"{sys.executable} -m ocibuild -q --store {store} export {REF} --format podman-hpc -o {squash}",
    )
    remove_tree(squash)
    return OURS, timing


def theirs(work: Path, store: Path, archive: Path, mksquashfs: Path) -> tuple[str, Timing]:
    # podman refuses a run root longer than 50 characters: podman-hpc's directories go to /tmp
    hpc = PodmanHPC.create(Path(tempfile.mkdtemp(prefix="phpc-bench-")), mksquashfs=mksquashfs)
    try:
        command = f"podman-hpc load -i {archive} >/dev/null && podman-hpc migrate {REF}"
        timing = timed(THEIRS, f"PATH={hpc.bindir}:$PATH {command}", env=hpc.env)
        squashes = list((hpc.squash_dir / "overlay/l").glob("*.squash"))
        if not squashes:
            raise SystemExit("podman-hpc migrate made no squash (it exits 0 when it fails)")
    finally:
        hpc.cleanup()
        remove_tree(hpc.root)
    return THEIRS, timing


if __name__ == "__main__":
    main()
