"""Spack packages into an image: ocibuild's `spack` source against Spack's own ways, same build
cache, same run, at one or more scales (a set of roots each).

  ocibuild               ocibuild recipe: the index, the signed spec files, parallel downloads,
                         tarballs streamed and relocated into layers (layering: auto), gzip;
                         fresh download cache and store
  spack install          `spack install --cache-only` of the same roots into a fresh install tree
                         (padded as ocibuild's), signatures checked against the same key
  tar | pigz             then the tree as one layer: `tar -c | pigz | sha256sum` (what a
                         Dockerfile's RUN + export amounts to)
  ocibuild push          ocibuild's image pushed to a fresh HTTPS registry on 127.0.0.1
  spack --base-image     `spack buildcache push --base-image BASE --tag bench` of the tree Spack
                         installed, to another fresh HTTPS registry on 127.0.0.1 holding BASE (a
                         one-file image ocibuild pushed there, not timed). Spack speaks only
                         HTTPS to registries (spack/oci/image.py builds https:// URLs); it
                         trusts the registry's self-signed certificate through SSL_CERT_FILE
                         (config:ssl_certs). Needs docker-registry and openssl.

The build cache is the fixtures' (tests/spack/fixtures/buildcache/signed, made by the real Spack)
unless --cache names another: scripts/make-spack-bench-cache makes a large one (about 3 GB
installed, from slices of this machine's /usr). Each --roots gives a scale, a row. It needs the
Spack checkout the cache was made with (--spack, default /work/spack) and a python3 with clingo;
without them it says so and stops: it is a benchmark, not a test. Target: ocibuild at most 0.3x
`spack install` + tar | pigz, memory flat.

    python3 bench/spack_bench.py [--spack /work/spack]
    W=/tmp/ocibuild-spack-bench; T=ocibuild-bench-tree
    python3 bench/spack_bench.py --cache $W/buildcache --key $W/bench-key.pub \
        --roots "$T@python $T@gcc" --roots "$T@python $T@gcc $T@libs" \
        --roots "$T@python $T@gcc $T@libs $T@bin $T@jvm $T@share"
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import ssl
import stat
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import (
    Timing,
    argument_parser,
    compiled,
    fresh,
    have,
    median,
    registry,
    table,
    timed,
    workdir,
)

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
REF = "localhost/bench/spack:latest"  # the image of RECIPE
BASE_REF = "localhost/bench/base:latest"
BASE_RECIPE = f"""\
source_date_epoch: 1451606400
images:
  - name: {BASE_REF}
    layers:
      - files: [{{src: base/etc, dest: /etc}}]
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


def untimed(command: str, env: dict[str, str]) -> None:
    """A shell command the bench needs done but does not time; its output is not shown."""
    subprocess.run(command, shell=True, env=env, check=True, stdout=subprocess.DEVNULL)


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
        f"mirrors::\n  bench:\n    url: file://{cache}\n    signed: true\n    source: false\n"
    )
    # the fixture packages' recipes (namespaces ocibuild and ocibuild_bench)
    (scope / "repos.yaml").write_text(
        f"repos:\n- {PROJECT / 'scripts' / 'spack-fixtures' / 'repo'}\n"
        f"- {PROJECT / 'scripts' / 'spack-bench' / 'repo'}\n"
    )
    return {
        **os.environ,
        "SPACK_USER_CONFIG_PATH": str(scope),
        "SPACK_SYSTEM_CONFIG_PATH": str(made(work, "spack-system")),
        "SPACK_USER_CACHE_PATH": str(made(work, "spack-user-cache")),
        "SPACK_GNUPGHOME": str(made(work, "spack-gnupg")),
    }


def tree_size(root: Path) -> tuple[int, int]:
    """Bytes and number of the regular files under `root`, a hard-linked file once."""
    seen: set[tuple[int, int]] = set()
    size = 0
    for top, _, files in os.walk(root):
        for name in files:
            st = os.lstat(os.path.join(top, name))
            if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                size += st.st_size
    return size, len(seen)


def blobs_size(store: Path) -> int:
    return sum(p.stat().st_size for p in (store / "blobs" / "sha256").iterdir())


def self_signed(work: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key: the registries' and the clients' only CA."""
    cert, key = work / "registry-cert.pem", work / "registry-key.pem"
    subprocess.run(
        [
            *(
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ),
            *("-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        capture_output=True,
        check=True,
    )
    return cert, key


def layers_in(host: str, reference: str, cert: Path) -> int:
    """How many layers the image REPOSITORY:TAG in the registry at `host` has (the first
    platform's, for an index): proof that the push made it, and how Spack layers."""
    context = ssl.create_default_context(cafile=str(cert))
    accept = ", ".join(
        f"application/vnd.{kind}+json"
        for kind in (
            "oci.image.index.v1",
            "oci.image.manifest.v1",
            "docker.distribution.manifest.list.v2",
            "docker.distribution.manifest.v2",
        )
    )
    repository, tag = reference.rsplit(":", 1)
    while True:
        request = urllib.request.Request(
            f"https://{host}/v2/{repository}/manifests/{tag}", headers={"Accept": accept}
        )
        with urllib.request.urlopen(request, context=context) as response:
            manifest = json.load(response)
        if "manifests" not in manifest:
            return len(manifest["layers"])
        tag = manifest["manifests"][0]["digest"]


def both(name: str, first: Timing, then: Timing) -> Timing:
    """Two steps run one after the other: their seconds added, the larger peak."""
    return Timing(name, first.seconds + then.seconds, max(first.peak_mb, then.peak_mb))


@dataclass(frozen=True)
class Row:
    installed: int  # bytes of Spack's installed tree
    files: int
    image: int  # bytes of ocibuild's image blobs
    timings: dict[str, Timing]
    layers: dict[str, int]  # tool -> layers of the image it pushed


OCIBUILD = "ocibuild (fresh cache and store)"
SPACK_TAR = "spack install --cache-only + tar | pigz"
OCIBUILD_PUSH = "ocibuild + push to the registry"
SPACK_BASE = "spack install + push --base-image"


def measure(
    args: argparse.Namespace, python: str, work: Path, roots: str, tls: tuple[Path, Path] | None
) -> Row:
    spack = args.spack / "bin" / "spack"
    cache = args.cache.resolve()
    root = Path("/opt/spack-bench")
    trust = f"keys: [{args.key}]" if str(args.key) else "trusted: true"
    recipe = work / "spack.yaml"
    recipe.write_text(
        RECIPE.format(
            cache=cache,
            roots=", ".join(roots.split()),
            trust=trust,
            root=root,
            padding=args.padding,
        )
    )
    env = {
        **os.environ,
        "OCIBUILD_CACHE": str(fresh(work, "ocibuild-cache")),
        "PYTHONPATH": str(PROJECT),
    }
    store = work / "store"
    ocibuild = f"{sys.executable} -m ocibuild --store {store} -q"

    def ours() -> Timing:
        fresh(work, "store")
        env["OCIBUILD_CACHE"] = str(fresh(work, "ocibuild-cache"))
        return timed(OCIBUILD, f"{ocibuild} recipe {recipe}", env=env)

    # Spack: install into a fresh tree (padded as ocibuild's), then one gzip layer of it
    shutil.rmtree(root, ignore_errors=True)
    spack_env = spack_scope(work, cache, root, args.padding)
    check = "--no-check-signature"
    if str(args.key):
        Path(spack_env["SPACK_GNUPGHOME"]).chmod(0o700)
        subprocess.run(
            [python, spack, "gpg", "trust", args.key],
            env=spack_env,
            check=True,
            capture_output=True,
        )
        check = ""
    hashes = " ".join(f"/{h}" for h in root_hashes(cache, roots))
    # Spack warm, as a user's is: its first command on a fresh misc_cache indexes the package
    # repositories (30-40 s here); an untimed install of the cache's smallest package does that
    smallest = min(cache.rglob("*.spack"), key=lambda p: p.stat().st_size).stem[-32:]
    untimed(f"{python} {spack} install --cache-only {check} /{smallest}", spack_env)

    def theirs() -> tuple[Timing, Timing]:
        shutil.rmtree(root)
        install = timed(
            "spack install --cache-only",
            f"{python} {spack} install --cache-only {check} {hashes} >/dev/null",
            env=spack_env,
        )
        return install, timed("tar | pigz | sha256sum", f"tar -C {root} -cf - . | pigz | sha256sum")

    builds: list[Timing] = []
    installs: list[tuple[Timing, Timing]] = []
    for round_ in range(args.rounds):  # alternating who goes first
        if round_ % 2:
            installs.append(theirs())
        builds.append(ours())
        if not round_ % 2:
            installs.append(theirs())
        if args.rounds > 1:
            (install, layer), build = installs[-1], builds[-1]
            print(
                f"round {round_ + 1}: ocibuild {build.seconds:.2f} s; spack install "
                f"{install.seconds:.2f} s + tar | pigz {layer.seconds:.2f} s",
                flush=True,
            )
    image = blobs_size(store)
    timings = [
        median(OCIBUILD, builds),
        median("spack install --cache-only", [i for i, _ in installs]),
        median("tar | pigz | sha256sum", [t for _, t in installs]),
        median(SPACK_TAR, [both(SPACK_TAR, i, t) for i, t in installs]),
    ]
    installed, files = tree_size(root)

    layers: dict[str, int] = {}
    if tls is not None:
        cert, _ = tls
        push_env = {**env, "SSL_CERT_FILE": str(cert)}
        with registry(work, "ocibuild", tls) as (host, _):
            pushed = timed(
                "ocibuild push",
                f"{ocibuild} push {REF} --to {host}/bench/spack:bench --ca-cert {cert}",
                env=push_env,
            )
            layers["ocibuild"] = layers_in(host, "bench/spack:bench", cert)
        timings += [pushed, both(OCIBUILD_PUSH, timings[0], pushed)]
        # Spack's push wants every dependency installed, build-only ones too (deptype "all" in
        # binary_distribution.specs_to_be_packaged), which `install --cache-only` leaves out
        untimed(
            f"{python} {spack} install --cache-only --include-build-deps {check} {hashes}",
            spack_env,
        )
        with registry(work, "spack", tls) as (host, _):
            base = work / "base"
            (base / "etc").mkdir(parents=True, exist_ok=True)
            (base / "etc" / "bench-base").write_text("the base image of bench/spack_bench.py\n")
            (work / "base.yaml").write_text(BASE_RECIPE)
            base_store = work / "base-store"
            subprocess.run(
                f"{sys.executable} -m ocibuild --store {base_store} -q recipe {work / 'base.yaml'}"
                f" && {sys.executable} -m ocibuild --store {base_store} -q push {BASE_REF}"
                f" --to {host}/bench/base:latest --ca-cert {cert}",
                shell=True,
                cwd=work,
                env=push_env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            base_push = timed(
                "spack buildcache push --base-image",
                f"{python} {spack} buildcache push --unsigned --base-image"
                f" {host}/bench/base:latest --tag bench oci://{host}/bench/spack {hashes}"
                " >/dev/null",
                env={**spack_env, "SSL_CERT_FILE": str(cert)},
            )
            layers["spack --base-image"] = layers_in(host, "bench/spack:bench", cert)
        timings += [base_push, both(SPACK_BASE, timings[1], base_push)]
    shutil.rmtree(root, ignore_errors=True)
    return Row(installed, files, image, {t.name: t for t in timings}, layers)


def summary(rows: list[Row]) -> str:
    """A row per scale: sizes, each way's seconds and peak MB, the ratios."""
    names = [OCIBUILD, SPACK_TAR, OCIBUILD_PUSH, SPACK_BASE]
    short = ["ocibuild", "spack+tar|pigz", "ocibuild+push", "spack+--base-image"]
    header = f"{'installed MB':>12} {'files':>7} {'image MB':>8}"
    for label in short:
        header += f" | {label:>18} s  MB"
    header += " | ocibuild/spack+tar  (ocibuild+push)/(spack+base)"
    lines = [header]
    for row in rows:
        line = f"{row.installed / 1e6:>12.0f} {row.files:>7} {row.image / 1e6:>8.0f}"
        t = row.timings
        for name in names:
            line += f" | {t[name].seconds:>20.1f} {t[name].peak_mb:>3.0f}" if name in t else " | -"
        line += f" | {t[OCIBUILD].seconds / t[SPACK_TAR].seconds:>18.2f}x"
        if OCIBUILD_PUSH in t:
            line += f"  {t[OCIBUILD_PUSH].seconds / t[SPACK_BASE].seconds:>25.2f}x"
        lines.append(line)
    return "\n".join(lines)


def main() -> int:
    parser = argument_parser(__doc__ or "")
    parser.add_argument("--spack", type=Path, default=Path("/work/spack"))
    parser.add_argument("--cache", type=Path, default=FIXTURES / "buildcache" / "signed")
    parser.add_argument(
        "--roots",
        action="append",
        help=f"the roots of one scale, space-separated; repeat for more [default: {ROOTS}]",
    )
    parser.add_argument(
        "--key",
        type=Path,
        default=FIXTURES / "keys" / "ocibuild-fixtures.pub",
        help="the key the cache's specs are signed with ('' for an unsigned cache)",
    )
    parser.add_argument("--padding", type=int, default=64)
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="build and install this many times, alternating who goes first, and report the "
        "medians (a small cache's half-second runs vary by a tenth from run to run) [default: 1]",
    )
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
    compiled(args.spack / "lib" / "spack")
    cache = args.cache.resolve()
    size = sum(p.stat().st_size for p in cache.rglob("*.spack"))
    print(f"build cache {cache}: {size / 1e6:.1f} MB of tarballs; {os.cpu_count()} cores")
    tls = None
    if not (have("docker-registry") and have("openssl")):
        print("spack buildcache push --base-image: not timed (needs docker-registry and openssl)")
    else:
        tls = self_signed(work)
    rows = []
    for roots in args.roots or [ROOTS]:
        load = os.getloadavg()[0]
        row = measure(args, python, work, roots, tls)
        print(f"\nroots {roots}: {row.installed / 1e6:.0f} MB installed in {row.files} files")
        print(f"load average (1 min) before {load:.2f}, after {os.getloadavg()[0]:.2f}")
        if row.layers:
            print("layers pushed: " + ", ".join(f"{k} {v}" for k, v in row.layers.items()))
        print(table(list(row.timings.values()), SPACK_TAR), flush=True)
        rows.append(row)
    print()
    print(summary(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
