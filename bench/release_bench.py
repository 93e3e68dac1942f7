"""The whole path a release takes, from a scisoft bundle to an image a site runs: ocibuild against
the paper's way without a daemon, same loopback mirror, same kind of registry, same run.

A synthetic bundle (~30 products, ~2 GB unpacked by default; scisoft's formats, bzip2 tarballs)
is served on 127.0.0.1, and each way takes it to a registry and to the squashfs a site runs:

  ocibuild        recipe (manifest, parallel downloads, layers)
                  push to a local registry
                  export --format squashfs --all-root (what a site gateway would make)
  the paper's     curl the manifest and each tarball, tar xjf each into /products,
  way             umoci repack, skopeo copy to a local registry;
                  then what a site gateway does: skopeo copy from the registry, umoci unpack,
                  mksquashfs -all-root (gzip)

Then the floor, the work no tool can skip on this machine: the bundle decoded by lbzip2 on every
core into hash + ISA-L gzip + hash (bench/stream_floor.py), and tar2sqfs compressing the image's
flattened tar read from the page cache (the registry's part of a push is left out).

And what verifying blobs costs (issue 22: every blob is checked against its digest when it
leaves the store or is reused): push, export and a rebuild from the layer cache, each run as
shipped and again with the checks patched out (`noverify.py`, written here: no such switch
exists in ocibuild), to a fresh registry each, in the same run.

Prints each stage, the totals, the CPU seconds of ocibuild recipe's stages (its `-v` line),
peak memory and the ratios. Target: ocibuild at most 0.25x of the paper's way, peak memory under
300 MB.

    python3 bench/release_bench.py [--size-mb 2000] [--products 30] [--workdir DIR]
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import (
    Timing,
    argument_parser,
    cpu_timed,
    fresh,
    have,
    registry,
    serve,
    timed,
    workdir,
)
from ups_bench import RECIPE, bench_mirror, cpu_stages, layer_floor, pullproducts_way

REF = "localhost/bench/ups:latest"  # the image of ups_bench's RECIPE
TOOLS = {
    "curl": "curl",
    "tar": "tar",
    "bzip2": "bzip2",
    "umoci": "umoci",
    "skopeo": "skopeo",
    "mksquashfs": "squashfs-tools",
    "lbzip2": "lbzip2",
    "tar2sqfs": "squashfs-tools-ng",
}


def write_flat_tar(store: Path, output: Path) -> None:
    """The flattened tar of the built image (what `export --format squashfs` streams)."""
    from ocibuild.store import Store
    from ocibuild.store.flatten import FlattenOptions, flat_tar

    opened = Store.open(store)
    with open(output, "wb") as out:
        for chunk in flat_tar(opened, opened.image(REF), FlattenOptions(all_root=True)):
            out.write(chunk)


# ocibuild with the blob checks patched out, for the A/B of what they cost (bench only)
NO_VERIFY = """\
import sys
import ocibuild.store.layout as layout
import ocibuild.store.verify as verify


def read_blob(self, digest):
    with self.open_blob(digest) as f:
        return f.read()


verify.VerifiedBlob.read = lambda self, n=-1: self.raw.read(n)
verify.VerifiedBlob.finish = lambda self: None
layout.Store.read_blob = read_blob
layout.Store.check_blob = lambda self, digest, size=None: None
layout.Store.verified = lambda self, digest, size=None: self.has_blob(digest)
from ocibuild.cli import main

sys.exit(main(sys.argv[1:]))
"""


def verification_cost(
    stage: Callable[[str, str, str, dict[str, str] | None], Timing],
    work: Path,
    store: Path,
    squash: Path,
    recipe: Path,
    scisoft: str,
    env: dict[str, str],
) -> list[tuple[str, float, float]]:
    """Push, export and a cached rebuild as shipped and with the checks patched out: (what,
    seconds with, seconds without)."""
    python = sys.executable
    script = work / "noverify.py"
    script.write_text(NO_VERIFY)
    rows = []
    for name, args in (
        ("push", f"push {REF} --to {{host}}/release/ups:1 --insecure"),
        ("export --format squashfs", f"export {REF} --format squashfs --all-root -o {squash}"),
        ("recipe, every layer cached", f"recipe --mirror {scisoft} {recipe}"),
    ):
        seconds = []
        for arm, program in (("verified", "-m ocibuild"), ("not verified", str(script))):
            with registry(work, f"verify-{arm.replace(' ', '-')}") as (host, _):
                command = f"{python} {program} -q --store {store} {args.format(host=host)}"
                seconds.append(stage("verify", f"{name} ({arm})", command, env).seconds)
        rows.append((name, seconds[0], seconds[1]))
    return rows


def main() -> None:
    parser = argument_parser(__doc__ or "")
    parser.add_argument("--size-mb", type=int, default=2000, help="Unpacked size of the bundle.")
    parser.add_argument("--products", type=int, default=30)
    parser.add_argument("--workdir", type=Path, help="Mirror and outputs [default: a temp dir].")
    args = parser.parse_args()
    missing = [package for tool, package in TOOLS.items() if not have(tool)]
    if missing:
        raise SystemExit(f"needs the Debian packages: apt-get install {' '.join(missing)}")

    work = workdir(args.workdir, "ocibuild-release-bench-")
    bundle, mirror, tarballs = bench_mirror(work, args.size_mb, args.products)
    cores = len(os.sched_getaffinity(0))
    packed = sum(p.stat().st_size for p in tarballs)
    server, url = serve(mirror)
    scisoft = f"{url}/scisoft"
    python = sys.executable
    stages: dict[str, list[Timing]] = {"ocibuild": [], "paper": [], "floor": [], "verify": []}
    cpu: dict[str, float] = {}

    def stage(way: str, name: str, command: str, env: dict[str, str] | None = None) -> Timing:
        timing, cpu[name] = cpu_timed(name, command, env)
        stages[way].append(timing)
        print(f"  {name}: {timing.seconds:.2f} s, {timing.peak_mb:.0f} MB", flush=True)
        return timing

    load_before = os.getloadavg()[0]
    try:
        timed("warm-up", f"cat {' '.join(map(str, tarballs))} > /dev/null")
        recipe = work / "ups.yaml"
        recipe.write_text(RECIPE.format(bundle=bundle.spec))
        recipe.with_suffix(".yaml.lock").unlink(missing_ok=True)
        cache, store = fresh(work, "ocibuild-cache"), fresh(work, "ocibuild-store")
        squash = work / "ocibuild.sqfs"
        squash.unlink(missing_ok=True)
        ocibuild = f"{python} -m ocibuild -q --store {store}"
        env = {**os.environ, "OCIBUILD_CACHE": str(cache)}
        print("ocibuild:", flush=True)
        log = work / "ocibuild.log"  # -v: ends with the CPU seconds of the recipe's stages
        stage(
            "ocibuild",
            "ocibuild recipe",
            f"{python} -m ocibuild -v --store {store} recipe --mirror {scisoft} {recipe} 2> {log}",
            env,
        )
        with registry(work, "ocibuild") as (host, _):
            stage(
                "ocibuild",
                "ocibuild push",
                f"{ocibuild} push {REF} --to {host}/release/ups:1 --insecure",
                env,
            )
        stage(
            "ocibuild",
            "ocibuild export --format squashfs",
            f"{ocibuild} export {REF} --format squashfs --all-root -o {squash}",
            env,
        )

        print("the paper's way, without a daemon:", flush=True)

        def paper(name: str, command: str) -> Timing:
            return stage("paper", name, command)

        pullproducts_way(paper, work, scisoft, bundle)
        layout = work / "pullproducts" / "layout"
        gateway = fresh(work, "gateway")
        gateway.mkdir()
        paper_squash = work / "paper.sqfs"
        paper_squash.unlink(missing_ok=True)
        with registry(work, "paper") as (host, _):
            paper(
                "skopeo copy to the registry",
                f"skopeo copy -q --dest-tls-verify=false oci:{layout}:ups "
                f"docker://{host}/release/ups:1",
            )
            paper(
                "gateway: skopeo copy from the registry",
                f"skopeo copy -q --src-tls-verify=false docker://{host}/release/ups:1 "
                f"oci:{gateway}/layout:ups",
            )
        paper(
            "gateway: umoci unpack",
            f"umoci unpack --image {gateway}/layout:ups {gateway}/bundle >/dev/null",
        )
        paper(
            "gateway: mksquashfs -all-root",
            f"mksquashfs {gateway}/bundle/rootfs {paper_squash} -all-root -no-xattrs "
            f"-noappend -quiet -processors {cores}",
        )
        shutil.rmtree(gateway, ignore_errors=True)

        print("the floor:", flush=True)
        stage("floor", "floor: lbzip2 -d | hash, gzip, hash", layer_floor(tarballs))
        flat = work / "flat.tar"
        write_flat_tar(store, flat)  # not timed
        timed("page cache warm-up", f"cat {flat} > /dev/null")
        stage(
            "floor",
            "floor: tar2sqfs of the flattened tar",
            f"tar2sqfs --quiet --force --no-skip --compressor gzip --comp-extra level=4 "
            f"--num-jobs {cores} --no-xattr {work / 'floor.sqfs'} < {flat}",
        )
        flat.unlink()

        print("what verifying blobs costs:", flush=True)
        checks = verification_cost(stage, work, store, squash, recipe, scisoft, env)
    finally:
        server.shutdown()
    load_after = os.getloadavg()[0]

    totals = {
        way: Timing(way, sum(t.seconds for t in ts), max(t.peak_mb for t in ts))
        for way, ts in stages.items()
    }
    print()
    print(
        f"bundle: {args.products} products, {args.size_mb} MB unpacked, {packed / 1e6:.0f} MB of "
        f"bzip2; {cores} cores; load average {load_before:.1f} before, {load_after:.1f} after"
    )
    print(f"{'stage':<44} {'seconds':>8} {'CPU s':>8} {'peak MB':>8}")
    for way, label in (
        ("ocibuild", "ocibuild (total)"),
        ("paper", "the paper's way (total)"),
        ("floor", "the floor (total)"),
        ("verify", "verification A/B (not in the totals above)"),
    ):
        for t in stages[way]:
            print(f"  {t.name:<42} {t.seconds:>8.2f} {cpu[t.name]:>8.1f} {t.peak_mb:>8.0f}")
        total = totals[way]
        print(f"{label:<44} {total.seconds:>8.2f} {'':>8} {total.peak_mb:>8.0f}")
    print(f"ocibuild recipe's {cpu_stages(log)}")
    floor = totals["floor"].seconds
    print(
        f"the floor on this machine: {floor / totals['paper'].seconds:.2f}x the paper's way; "
        f"ocibuild takes {totals['ocibuild'].seconds / floor:.2f}x the floor"
    )
    ratio = totals["ocibuild"].seconds / totals["paper"].seconds
    peak = totals["ocibuild"].peak_mb
    sizes = f"squashfs: ocibuild {squash.stat().st_size / 1e6:.0f} MB, mksquashfs {paper_squash.stat().st_size / 1e6:.0f} MB"
    print(sizes)
    print(
        f"ocibuild vs the paper's way: {ratio:.2f}x the time (target <= 0.25x): "
        f"{'ok' if ratio <= 0.25 else 'MISSED'}"
    )
    print(
        f"ocibuild peak memory: {peak:.0f} MB (target < 300 MB): {'ok' if peak < 300 else 'MISSED'}"
    )
    release = sum(t.seconds for t in stages["ocibuild"])
    print("blob verification (issue 22), same run:")
    for name, verified, unverified in checks:
        print(
            f"  {name:<30} {verified:>7.2f} s verified, {unverified:>7.2f} s not: "
            f"{verified - unverified:+.2f} s ({(verified / unverified - 1) * 100:+.0f}%)"
        )
    added = sum(v - u for _, v, u in checks[:2])
    print(
        f"  push + export: {added:+.2f} s, {added / release * 100:+.1f}% of ocibuild's release path"
    )


if __name__ == "__main__":
    main()
