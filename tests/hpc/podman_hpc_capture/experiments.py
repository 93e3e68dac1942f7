"""Re-run the experiments of docs/podman-hpc-layout.md ("What podman checks"): stores written by
handmade_store.py, one record left out or damaged at a time, each tried with a fresh graph root
(`podman-hpc images`, `podman-hpc run`). Writes experiments.txt beside this file.

    python3 tests/hpc/podman_hpc_capture/experiments.py [WORKDIR]
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO))

from testsupport.podman_hpc import PodmanHPC, remove_tree  # noqa: E402

DEMO = "localhost/ocibuild/demo-art_1_18_03_e9-prof:latest"
WU = "localhost/ocibuild/phpc-whiteout-user:1"
WU_ENV = "localhost/ocibuild/phpc-whiteout-user-env:1"  # the same layers, another config


def build(work: Path) -> Path:
    store = work / "store"
    ocibuild = [sys.executable, "-m", "ocibuild", "--store", str(store)]
    env_recipe = work / "whiteout-user-env.yaml"
    env_recipe.write_text(
        (HERE / "whiteout-user.yaml")
        .read_text()
        .replace("phpc-whiteout-user:1", "phpc-whiteout-user-env:1")
        .replace("../../../recipes/demo-shell", str(REPO / "recipes/demo-shell"))
        .replace("    cmd:", '    env: {EXTRA: "1"}\n    cmd:')
    )
    for recipe in (REPO / "recipes/demo.yaml", HERE / "whiteout-user.yaml", env_recipe):
        subprocess.run(
            [*ocibuild, "recipe", str(recipe)], check=True, cwd=REPO, capture_output=True
        )
    return store


def handmade(store: Path, hpc: PodmanHPC, ref: str, *args: str) -> None:
    subprocess.run(
        [
            sys.executable,
            str(HERE / "handmade_store.py"),
            str(store),
            ref,
            str(hpc.squash_dir),
            *args,
        ],
        check=True,
        cwd=REPO,
        capture_output=True,
    )


def probe(hpc: PodmanHPC, ref: str = DEMO, *cmd: str) -> str:
    cmd = cmd or ("art",)
    images = hpc("images", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}", check=False)
    run = hpc("run", "--rm", "--network", "none", ref, *cmd, check=False)
    hpc.cleanup()

    def tail(proc: subprocess.CompletedProcess[str]) -> str:
        if proc.returncode == 0:
            return " | ".join(proc.stdout.strip().splitlines()[:1])
        return proc.stderr.strip().splitlines()[-1][-220:] if proc.stderr.strip() else ""

    return (
        f"  images: exit {images.returncode}: {tail(images)}\n"
        f"  run {ref} {' '.join(cmd)}: exit {run.returncode}: {tail(run)}"
    )


def top_link(sq: Path, image_prefix: str) -> tuple[str, str]:
    images = json.loads((sq / "overlay-images/images.json").read_text())
    top = next(i for i in images if i["id"].startswith(image_prefix))["layer"]
    return top, (sq / "overlay" / top / "link").read_text()


def truncate(rel: str, n: int) -> Callable[[Path], None]:
    def f(sq: Path) -> None:
        p = sq / rel
        p.write_bytes(p.read_bytes()[:n])

    return f


def rm_config(sq: Path) -> None:
    d = next(p for p in (sq / "overlay-images").iterdir() if p.name.startswith("3c0e"))
    (d / ("=" + base64.b64encode(f"sha256:{d.name}".encode()).decode())).unlink()


def drop_top_layer(sq: Path) -> None:
    top, _ = top_link(sq, "3c0e")
    p = sq / "overlay-layers/layers.json"
    p.write_text(json.dumps([rec for rec in json.loads(p.read_text()) if rec["id"] != top]))


def no_squash(sq: Path) -> None:
    _, link = top_link(sq, "3c0e")
    (sq / "overlay/l" / f"{link}.squash").unlink()


def half_squash(sq: Path) -> None:
    _, link = top_link(sq, "3c0e")
    p = sq / "overlay/l" / f"{link}.squash"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def same_name(sq: Path) -> None:
    p = sq / "overlay-images/images.json"
    images = json.loads(p.read_text())
    for image in images:
        image["names"] = [DEMO]
    p.write_text(json.dumps(images))


def drop_image_keep_layers(sq: Path) -> None:
    p = sq / "overlay-images/images.json"
    p.write_text(json.dumps([i for i in json.loads(p.read_text()) if i["id"].startswith("3c0e")]))


OMISSIONS = [
    [],
    ["--omit", "tar-split"],
    ["--omit", "uidset"],
    ["--omit", "lock-files"],
    ["--omit", "big-data-names"],
    ["--omit", "sizes"],
    ["--omit", "digests"],
    ["--omit", "compressed-digest"],
    ["--omit", "metadata"],
    ["--omit", "names-history"],
    ["--omit", "created"],
    ["--omit", "layer-created"],
    ["--omit", "signature"],
    ["--omit", "manifest-key"],
    ["--omit", "manifest-digest-key"],
    ["--omit", "manifest-digest"],
    ["--omit", "parents"],
    ["--omit", "lower-layers"],
    ["--omit", "link-symlink"],
    ["--omit", "diff-dir"],
    ["--lower-files"],
    ["--lower-files", "--squash-at", "base"],
    ["--omit", "tar-split", "uidset", "lock-files", "big-data-names", "sizes", "compressed-digest", "metadata",
     "names-history", "created", "layer-created", "signature", "manifest-digest-key",
     "manifest-digest", "lower-layers"],
]  # fmt: skip

DAMAGE: dict[str, Callable[[Path], None]] = {
    "config big data file missing (demo)": rm_config,
    "images.json cut at byte 300": truncate("overlay-images/images.json", 300),
    "layers.json cut at byte 300": truncate("overlay-layers/layers.json", 300),
    "images.json and layers.json empty": lambda sq: (
        [
            (sq / r).write_text("")
            for r in ("overlay-images/images.json", "overlay-layers/layers.json")
        ]
        and None
    ),
    "top layer record missing (demo)": drop_top_layer,
    "squash file missing (demo)": no_squash,
    "squash file cut in half (demo)": half_squash,
    "one name on two images": same_name,
    "image records dropped, their layers, dirs and squash kept (whiteout-user)": drop_image_keep_layers,
}


def main() -> None:
    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="phpc-exp-"))
    remove_tree(work)
    work.mkdir(parents=True)
    store = build(work)
    out = []

    def fresh(refs: tuple[str, ...], *args: str) -> PodmanHPC:
        root = work / "phpc"
        remove_tree(root)
        hpc = PodmanHPC.create(root)
        for ref in refs:
            handmade(store, hpc, ref, *args)
        return hpc

    out.append("# Records left out (handmade_store.py flags), demo image only")
    for args in OMISSIONS:
        hpc = fresh((DEMO,), *args)
        out.append(f"{' '.join(args) or '(complete store)'}\n{probe(hpc)}")
    out.append("\n# Damage, store holding the demo and whiteout-user")
    for name, damage in DAMAGE.items():
        hpc = fresh((DEMO, WU))
        damage(hpc.squash_dir)
        out.append(f"{name}\n{probe(hpc)}\n{probe(hpc, WU, 'id')}")
    out.append(
        "\n# rmsqi of an image whose top layer another image shares (same layers, other Env)"
    )
    hpc = fresh((DEMO, WU, WU_ENV))
    out.append(f"before\n{probe(hpc, WU_ENV, 'sh', '-c', 'echo EXTRA=$EXTRA')}")
    rm = hpc("rmsqi", WU, check=False)
    out.append(f"podman-hpc rmsqi {WU}: exit {rm.returncode}")
    out.append(f"after\n{probe(hpc, WU_ENV, 'sh', '-c', 'echo EXTRA=$EXTRA')}")
    hpc.cleanup()

    out.append(
        "\n# Locks: a writer holding a POSIX (fcntl) write lock for 2 s; podman's readers wait"
    )
    hpc = fresh((DEMO,))
    for kind, lock_call in (("layers", "lockf"), ("images", "lockf"), ("layers", "flock")):
        fd = os.open(hpc.squash_dir / f"overlay-{kind}/{kind}.lock", os.O_RDWR)
        if lock_call == "lockf":
            fcntl.lockf(fd, fcntl.LOCK_EX)
        else:
            fcntl.flock(fd, fcntl.LOCK_EX)
        timer = threading.Timer(2, os.close, (fd,))
        timer.start()
        t0 = time.monotonic()
        images = hpc("images", "--format", "{{.ID}}", check=False)
        took = time.monotonic() - t0
        timer.join()
        how = "fcntl.lockf (POSIX)" if lock_call == "lockf" else "fcntl.flock (BSD)"
        out.append(
            f"{how} LOCK_EX on {kind}.lock for 2 s: podman-hpc images took {took:.1f} s, exit {images.returncode}"
        )
    (HERE / "experiments.txt").write_text("\n".join(out).replace(str(work), "$WORK") + "\n")
    print((HERE / "experiments.txt").read_text())


if __name__ == "__main__":
    main()
