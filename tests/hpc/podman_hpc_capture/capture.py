"""Regenerate the captures beside this file: what the real podman-hpc 1.2.2 `load` + `migrate`
leave in podman's graph root and in the squash store, for the demo image and for
whiteout-user.yaml (docs/podman-hpc-layout.md reads them). Run as root on a machine set up by
scripts/setup-test-env (podman-hpc from PyPI, inotify-tools, squashfuse, fuse-overlayfs):

    python3 tests/hpc/podman_hpc_capture/capture.py [WORKDIR]

Writes only small text files here (no squash files, no layers); WORKDIR (default a temp dir)
keeps the stores for a look afterwards. Timestamps, inode numbers and overlay link names
(random) differ between runs; ids, digests and the layout do not.
"""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO))

from testsupport.podman_hpc import PodmanHPC, build_static_mksquashfs, remove_tree  # noqa: E402

IMAGES = {
    "demo": (REPO / "recipes/demo.yaml", "localhost/ocibuild/demo-art_1_18_03_e9-prof:latest"),
    "whiteout-user": (HERE / "whiteout-user.yaml", "localhost/ocibuild/phpc-whiteout-user:1"),
}
RUNS = {
    "demo": [[], ["art"]],
    "whiteout-user": [[]],
}


def sh(*args: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, **kw)


def write(name: str, text: str) -> None:
    (HERE / name).write_text(text if text.endswith("\n") or not text else text + "\n")


def result(proc: subprocess.CompletedProcess[str]) -> str:
    return f"$ {' '.join(proc.args)}\n# exit {proc.returncode}\n# stdout:\n{proc.stdout}# stderr:\n{proc.stderr}"


def find_ls(root: Path) -> str:
    """`find -ls` without inode numbers and times; layer contents (overlay/*/diff/*) left out."""
    out = sh(
        "find",
        ".",
        "-path",
        "./overlay/*/diff/*",
        "-prune",
        "-o",
        "-printf",
        "%M %u:%g %s %p %y %l\n",
        cwd=root,
    ).stdout
    lines = []
    for line in sorted(out.splitlines(), key=lambda s: s.split(" ", 3)[3]):
        mode, owner, size, rest = line.split(" ", 3)
        lines.append(f"{mode} {owner} {size:>8} {rest}")
    return "\n".join(lines)


def pretty(path: Path) -> str:
    return json.dumps(json.loads(path.read_text()), indent=2, sort_keys=False)


def tar_split_lines(path: Path, limit: int | None = None) -> str:
    """The tar-split .gz as JSON lines, each segment's payload decoded for reading."""
    out = []
    with gzip.open(path, "rt") as f:
        for i, line in enumerate(f):
            if limit is not None and i >= limit:
                out.append(f"... ({path.name}: truncated at {limit} lines)")
                break
            rec = json.loads(line)
            note = ""
            if rec.get("type") == 2 and rec.get("payload"):
                raw = base64.b64decode(rec["payload"])
                note = f"  # segment {len(raw)} bytes" + (
                    f", header of {raw[:100].rstrip(bytes(1)).decode(errors='replace')!r}"
                    if len(raw) >= 512 and raw[257:262] == b"ustar"
                    else ""
                )
            elif rec.get("type") == 1 and rec.get("payload"):
                note = f"  # crc64 {base64.b64decode(rec['payload']).hex()}"
            out.append(line.rstrip("\n") + note)
    return "\n".join(out)


def store_dump(
    store: Path, prefix: str, tar_split_limit: int | None, skip: frozenset[str] = frozenset()
) -> frozenset[str]:
    """Write PREFIX.{find.txt,images.json,layers.json,records.txt,tar-split.txt}; tar-split
    files named in `skip` (dumped before) are left out. Returns the tar-split names seen."""
    write(f"{prefix}.find.txt", find_ls(store))
    for rel in ("overlay-images/images.json", "overlay-layers/layers.json"):
        p = store / rel
        if p.exists():
            write(f"{prefix}.{p.name}", pretty(p))
    lines = []
    for d in sorted((store / "overlay-images").glob("*/")):
        if not d.is_dir():
            continue
        lines.append(f"== overlay-images/{d.name}/")
        for f in sorted(d.iterdir()):
            key = base64.b64decode(f.name[1:]).decode() if f.name.startswith("=") else f.name
            lines.append(f"{f.name}\n    key: {key}\n    size: {f.stat().st_size}")
            if f.stat().st_size and key == "manifest":
                lines.append("    content: " + f.read_text())
    for f in sorted((store / "overlay").glob("*/link")):
        lines.append(f"overlay/{f.parent.name}/link: {f.read_text()!r}")
        if (f.parent / "lower").exists():
            lines.append(f"overlay/{f.parent.name}/lower: {(f.parent / 'lower').read_text()!r}")
    for f in sorted((store / "overlay/l").iterdir()):
        lines.append(
            f"overlay/l/{f.name} -> {f.readlink()}"
            if f.is_symlink()
            else f"overlay/l/{f.name} (file)"
        )
    write(f"{prefix}.records.txt", "\n".join(lines))
    splits = sorted((store / "overlay-layers").glob("*.tar-split.gz"))
    write(
        f"{prefix}.tar-split.txt",
        "\n\n".join(
            f"== {p.name}\n{tar_split_lines(p, tar_split_limit)}"
            for p in splits
            if p.name not in skip
        )
        or "(no tar-split files but those dumped before)",
    )
    return frozenset(p.name for p in splits)


def main() -> None:
    work = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="phpc-capture-"))
    )
    remove_tree(work)
    work.mkdir(parents=True)
    ocibuild = [sys.executable, "-m", "ocibuild", "--store", str(work / "store")]
    archives = {}
    for name, (recipe, ref) in IMAGES.items():
        subprocess.run(
            [*ocibuild, "recipe", str(recipe)], check=True, cwd=REPO, capture_output=True
        )
        archives[name] = work / f"{name}.tar"
        subprocess.run(
            [*ocibuild, "export", ref, "--format", "oci-archive", "-o", str(archives[name])],
            check=True,
            cwd=REPO,
            capture_output=True,
        )

    hpc = PodmanHPC.create(work / "phpc", mksquashfs=build_static_mksquashfs())
    log = []
    try:
        for name in IMAGES:
            log.append(result(hpc("load", "-i", str(archives[name]))))
        # the graph root's tar-split files are the ones migrate copies: dumped from the squash store
        store_dump(hpc.graph_root, "graph-after-load", tar_split_limit=0)
        (HERE / "graph-after-load.tar-split.txt").unlink()

        seen: frozenset[str] = frozenset()
        for name, (_, ref) in IMAGES.items():
            log.append(result(hpc("migrate", ref)))
            seen = store_dump(
                hpc.squash_dir,
                f"squash-after-migrate-{name}",
                tar_split_limit=24 if name == "demo" else None,
                skip=seen,
            )
        write(
            "squash-files.txt",
            "\n\n".join(
                f"== overlay/l/{p.name} ({p.stat().st_size} bytes)\n"
                + sh("unsquashfs", "-s", str(p)).stdout
                + "\n".join(
                    line
                    for line in sh("unsquashfs", "-lln", str(p)).stdout.splitlines()
                    if "/products/" not in line
                )
                for p in sorted((hpc.squash_dir / "overlay/l").glob("*.squash"))
            ),
        )

        log.append(result(hpc("images", check=False)))
        log.append(result(hpc("images", "--format", "json", check=False)))
        for name, (_, ref) in IMAGES.items():
            for cmd in RUNS[name]:
                log.append(result(hpc("run", "--rm", "--network", "none", ref, *cmd, check=False)))
        # rmi acts on the graph root only; the squashed (R/O) copy stays
        for _, ref in IMAGES.values():
            log.append(result(hpc("rmi", ref, check=False)))
        log.append(result(hpc("images", check=False)))
        for name, (_, ref) in IMAGES.items():
            for cmd in RUNS[name]:
                log.append(result(hpc("run", "--rm", "--network", "none", ref, *cmd, check=False)))
        log.append(result(hpc("rmi", IMAGES["demo"][1], check=False)))
        log.append(result(hpc("rmsqi", IMAGES["whiteout-user"][1], check=False)))
        store_dump(
            hpc.squash_dir, "squash-after-rmsqi-whiteout-user", tar_split_limit=None, skip=seen
        )
        log.append(result(hpc("images", check=False)))
        log.append(
            result(hpc("run", "--rm", "--network", "none", IMAGES["demo"][1], "art", check=False))
        )
    finally:
        hpc.cleanup()
    write("commands.txt", "\n".join(log).replace(str(work), "$WORK"))
    print(f"captures in {HERE}; stores in {work}")


if __name__ == "__main__":
    main()
