"""Spack packages into an image: ocibuild's `spack` source against Spack's own ways, same build
cache, same run.

  ocibuild               ocibuild recipe: the index, the signed spec files, parallel downloads,
                         tarballs streamed and relocated into layers (layering: auto), gzip;
                         fresh download cache and store
  spack + tar | pigz     `spack install --cache-only` of the same roots into a fresh install
                         tree (padded as ocibuild's), then the tree as one layer:
                         `tar -c | pigz | sha256sum` (what a Dockerfile's RUN + export amounts to)
  spack --base-image     `spack buildcache push --base-image` to a registry on 127.0.0.1, where
                         the docker-registry package runs

The build cache is the fixtures' (tests/spack/fixtures/buildcache/signed, made by the real Spack)
unless --cache and --roots name another. It needs the Spack checkout the fixtures were made with
(--spack, default /work/spack) and a python3 with clingo; without them it says so and stops:
it is a benchmark, not a test. Target: ocibuild at most 0.3x `spack install` + tar | pigz,
memory flat.

    python3 bench/spack_bench.py [--spack /work/spack] [--cache DIR --roots "zlib@1.2.13 ..."]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import Timing, argument_parser, fresh, have, table, timed, workdir

PROJECT = Path(__file__).resolve().parent.parent
FIXTURES = PROJECT / "tests" / "spack" / "fixtures"
ROOTS = "zlib@1.2.13 bzip2@1.0.8 xz@5.4.1 gmake@4.3 ocibuild-zpipe@1.0"
RECIPE = """\
source_date_epoch: 1451606400
images:
  - name: localhost/bench/spack:latest
    layers:
      - spack:
          mirror: {cache}
          specs: [{roots}]
          {trust}
          into: {{root: {root}, padded_length: {padding}}}
"""


def spack_python(spack: Path) -> str | None:
    """A python3 that runs Spack (with clingo), or None."""
    for python in (sys.executable, shutil.which("python3") or ""):
        if (
            python
            and subprocess.run(
                [python, "-c", "import clingo"], capture_output=True, check=False
            ).returncode
            == 0
        ):
            return python
    return None


def root_hashes(cache: Path, roots: str) -> list[str]:
    index = json.loads((cache / "build_cache" / "index.json").read_text())["database"]["installs"]
    out = []
    for want in roots.split():
        name, _, version = want.partition("@")
        out += [
            h
            for h, r in index.items()
            if r["spec"]["name"] == name
            and (not version or r["spec"]["version"] == version)
            and r.get("in_buildcache")
        ]
    return out


def made(work: Path, name: str) -> Path:
    path = fresh(work, name)
    path.mkdir(parents=True)
    return path


def spack_scope(work: Path, cache: Path, root: Path, padding: int) -> dict[str, str]:
    scope = made(work, "spack-scope")
    (scope / "config.yaml").write_text(
        f"config:\n  install_tree:\n    root: {root}\n    padded_length: {padding}\n"
        f"  build_stage: [{work}/stage]\n  misc_cache: {work}/misc-cache\n"
    )
    (scope / "mirrors.yaml").write_text(
        f"mirrors::\n  bench:\n    url: file://{cache}\n    signed: false\n    source: false\n"
    )
    # the fixture package ocibuild-zpipe's recipe (namespace ocibuild)
    (scope / "repos.yaml").write_text(
        f"repos:\n- {PROJECT / 'scripts' / 'spack-fixtures' / 'repo'}\n"
    )
    return {
        **os.environ,
        "SPACK_USER_CONFIG_PATH": str(scope),
        "SPACK_SYSTEM_CONFIG_PATH": str(made(work, "spack-system")),
        "SPACK_USER_CACHE_PATH": str(made(work, "spack-user-cache")),
        "SPACK_GNUPGHOME": str(made(work, "spack-gnupg")),
    }


def main() -> int:
    parser = argument_parser(__doc__ or "")
    parser.add_argument("--spack", type=Path, default=Path("/work/spack"))
    parser.add_argument("--cache", type=Path, default=FIXTURES / "buildcache" / "signed")
    parser.add_argument("--roots", default=ROOTS)
    parser.add_argument(
        "--key",
        type=Path,
        default=FIXTURES / "keys" / "ocibuild-fixtures.pub",
        help="the key the cache's specs are signed with ('' for an unsigned cache)",
    )
    parser.add_argument("--padding", type=int, default=64)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    spack = args.spack / "bin" / "spack"
    python = spack_python(args.spack)
    if not spack.exists() or python is None:
        print(f"skipped: no Spack at {args.spack} or no python3 with clingo (pip install clingo)")
        return 0
    if not have("pigz"):
        print("skipped: pigz is not installed")
        return 0
    work = workdir(args.workdir, "spack-bench-")
    cache = args.cache.resolve()
    size = sum(p.stat().st_size for p in cache.rglob("*.spack"))
    print(f"build cache {cache}: {size / 1e6:.1f} MB of tarballs; roots {args.roots}")
    timings: list[Timing] = []

    root = Path("/opt/spack-bench")
    trust = f"keys: [{args.key}]" if str(args.key) else "trusted: true"
    recipe = work / "spack.yaml"
    roots = ", ".join(args.roots.split())
    recipe.write_text(
        RECIPE.format(cache=cache, roots=roots, trust=trust, root=root, padding=args.padding)
    )
    env = {
        **os.environ,
        "OCIBUILD_CACHE": str(fresh(work, "ocibuild-cache")),
        "PYTHONPATH": str(PROJECT),
    }
    store = fresh(work, "store")
    timings.append(
        timed(
            "ocibuild (fresh cache and store)",
            f"{sys.executable} -m ocibuild --store {store} -q recipe {recipe}",
            env=env,
        )
    )

    # Spack: install into a fresh tree (padded as ocibuild's), then one gzip layer of it
    if root.exists():
        shutil.rmtree(root)
    spack_env = spack_scope(work, cache, root, args.padding)
    hashes = " ".join(f"/{h}" for h in root_hashes(cache, args.roots))
    install = f"{python} {spack} install --cache-only --no-check-signature {hashes}"
    layer = f"tar -C {root} -cf - . | pigz | sha256sum"
    timings.append(
        timed(
            "spack install --cache-only + tar | pigz",
            f"{install} >/dev/null && {layer}",
            env=spack_env,
        )
    )
    shutil.rmtree(root, ignore_errors=True)
    print(table(timings, "spack install --cache-only + tar | pigz"))
    if not have("docker-registry"):
        print("spack buildcache push --base-image: not timed (no docker-registry here)")
    else:
        print("spack buildcache push --base-image: not timed (needs a base image in a registry)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
