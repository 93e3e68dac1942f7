"""What verifying package indexes costs, on recipes/debian-base.yaml with a warm download cache.

In one run, alternating, each round in a fresh store and with the lock refreshed
(`--update-lock --no-cache`: every index is read again and the layer written):

- the recipe as it is (every InRelease verified with gpgv against Debian's keyring), and
- the same recipe with `trusted: true` on every repository (nothing verified);

then the verification alone, ocibuild's verifier against the bare `gpgv` command apt runs, on
the three InRelease files of the build. Prints medians and ratios. Issue 20's target for the
supply chain as a whole (verification plus SBOM) is at most 5% on this build.

    python3 bench/verify_bench.py [--rounds 5] [--workdir DIR]

The archive is the recipe's default (deb.debian.org) unless DEBIAN_MIRROR,
DEBIAN_SECURITY_MIRROR and DEBIAN_SUITE say otherwise, as for the recipe itself.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import argument_parser

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "debian-base.yaml"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
REPO_LINE = "              components: [main]\n"


def ocibuild(store: Path, recipe: Path, cache: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OCIBUILD_CACHE": str(cache)}
    shutil.rmtree(store, ignore_errors=True)
    args = [sys.executable, "-m", "ocibuild", "--store", str(store), "-q", "recipe"]
    started = time.monotonic()
    subprocess.run(
        [*args, str(recipe), "--update-lock", "--no-cache"],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    return time.monotonic() - started


def in_releases(cache: Path) -> list[Path]:
    """The InRelease files the builds downloaded (the download cache's blobs that are one)."""
    found = []
    for blob in cache.rglob("*"):
        if blob.is_file() and blob.stat().st_size < 4 << 20:
            with open(blob, "rb") as f:
                if f.read(34) == b"-----BEGIN PGP SIGNED MESSAGE-----":
                    found.append(blob)
    return found


def verify_alone(files: list[Path], rounds: int) -> tuple[float, float]:
    """Median seconds to verify all `files`: ocibuild's verifier, and the bare gpgv command."""
    sys.path.insert(0, str(ROOT))
    from ocibuild.trust.openpgp import Keys, keyring, verify_clearsigned

    ours, bare = [], []
    with tempfile.TemporaryDirectory() as home:
        for _ in range(rounds):
            started = time.monotonic()
            keys = keyring(Keys("debian", files=(KEYRING,)))
            for path in files:
                verify_clearsigned(path, keys, path.name)
            ours.append(time.monotonic() - started)
            started = time.monotonic()
            for path in files:
                subprocess.run(
                    ["gpgv", "--homedir", home, "--keyring", str(KEYRING), "--output",
                     os.devnull, str(path)],
                    check=True,
                    capture_output=True,
                )  # fmt: skip
            bare.append(time.monotonic() - started)
    return statistics.median(ours), statistics.median(bare)


def main() -> None:
    parser = argument_parser(__doc__ or "")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workdir", type=Path)
    options = parser.parse_args()
    work = options.workdir or Path(tempfile.mkdtemp(prefix="verify-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    cache = work / "cache"
    verified = work / "verified" / "debian-base.yaml"
    trusted = work / "trusted" / "debian-base.yaml"
    for path in (verified, trusted):
        path.parent.mkdir(exist_ok=True)
    text = RECIPE.read_text()
    assert text.count(REPO_LINE) == 3, "recipes/debian-base.yaml changed: update REPO_LINE"
    verified.write_text(text)
    trusted.write_text(text.replace(REPO_LINE, REPO_LINE + "              trusted: true\n"))

    ocibuild(work / "store", verified, cache)  # warms the download cache
    times: dict[str, list[float]] = {"verified": [], "trusted": []}
    for _ in range(options.rounds):
        times["verified"].append(ocibuild(work / "store", verified, cache))
        times["trusted"].append(ocibuild(work / "store", trusted, cache))
    on, off = (statistics.median(times[k]) for k in ("verified", "trusted"))
    print(f"debian-base, --update-lock --no-cache, warm download cache, {options.rounds} rounds")
    print(f"{'':<30} {'median s':>9}")
    print(f"{'verified (gpgv, Debian keys)':<30} {on:>9.3f}")
    print(f"{'trusted: true (unverified)':<30} {off:>9.3f}")
    print(f"verification adds {100 * (on - off) / off:+.1f}% to the build")

    files = in_releases(cache)
    ours, bare = verify_alone(files, max(options.rounds, 10))
    print(f"\nverifying the {len(files)} InRelease files alone (median of rounds):")
    print(f"{'ocibuild.trust (dearmor, gpgv)':<30} {ours * 1000:>9.1f} ms")
    print(f"{'bare gpgv (what apt runs)':<30} {bare * 1000:>9.1f} ms")
    print(f"ratio ocibuild/gpgv: {ours / bare:.2f}")


if __name__ == "__main__":
    main()
