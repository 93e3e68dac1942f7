"""Push: ocibuild against `skopeo copy` of the same image to the same kind of registry, same run.

Builds the deterministic payload (bench/payload.py, ~1 GB in ~12,000 files by default) into a
one-layer image with `ocibuild recipe`, starts local registries with registry/start.py (Debian's
docker-registry, plain HTTP, a fresh one for every timed push so that no tool finds blobs the
other left), and times (wall clock, peak memory of the process tree):

  skopeo copy oci:STORE:REF docker://...   the reference
  ocibuild push REF --to ...               the same image, same registry setup
  ocibuild push (again, unchanged)         the re-push: HEAD per blob, then the manifest

The re-push is also timed inside one process (`push_image`), without Python's start-up.
Targets: ocibuild push at most 0.7x skopeo's time; re-push of an unchanged image under 0.3 s
(with the CLI's start-up).

    python3 bench/push_bench.py [--size-mb 1000] [--files 12000] [--repeat 3] [--workdir DIR]
    python3 bench/push_bench.py --size-mb 250,500,1000,2000        # a row per size
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    Timing,
    add_payload_arguments,
    argument_parser,
    cpu_timed,
    files_for,
    have,
    payload_recipe,
    registry,
    series_table,
    table,
    timed,
    workdir,
)

ROOT = Path(__file__).resolve().parent.parent
REF = "localhost/bench/payload:latest"  # the image of PAYLOAD_RECIPE


def in_process_repush(store_path: Path, target: str) -> float:
    from ocibuild.progress import silent
    from ocibuild.remote import RemoteOptions, push_image
    from ocibuild.store import Store

    store = Store.open(store_path)
    started = time.monotonic()
    result = push_image(store, REF, RemoteOptions(insecure=True), silent, to=target)
    seconds = time.monotonic() - started
    if result.uploaded or result.mounted:
        raise SystemExit(f"re-push uploaded {len(result.uploaded)} blobs: the image changed?")
    return seconds


def measure(
    work: Path, size_mb: int, files: int, repeat: int, layers: int
) -> tuple[list[Timing], float]:
    """skopeo and ocibuild pushes of the payload image of `size_mb` in `layers` layers, best of
    `repeat` interleaved rounds; and the in-process re-push time."""
    recipe = payload_recipe(work, size_mb, files, layers)
    store = work / "store"
    ocibuild = f"{sys.executable} -m ocibuild --store {store} -q"
    # as installed: with compiled bytecode (written by the untimed build, outside the tree)
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(work / "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    build = timed("ocibuild recipe (setup)", f"{ocibuild} recipe {recipe}", cwd=ROOT, env=env)
    layer = max(path.stat().st_size for path in (store / "blobs" / "sha256").iterdir())
    print(f"image built in {build.seconds:.1f} s; largest blob {layer / 1e6:.0f} MB", flush=True)

    best: dict[str, Timing] = {}
    cpu: dict[str, float] = {}  # the best round's CPU seconds of the tool and of the registry
    repush_in_process = float("inf")

    def push(name: str, command: str, registry_cpu: Callable[[], float]) -> Timing:
        before = registry_cpu()
        timing, tool_cpu = cpu_timed(name, command, env=env)
        if name not in best or timing.seconds < best[name].seconds:
            best[name] = timing
            cpu[name] = tool_cpu
            cpu[f"{name}: registry"] = registry_cpu() - before
        return timing

    for round_ in range(repeat):
        with registry(work, f"skopeo-{round_}") as (host, registry_cpu):
            skopeo = push(
                "skopeo copy",
                f"skopeo copy -q --dest-tls-verify=false oci:{store}:{REF} docker://{host}/bench/payload:1",
                registry_cpu,
            )
        with registry(work, f"ocibuild-{round_}") as (host, registry_cpu):
            target = f"{host}/bench/payload:1"
            command = f"cd {ROOT} && {ocibuild} push {REF} --to {target} --insecure"
            ours = push("ocibuild push", command, registry_cpu)
            push("ocibuild push (re-push, CLI)", command, registry_cpu)
            repush_in_process = min(repush_in_process, in_process_repush(store, target))
        print(
            f"round {round_ + 1}: skopeo {skopeo.seconds:.2f} s, ocibuild {ours.seconds:.2f} s; "
            f"load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    for name in ("skopeo copy", "ocibuild push"):
        print(f"{name}: {cpu[name]:.2f} CPU s, the registry {cpu[name + ': registry']:.2f} CPU s")
    return list(best.values()), repush_in_process


def main() -> None:
    parser = argument_parser(__doc__ or "")
    add_payload_arguments(parser)
    parser.add_argument(
        "--repeat", type=int, default=3, help="Interleaved rounds; the best counts [default: 3]."
    )
    parser.add_argument(
        "--workdir", type=Path, help="Where to put the payload, store and registries."
    )
    parser.add_argument(
        "--layers",
        type=int,
        default=1,
        help="Layers of the image: the payload's 30 product directories dealt round-robin "
        "[default: 1]. One big blob is bound by the registry's serial ingest of it.",
    )
    args = parser.parse_args()
    if not have("skopeo"):
        raise SystemExit("skopeo is not installed (Debian package skopeo)")

    work = workdir(args.workdir, "ocibuild-push-bench-")
    rows: list[tuple[int, dict[str, Timing]]] = []
    for size in args.size_mb:
        size_work = work if len(args.size_mb) == 1 else work / f"{size}mb"
        timings, repush_in_process = measure(
            size_work, size, files_for(size, args.files), args.repeat, args.layers
        )
        best = {t.name: t for t in timings}
        print()
        print(
            f"payload: {size} MB in {args.layers} layer(s); best of {args.repeat} interleaved rounds"
        )
        print(table(timings, "skopeo copy"))
        ratio = best["ocibuild push"].seconds / best["skopeo copy"].seconds
        print(
            f"push: ocibuild / skopeo = {ratio:.2f} (target <= 0.7): {'ok' if ratio <= 0.7 else 'MISSED'}"
        )
        print(f"re-push of the unchanged image: {repush_in_process:.3f} s in process, "
              f"{best['ocibuild push (re-push, CLI)'].seconds:.2f} s with the CLI's start-up (target < 0.3)")  # fmt: skip
        rows.append((size, best))
    if len(rows) > 1:
        print()
        print(series_table(rows, ["ocibuild push", "skopeo copy"]))


if __name__ == "__main__":
    main()
