"""Python wheels -> one compressed, hashed layer: ocibuild against the host installers, same run.

The wheel set is the scientific stack (numpy, awkward, uproot, hist, coffea and everything they
need: 83 wheels, 0.8 GB installed), from the test wheel cache `scripts/fetch-test-wheels` fills,
read as a local directory of wheels by every tool. Every download cache is warm: each tool runs
once before it is timed. Times (wall clock, peak memory of the whole process tree):

  ocibuild recipe --no-cache          the `wheels` layer: resolved from the lock, streamed from
                                      the cached wheels into tar, gzip and sha256 (+ pycs or not)
  uv pip install --target + tar|pigz  what a user does today: install on the host, then pack
                                      the tree (`tar --sort=name | pigz -6`) and sha256 it
  pip install --target + tar|pigz     the same with Debian's pip (which compiles pycs)
  installer (PyPA) to disk + tar|pigz `installer`'s own destination writing the tree, then packed:
                                      what a design around `installer.install` would cost

Target on a 2-core machine: ocibuild at most 0.5x the uv path, peak memory under 300 MB.

    python3 bench/wheels_bench.py [--wheels DIR] [--workdir DIR]
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Timing, argument_parser, fresh, have, table, timed, workdir

STACK = ["numpy", "awkward", "uproot", "hist", "coffea"]
RECIPE = """\
source_date_epoch: 1451606400
images:
  - name: localhost/bench/wheels:latest
    layers:
      - wheels:
          requirements: [{requirements}]
          find_links: [{wheels}]
          no_index: true
          compile: {compile}
          python: {{version: "3.11.2", platform: manylinux_2_36_x86_64, interpreter: /usr/bin/python3}}
"""
INSTALLER_SCRIPT = """\
import sys, sysconfig
from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.sources import WheelFile
target, wheels = sys.argv[1], sys.argv[2:]
scheme = {{name: target for name in ("purelib", "platlib")}}
scheme.update(scripts=target + "/bin", headers=target + "/include", data=target)
destination = SchemeDictionaryDestination(scheme, "/usr/bin/python3", "posix", bytecode_optimization_levels={levels})
for wheel in wheels:
    with WheelFile.open(wheel) as source:
        install(source, destination, {{"INSTALLER": b"installer\\n"}})
"""


def pack(tree: Path, out: Path) -> str:
    return f"tar --sort=name -C {tree} -cf - . | pigz -6 > {out} && sha256sum {out} > /dev/null"


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument(
        "--wheels",
        type=Path,
        default=Path(os.environ.get("OCIBUILD_TEST_WHEELS", "/var/cache/ocibuild/test-wheels")),
        help="Directory of the wheels [default: $OCIBUILD_TEST_WHEELS or the test cache].",
    )
    parser.add_argument("--workdir", type=Path, help="Outputs [default: a temp dir].")
    args = parser.parse_args()
    for tool in ("uv", "pigz", "tar"):
        if not have(tool):
            raise SystemExit(f"{tool} is needed (uv: pip install uv; pigz: apt-get install pigz)")
    if not list(args.wheels.glob("coffea-*.whl")):
        raise SystemExit(f"no wheels in {args.wheels}: run scripts/fetch-test-wheels")
    work = workdir(args.workdir, "ocibuild-wheels-bench-")
    python = sys.executable
    env = {
        **os.environ,
        "PIP_CONFIG_FILE": os.devnull,
        "UV_NO_CONFIG": "1",
        "UV_CACHE_DIR": str(work / "uv-cache"),
        "OCIBUILD_CACHE": str(work / "ocibuild-cache"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    for name in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        env.pop(name, None)
    requirements = " ".join(STACK)
    timings: list[Timing] = []

    def run(name: str, command: str, untimed: str = "") -> Timing:
        if untimed:
            timed(f"{name} (warm-up)", untimed, env=env)
        timing = timed(name, command, env=env)
        timings.append(timing)
        return timing

    ours: dict[bool, Timing] = {}
    for compile_ in (True, False):
        recipe = work / f"wheels-{'pyc' if compile_ else 'nopyc'}.yaml"
        recipe.write_text(
            RECIPE.format(
                requirements=", ".join(STACK), wheels=args.wheels, compile=str(compile_).lower()
            )
        )
        build = f"{python} -m ocibuild -q --store {work / 'store'} recipe --no-cache {recipe}"
        ours[compile_] = run(
            f"ocibuild wheels layer ({'with' if compile_ else 'no'} pycs)", build, untimed=build
        )

    uv = shutil.which("uv")
    install = (
        f"{uv} pip install -q --python /usr/bin/python3 --no-index --find-links {args.wheels} "
        f"--target {work / 'uv-tree'} {requirements}"
    )
    clean = f"rm -rf {work / 'uv-tree'}"
    uv_path = run(
        "uv pip install --target + tar|pigz + sha256",
        f"{clean} && {install} && {pack(work / 'uv-tree', work / 'uv.tgz')}",
        untimed=f"{clean} && {install}",
    )
    uv_pyc = run(
        "uv ... --compile-bytecode + tar|pigz + sha256",
        f"{clean} && {install} --compile-bytecode && {pack(work / 'uv-tree', work / 'uv.tgz')}",
    )
    pip_tree = fresh(work, "pip-tree")
    run(
        "pip install --target + tar|pigz + sha256",
        f"rm -rf {pip_tree} && /usr/bin/python3 -m pip install -q --no-index --find-links "
        f"{args.wheels} --target {pip_tree} {requirements} && {pack(pip_tree, work / 'pip.tgz')}",
    )
    wheel_files = " ".join(
        str(args.wheels / line.split()[0]) for line in _resolved(work / "wheels-pyc.yaml.lock")
    )
    script = work / "installer_all.py"
    script.write_text(INSTALLER_SCRIPT.format(levels="()"))
    tree = work / "installer-tree"
    run(
        "installer (PyPA) to disk + tar|pigz + sha256",
        f"rm -rf {tree} && {python} {script} {tree} {wheel_files} && {pack(tree, work / 'i.tgz')}",
    )
    print()
    print(
        f"{len(wheel_files.split())} wheels from {args.wheels}; {len(os.sched_getaffinity(0))} cores"
    )
    print(table(timings, uv_path.name))
    print()
    ratio = ours[False].seconds / uv_path.seconds
    print(
        f"ocibuild (no pycs) vs the uv path: {ratio:.2f}x the time (target <= 0.5x): "
        f"{'ok' if ratio <= 0.5 else 'MISSED'}"
    )
    print(
        f"ocibuild (unchecked-hash pycs) vs uv --compile-bytecode path: "
        f"{ours[True].seconds / uv_pyc.seconds:.2f}x; vs the uv path without pycs: "
        f"{ours[True].seconds / uv_path.seconds:.2f}x"
    )
    peak = max(t.peak_mb for t in ours.values())
    print(f"ocibuild peak memory: {peak:.0f} MB (target < 300 MB)")


def _resolved(lock: Path) -> list[str]:
    import json

    data = json.loads(lock.read_text())
    return [p["filename"] for r in data["resolved"].values() for p in r]


if __name__ == "__main__":
    main()
