"""A UPS bundle into an image: ocibuild against the pullProducts way, same mirror, same run.

A synthetic bundle (testsupport/synthetic_ups.py: scisoft's formats, bzip2 tarballs of binary-like
data; ~30 products, ~2 GB unpacked by default) is served from a scisoft mirror on 127.0.0.1.

  ocibuild                    ocibuild recipe: manifest, parallel downloads, tarballs streamed
                              into layers (layering: auto), gzip, fresh download cache and store;
                              then the same build again (everything cached)
  pullProducts way            what `RUN ./pullProducts /products slf6 bench-v1_00_00 e9 prof` did
                              in a Dockerfile: curl the manifest and each tarball, `tar xjf`
                              each into /products, then `umoci repack` the tree into an image

With --mirror-mb-per-s, the mirror sends through a link that fast (shared by all downloads),
as a remote mirror would, and ocibuild is also timed building from its warm download cache into
a fresh store (the layers alone), and with the lock file the first build wrote, from an empty
download cache into a fresh store (every layer's key known before its tarballs arrive). A build
that overlaps downloads with decoding and compression takes about the longer of the two
(downloads, layers), not their sum.

The floor, timed in the same run: every tarball decoded by lbzip2 on every core, piped into
bench/stream_floor.py (sha256, ISA-L gzip at ocibuild's default level on every core, sha256):
the work no layer writer can skip, without parsing a single tar header.

Target: ocibuild at most 0.35x the pullProducts way. ocibuild runs with -v, whose last line
gives the CPU seconds of each of its stages (download, decode, tar, hash; the rest is mostly
the compressor's threads); the pullProducts way's steps are timed one by one.

    python3 bench/ups_bench.py [--size-mb 2000] [--products 30] [--workdir DIR]
    python3 bench/ups_bench.py --size-mb 1000 --products 20 --mirror-mb-per-s 50
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import Timing, argument_parser, cpu_timed, fresh, have, serve, table, timed, workdir

from testsupport.synthetic_ups import SyntheticBundle, bench_bundle, write_mirror

RECIPE = """\
source_date_epoch: 1451606400
images:
  - name: localhost/bench/ups:latest
    layers:
      - ups: {{bundle: {bundle}, os: slf6, qualifiers: e9, build: prof}}
"""


def pullproducts_way(
    run: Callable[[str, str], Timing], work: Path, scisoft: str, bundle: SyntheticBundle
) -> Timing:
    """What `RUN ./pullProducts /products slf6 BUNDLE e9 prof` did in a Dockerfile, without the
    daemon: curl the manifest and each tarball, `tar xjf` each into /products, `umoci repack`
    the tree; the image is WORK/pullproducts/layout:ups. Returns the total of the timed steps."""
    pp = fresh(work, "pullproducts")
    layout, tree, downloads = pp / "layout", pp / "bundle", pp / "tarballs"
    downloads.mkdir(parents=True)
    timed(
        "umoci setup (not timed)",
        f"umoci init --layout {layout} && umoci new --image {layout}:base "
        f"&& umoci unpack --image {layout}:base {tree} && mkdir -p {tree}/rootfs/products",
    )
    manifest = f"{scisoft}/bundles/{bundle.name}/{bundle.version}/manifest/{bundle.manifest}"
    steps = [
        run(
            "pullProducts way: curl each tarball",
            f"curl -sSf -o {pp}/manifest.txt '{manifest}' && "
            "while read -r product version tarball rest; do "
            f"curl -sSf -o {downloads}/$tarball {scisoft}/packages/$product/$version/$tarball; "
            f"done < {pp}/manifest.txt",
        ),
        run(
            "pullProducts way: tar xjf each",
            f"for t in {downloads}/*.tar.bz2; do tar xjf $t -C {tree}/rootfs/products; done",
        ),
        run("pullProducts way: umoci repack", f"umoci repack --image {layout}:ups {tree}"),
    ]
    shutil.rmtree(tree, ignore_errors=True)
    return Timing(
        "pullProducts way (total)",
        sum(t.seconds for t in steps),
        max(t.peak_mb for t in steps),
    )


def layer_floor(tarballs: list[Path]) -> str:
    """The floor's command: every tarball decoded by lbzip2 on every core, then hashed,
    compressed with ISA-L on every core and hashed again (bench/stream_floor.py)."""
    cores = len(os.sched_getaffinity(0))
    return (
        f"for t in {' '.join(map(str, tarballs))}; do lbzip2 -dc -n {cores} $t; done "
        f"| {sys.executable} {Path(__file__).parent / 'stream_floor.py'} > /dev/null"
    )


def cpu_stages(log: Path) -> str:
    """The `cpu seconds: ...` line that `ocibuild -v` ends with."""
    lines = [line for line in log.read_text().splitlines() if line.startswith("cpu seconds:")]
    return lines[-1] if lines else "cpu seconds: (not reported)"


def bench_mirror(
    work: Path, size_mb: int, products: int
) -> tuple[SyntheticBundle, Path, list[Path]]:
    """The synthetic bundle of `size_mb` unpacked in `products` products, its mirror under
    WORK (written once, kept for later runs) and its tarballs."""
    bundle = bench_bundle(size_mb * 1_000_000, products)
    mirror = work / f"mirror-{size_mb}mb-{products}"
    if not (mirror / "scisoft" / "bundles").exists():
        print(
            f"generating {bundle.spec}: {products} products, {size_mb} MB unpacked, in {mirror} ...",
            flush=True,
        )
        write_mirror(mirror / "scisoft", [bundle], jobs=len(os.sched_getaffinity(0)))
    return bundle, mirror, sorted((mirror / "scisoft" / "packages").rglob("*.tar.bz2"))


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--size-mb", type=int, default=2000, help="Unpacked size of the bundle.")
    parser.add_argument("--products", type=int, default=30)
    parser.add_argument("--workdir", type=Path, help="Mirror and outputs [default: a temp dir].")
    parser.add_argument(
        "--mirror-mb-per-s",
        type=float,
        default=0.0,
        help="The mirror's bandwidth in MB/s, shared by all downloads [default: loopback's].",
    )
    args = parser.parse_args()
    for tool in ("curl", "tar", "bzip2", "lbzip2", "umoci"):
        if not have(tool):
            raise SystemExit(f"{tool} is needed (Debian: apt-get install {tool})")

    work = workdir(args.workdir, "ocibuild-ups-bench-")
    bundle, mirror, tarballs = bench_mirror(work, args.size_mb, args.products)
    cores = len(os.sched_getaffinity(0))
    packed = sum(p.stat().st_size for p in tarballs)
    server, url = serve(mirror, args.mirror_mb_per_s)
    scisoft = f"{url}/scisoft"
    python = sys.executable
    timings: list[Timing] = []

    cpu: dict[str, float] = {}

    def run(name: str, command: str, env: dict[str, str] | None = None) -> Timing:
        timing, cpu[name] = cpu_timed(name, command, env)
        timings.append(timing)
        return timing

    load_before = os.getloadavg()[0]
    try:
        timed("warm-up", f"cat {' '.join(map(str, tarballs))} > /dev/null")
        # ocibuild: fresh download cache and store, everything through the loopback mirror
        (work / "ups.yaml").write_text(RECIPE.format(bundle=bundle.spec))
        (work / "ups.yaml.lock").unlink(missing_ok=True)
        cache, store = fresh(work, "ocibuild-cache"), fresh(work, "ocibuild-store")
        ours = run(
            "ocibuild recipe (download + layers)",
            f"{python} -m ocibuild -v --store {store} recipe --mirror {scisoft} "
            f"{work / 'ups.yaml'} 2> {work / 'ocibuild.log'}",
            env={**os.environ, "OCIBUILD_CACHE": str(cache)},
        )
        stages = cpu_stages(work / "ocibuild.log")
        again = run(
            "ocibuild recipe again (all cached)",
            f"{python} -m ocibuild -q --store {store} recipe --mirror {scisoft} {work / 'ups.yaml'}",
            env={**os.environ, "OCIBUILD_CACHE": str(cache)},
        )
        layers_only = locked = None
        if args.mirror_mb_per_s:
            layers_only = run(
                "ocibuild recipe, tarballs already downloaded",
                f"{python} -m ocibuild -q --store {fresh(work, 'ocibuild-store')} recipe "
                f"--mirror {scisoft} {work / 'ups.yaml'}",
                env={**os.environ, "OCIBUILD_CACHE": str(cache)},
            )
            locked = run(
                "ocibuild recipe with its lock file",
                f"{python} -m ocibuild -q --store {fresh(work, 'ocibuild-store')} recipe "
                f"--mirror {scisoft} {work / 'ups.yaml'}",
                env={**os.environ, "OCIBUILD_CACHE": str(fresh(work, "ocibuild-cache"))},
            )
        floor = run("floor: lbzip2 -d | hash, gzip, hash", layer_floor(tarballs))
        theirs = pullproducts_way(run, work, scisoft, bundle)
        timings.append(theirs)
        cpu[theirs.name] = sum(v for k, v in cpu.items() if k.startswith("pullProducts way:"))
    finally:
        server.shutdown()
    load_after = os.getloadavg()[0]

    print()
    print(
        f"bundle: {args.products} products, {args.size_mb} MB unpacked, {packed / 1e6:.0f} MB of "
        f"bzip2 tarballs; {cores} cores; load average {load_before:.1f} before, "
        f"{load_after:.1f} after"
    )
    print(table(timings, theirs.name))
    print()
    for name in (ours.name, theirs.name):
        print(f"{name}: {cpu[name]:.1f} CPU seconds")
    print(f"ocibuild's {stages}")
    for name, seconds in cpu.items():
        if name.startswith("pullProducts way:"):
            print(f"{name}: {seconds:.1f} CPU seconds")
    ratio = ours.seconds / theirs.seconds
    print(
        f"ocibuild vs the pullProducts way: {ratio:.2f}x the time (target <= 0.35x): "
        f"{'ok' if ratio <= 0.35 else 'MISSED'}; "
        f"{cpu[ours.name] / cpu[theirs.name]:.2f}x the CPU seconds"
    )
    print(
        f"the floor on this machine: {floor.seconds / theirs.seconds:.2f}x the pullProducts way; "
        f"ocibuild takes {ours.seconds / floor.seconds:.2f}x the floor"
    )
    print(f"ocibuild peak memory: {ours.peak_mb:.0f} MB; unchanged rebuild: {again.seconds:.2f} s")
    if layers_only is not None:
        download = next(t for t in timings if t.name == "pullProducts way: curl each tarball")
        print(
            f"overlap, at {args.mirror_mb_per_s:g} MB/s: the build took {ours.seconds:.1f} s; "
            f"downloading alone {download.seconds:.1f} s (curl), the layers alone "
            f"{layers_only.seconds:.1f} s: {download.seconds + layers_only.seconds:.1f} s in "
            f"sequence, {max(download.seconds, layers_only.seconds):.1f} s perfectly overlapped"
        )
    if locked is not None:
        print(
            f"with the lock file (every layer's key known before its tarballs arrive), from an "
            f"empty download cache: {locked.seconds:.1f} s"
        )


if __name__ == "__main__":
    main()
