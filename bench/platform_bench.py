"""recipes/platform.yaml's Debian part against mmdebstrap of the same package list, same run.

Both install Debian 12's build-essential, python3, python3-dev, python3-pip,
libboost-program-options-dev and ca-certificates (the recipe's `deb` list) from the same archive
with every download cached (each tool runs once untimed first), and give a gzip tarball and its
sha256:

  ocibuild recipe --no-cache     the `deb` layer (from the lock: no index read) and the
                                 `configure` layer (alternatives, CA store, Debian's bytecode):
                                 streamed into tar, gzip and sha256, two blobs in the store
  mmdebstrap + pigz + sha256     `mmdebstrap --variant=essential --include=LIST --mode=root` into a
                                 tar (apt reads the indexes, dpkg unpacks and runs every
                                 maintainer script in a chroot), then `pigz -6` and sha256sum;
                                 its .debs kept between runs by its own sync-in/sync-out hooks

The whole recipe (with the scientific stack's wheels and the user) is timed too, for scale.
Target on a 2-core machine: ocibuild at most 0.5x the mmdebstrap path. Runs as root.

    python3 bench/platform_bench.py [--workdir DIR] [--repeat N]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Timing, argument_parser, have, table, timed, workdir

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "platform.yaml"
WHEELS = Path(os.environ.get("OCIBUILD_TEST_WHEELS", "/var/cache/ocibuild/test-wheels"))


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--workdir", type=Path, help="Outputs [default: a temp dir].")
    parser.add_argument("--repeat", type=int, default=2, help="Timed runs of each [default: 2].")
    args = parser.parse_args()
    for tool in ("mmdebstrap", "pigz"):
        if not have(tool):
            raise SystemExit(f"{tool} is needed: apt-get install {tool}")
    if os.geteuid() != 0:
        raise SystemExit("mmdebstrap --mode=root needs root")
    work = workdir(args.workdir, "ocibuild-platform-bench-")
    recipe = yaml.safe_load(RECIPE.read_text())
    image = recipe["images"][0]
    deb = image["layers"][0]["deb"]
    packages = deb["packages"]
    mirror = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
    security = os.environ.get("DEBIAN_SECURITY_MIRROR", "http://deb.debian.org/debian-security")
    suite = os.environ.get("DEBIAN_SUITE", "bookworm")

    # the recipe's Debian part: the deb and configure layers; and the whole recipe, its
    # wheels from the test wheel directory (scripts/fetch-test-wheels)
    debian = {**recipe, "images": [{**image, "layers": image["layers"][:2]}]}
    (work / "debian.yaml").write_text(yaml.safe_dump(debian))
    whole = yaml.safe_load(RECIPE.read_text())
    whole["images"][0]["layers"][2]["wheels"].update(find_links=[str(WHEELS)], no_index=True)
    (work / "platform.yaml").write_text(yaml.safe_dump(whole))
    env = {
        **os.environ,
        "OCIBUILD_CACHE": str(work / "ocibuild-cache"),
        "PYTHONPATH": str(ROOT),
        "PIP_CONFIG_FILE": os.devnull,
    }
    for name in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        env.pop(name, None)
    sources = " ".join(
        f'"deb {url} {s} main"'
        for url, s in (
            (mirror, suite),
            (mirror, f"{suite}-updates"),
            (security, f"{suite}-security"),
        )
    )
    debs = work / "mmdebstrap-debs"
    debs.mkdir(exist_ok=True)
    tar = work / "mmdebstrap.tar"
    mmdebstrap = (
        f"mmdebstrap --quiet --mode=root --variant=essential --include={','.join(packages)} "
        "--setup-hook='mkdir -p \"$1\"/var/cache/apt/archives/' "
        f"--setup-hook='sync-in {debs} /var/cache/apt/archives/' "
        f"--customize-hook='sync-out /var/cache/apt/archives {debs}' "
        f"{suite} {tar} {sources}"
    )
    theirs = f"rm -f {tar}.gz && {mmdebstrap} && pigz -6 {tar} && sha256sum {tar}.gz > /dev/null"
    python = sys.executable
    store = work / "store"

    def ours(name: str) -> str:
        return f"{python} -m ocibuild -q --store {store} recipe --no-cache {work / name}"

    runs = {
        "ocibuild: deb + configure layers": ours("debian.yaml"),
        "mmdebstrap + pigz + sha256": theirs,
        "ocibuild: the whole platform.yaml": ours("platform.yaml"),
    }
    for name, command in runs.items():  # warm every cache, pin the lock
        timed(f"{name} (warm-up)", command, env=env)
    timings: dict[str, list[Timing]] = {name: [] for name in runs}
    for _ in range(args.repeat):  # interleaved
        for name, command in runs.items():
            timings[name].append(timed(name, command, env=env))
    best = [min(ts, key=lambda t: t.seconds) for ts in timings.values()]
    print()
    print(
        f"{len(packages)} requested packages; {len(os.sched_getaffinity(0))} cores; best of {args.repeat}"
    )
    for name, ts in timings.items():
        print(f"  {name}: {', '.join(f'{t.seconds:.1f}' for t in ts)} s")
    print(table(best, "mmdebstrap + pigz + sha256"))
    size = (work / "mmdebstrap.tar.gz").stat().st_size
    print(f"mmdebstrap tarball: {size / 1e6:.1f} MB gzip")
    ratio = best[0].seconds / best[1].seconds
    print(
        f"ocibuild vs mmdebstrap: {ratio:.2f}x the time (target <= 0.5x): {'ok' if ratio <= 0.5 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
