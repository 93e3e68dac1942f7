"""`ocibuild export --format squashfs|dir`: the flattened root filesystem, checked against the
real umoci unpack, unsquashfs, squashfuse and ch-run."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ocibuild.errors import ExportError
from ocibuild.layer.entry import Entry, Kind, bytes_entry
from ocibuild.oci import ImageConfig, RuntimeConfig
from ocibuild.store import Store
from ocibuild.store.flatten import ch_environment
from tests.hpc.conftest import (
    ENV,
    HpcImage,
    busybox_entries,
    hpc_layers,
    put_image,
    raw_layer,
    run,
    user_env,
)

ADDED_DIRS = ("ch", "dev", "home", "mnt", "proc", "sys", "tmp")
ADDED_FILES = ("ch/environment", "ch/metadata.json", "etc/group", "etc/hosts", "etc/resolv.conf")


def export(
    image: HpcImage, fmt: str, output: Path, *options: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    ocibuild = shutil.which("ocibuild") or "ocibuild"
    argv = [ocibuild, "--store", str(image.store), "export", image.ref, "--format", fmt]
    return run([*argv, "-o", str(output), *options], env=env)


def exported(image: HpcImage, fmt: str, output: Path, *options: str) -> Path:
    proc = export(image, fmt, output, *options)
    assert proc.returncode == 0, proc.stderr
    return output


@pytest.fixture(scope="module")
def umoci_tree(hpc_image: HpcImage, tmp_path_factory: pytest.TempPathFactory) -> Path:
    bundle = tmp_path_factory.mktemp("umoci") / "bundle"
    proc = run(["umoci", "unpack", "--image", f"{hpc_image.store}:{hpc_image.ref}", str(bundle)])
    assert proc.returncode == 0, proc.stderr
    return bundle / "rootfs"


def tree_listing(root: Path) -> dict[str, tuple[str, int, int, str]]:
    """path -> (mode string, uid, gid, size or link target) of everything under root."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            what = "-> " + os.readlink(path)
        elif stat.S_ISDIR(st.st_mode):
            what = ""
        else:
            what = str(st.st_size)
        out[str(path.relative_to(root))] = (stat.filemode(st.st_mode), st.st_uid, st.st_gid, what)
    return out


def squashfs_listing(image: Path) -> dict[str, tuple[str, int, int, str]]:
    """The same, from `unsquashfs -lln` (numeric owners)."""
    proc = run(["unsquashfs", "-lln", "-d", "", str(image)])
    assert proc.returncode == 0, proc.stderr
    out = {}
    for line in proc.stdout.splitlines():
        fields = line.split(None, 5)
        if len(fields) < 6 or fields[0][0] not in "-dlcbps":
            continue
        mode, owner, size, _date, _time, rest = fields
        path = rest.split(" -> ")[0].lstrip("/")
        if not path:
            continue
        uid, gid = (int(x) for x in owner.split("/"))
        if mode.startswith("l"):
            what = "-> " + rest.split(" -> ", 1)[1]
        elif mode.startswith("d"):
            what = ""
        else:
            what = size
        out[path] = (mode, uid, gid, what)
    return out


def without_added(
    listing: dict[str, tuple[str, int, int, str]],
) -> dict[str, tuple[str, int, int, str]]:
    return {
        p: v
        for p, v in listing.items()
        if p not in ADDED_FILES and p.split("/")[0] not in ADDED_DIRS
    }


def test_squashfs_lists_like_the_umoci_unpack(
    hpc_image: HpcImage, umoci_tree: Path, tmp_path: Path
) -> None:
    image = exported(hpc_image, "squashfs", tmp_path / "image.sqfs")
    listing = squashfs_listing(image)
    assert without_added(listing) == tree_listing(umoci_tree)
    # what the layers say, spelled out: the whiteout, the opaque dir, owners, the hardlink
    assert "old/gone.txt" not in listing and "old/stays.txt" in listing
    assert "opt/tree/top.txt" not in listing
    assert "var/cache/lower.txt" not in listing and "var/cache/sub" not in listing
    assert listing["var/cache/upper.txt"][0] == "-rw-r--r--"
    assert listing["data/hello.txt"][:3] == ("-rw-rw-r--", 2000, 2000)
    assert listing["opt/tree/a/b/deep.txt"][1:] == (1000, 100, "7")
    # and the HPC runtimes' mount points and /ch, added because the image lacks them
    for directory in ADDED_DIRS:
        assert listing[directory][0] == "drwxr-xr-x", directory
    for file in ADDED_FILES:
        assert listing[file][0] == "-rw-r--r--", file
    assert listing["etc/passwd"][3] == "26"  # the image's own is kept
    # contents, extracted by unsquashfs, are the same bytes as umoci's
    out = tmp_path / "extracted"
    assert run(["unsquashfs", "-no-xattrs", "-d", str(out), str(image)]).returncode == 0
    for path in umoci_tree.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert (out / path.relative_to(umoci_tree)).read_bytes() == path.read_bytes(), path
    assert (out / "data/hard.txt").read_text() == "old hello\n"  # its file was replaced above
    assert (out / "data/pair1").stat().st_ino == (out / "data/pair2").stat().st_ino
    assert (out / "ch/environment").read_text() == "".join(f"{e}\n" for e in sorted(ENV))


def test_dir_export_is_the_umoci_unpack_plus_mount_points(
    hpc_image: HpcImage, umoci_tree: Path, tmp_path: Path
) -> None:
    root = exported(hpc_image, "dir", tmp_path / "rootfs")
    listing = tree_listing(root)
    assert without_added(listing) == tree_listing(umoci_tree)
    assert set(ADDED_FILES) <= set(listing)
    assert (root / "data/pair1").stat().st_ino == (root / "data/pair2").stat().st_ino
    assert (root / "data/hard.txt").read_text() == "old hello\n"
    assert (root / "data/hello.txt").read_text() == "new hello\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rootfs"]  # no temporary left


def test_a_hardlink_to_a_file_of_a_lower_layer(busybox: Path, tmp_path: Path) -> None:
    """Other builders write hardlinks to files of lower layers; umoci links them on disk."""
    store = Store.open(tmp_path / "store")
    upper = io.BytesIO()
    with tarfile.open(fileobj=upper, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind in (("data", tarfile.DIRTYPE), ("data/cross", tarfile.LNKTYPE)):
            info = tarfile.TarInfo(name)
            info.type, info.mtime = kind, 1451606400
            info.linkname = "opt/lower.txt" if kind == tarfile.LNKTYPE else ""
            tar.addfile(info)
    lower = [
        *busybox_entries(busybox),
        bytes_entry("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
        bytes_entry("opt/lower.txt", b"lower\n", uid=7),
    ]
    put_image(store, "localhost/test/cross:1", [lower, raw_layer(store, upper.getvalue())])
    image = HpcImage(tmp_path / "store", "localhost/test/cross:1")
    bundle = tmp_path / "bundle"
    proc = run(["umoci", "unpack", "--image", f"{image.store}:{image.ref}", str(bundle)])
    assert proc.returncode == 0, proc.stderr
    squashfs = exported(image, "squashfs", tmp_path / "cross.sqfs")
    assert without_added(squashfs_listing(squashfs)) == tree_listing(bundle / "rootfs")
    root = exported(image, "dir", tmp_path / "rootfs")
    assert (root / "data/cross").stat().st_ino == (root / "opt/lower.txt").stat().st_ino
    assert (root / "data/cross").read_text() == "lower\n"


def test_zstd_layers_flatten_alike(hpc_image: HpcImage, busybox: Path, tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    put_image(store, hpc_image.ref, hpc_layers(busybox), compressions=("zstd", "zstd", "none"))
    zstd_image = HpcImage(tmp_path / "store", hpc_image.ref)
    listing = squashfs_listing(exported(zstd_image, "squashfs", tmp_path / "zstd.sqfs"))
    assert listing == squashfs_listing(exported(hpc_image, "squashfs", tmp_path / "gzip.sqfs"))


def test_the_same_image_gives_the_same_bytes(hpc_image: HpcImage, tmp_path: Path) -> None:
    first = exported(hpc_image, "squashfs", tmp_path / "a.sqfs")
    os.utime(hpc_image.store / "index.json")  # time passes; nothing else may change
    second = exported(hpc_image, "squashfs", tmp_path / "b.sqfs")
    assert first.read_bytes() == second.read_bytes()
    env = {**os.environ, "SOURCE_DATE_EPOCH": "12345"}  # the image decides, not the caller
    proc = export(hpc_image, "squashfs", tmp_path / "c.sqfs", env=env)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "c.sqfs").read_bytes() == first.read_bytes()


def test_all_root_and_every_compression(hpc_image: HpcImage, tmp_path: Path) -> None:
    plain = squashfs_listing(exported(hpc_image, "squashfs", tmp_path / "plain.sqfs"))
    for compression in ("gzip", "xz", "zstd"):
        image = exported(
            hpc_image,
            "squashfs",
            tmp_path / f"{compression}.sqfs",
            "--all-root",
            "--compression",
            compression,
        )
        superblock = run(["unsquashfs", "-s", str(image)]).stdout
        assert f"Compression {compression}" in superblock
        listing = squashfs_listing(image)
        assert {(uid, gid) for _, uid, gid, _ in listing.values()} == {(0, 0)}
        assert {p: (m, w) for p, (m, _, _, w) in listing.items()} == {
            p: (m, w) for p, (m, _, _, w) in plain.items()
        }


def test_lz4_is_read_by_squashfuse(hpc_image: HpcImage, tmp_path: Path) -> None:
    """unsquashfs 4.5.1 cannot read tar2sqfs's lz4 id table when all files have one owner (a
    4-byte block lz4 makes 5 bytes of); squashfuse and the kernel read it."""
    image = exported(
        hpc_image, "squashfs", tmp_path / "lz4.sqfs", "--all-root", "--compression", "lz4"
    )
    with mounted(image, tmp_path / "mnt") as root:
        assert (root / "data/hard.txt").read_text() == "old hello\n"
        assert {(p.lstat().st_uid, p.lstat().st_gid) for p in root.rglob("*")} == {(0, 0)}


def test_xattrs_only_when_asked(busybox: Path, tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    tagged = Entry(
        "data/tagged",
        Kind.FILE,
        size=2,
        open=lambda: io.BytesIO(b"x\n"),
        xattrs={"user.origin": b"ocibuild"},
    )
    put_image(store, "localhost/test/xattr:1", [[*busybox_entries(busybox), tagged]])
    image = HpcImage(tmp_path / "store", "localhost/test/xattr:1")
    without = exported(image, "squashfs", tmp_path / "without.sqfs")
    with_ = exported(image, "squashfs", tmp_path / "with.sqfs", "--xattrs")
    assert "Xattrs are not stored" in run(["unsquashfs", "-s", str(without)]).stdout
    assert "Number of xattr ids 1" in run(["unsquashfs", "-s", str(with_)]).stdout
    assert run(["unsquashfs", "-d", str(tmp_path / "x"), str(with_)]).returncode == 0
    assert os.getxattr(tmp_path / "x/data/tagged", "user.origin") == b"ocibuild"


def test_ch_run_sees_the_frozen_environment(hpc_image: HpcImage, tmp_path: Path) -> None:
    squashfs = exported(hpc_image, "squashfs", tmp_path / "image.sqfs")
    directory = exported(hpc_image, "dir", tmp_path / "image")
    for image in (squashfs, directory):
        proc = run(
            [
                "ch-run",
                "--set-env",
                str(image),
                "--",
                "/bin/busybox",
                "sh",
                "-c",
                "echo $STUDY_VAR; cat /data/hard.txt",
            ],
            env=user_env(),
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "frozen value\nold hello\n", image


@contextmanager
def mounted(image: Path, mountpoint: Path) -> Iterator[Path]:
    mountpoint.mkdir()
    proc = run(["squashfuse", str(image), str(mountpoint)])
    assert proc.returncode == 0, proc.stderr
    try:
        yield mountpoint
    finally:
        subprocess.run(["fusermount3", "-u", str(mountpoint)], check=False)


def test_squashfuse_mounts_and_reads_it(hpc_image: HpcImage, tmp_path: Path) -> None:
    image = exported(hpc_image, "squashfs", tmp_path / "image.sqfs")
    with mounted(image, tmp_path / "mnt") as root:
        assert (root / "opt/tree/link").read_text() == "deeper\n"
        assert (root / "data/hello.txt").read_text() == "new hello\n"
        metadata = json.loads((root / "ch/metadata.json").read_text())
    assert metadata["env"]["STUDY_VAR"] == "frozen value"
    assert metadata["cwd"] == "/opt"
    assert metadata["history"] == [{"created_by": f"test layer {i}"} for i in range(3)]
    assert set(metadata) == {"arch", "arg", "cwd", "env", "history", "labels", "shell", "volumes"}


# -- bad input: one line, exit 1, nothing left behind -------------------------------------------


def assert_failed_cleanly(
    proc: subprocess.CompletedProcess[str], directory: Path, *words: str
) -> None:
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for word in words:
        assert word in lines[0], proc.stderr
    assert [p.name for p in directory.iterdir()] == [], "left a partial output behind"


def test_unknown_reference(hpc_image: HpcImage, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for fmt, target in (("squashfs", out / "x.sqfs"), ("dir", out / "x")):
        proc = export(HpcImage(hpc_image.store, "localhost/test/nothing:9"), fmt, target)
        assert_failed_cleanly(proc, out, "localhost/test/nothing:9")


def test_unwritable_output(hpc_image: HpcImage, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "file").write_text("a file, not a directory\n")
    proc = export(hpc_image, "squashfs", out / "file" / "x.sqfs")
    assert proc.returncode == 1 and proc.stderr.startswith("error: cannot write"), proc.stderr
    proc = export(hpc_image, "dir", out / "file")
    assert proc.returncode == 1 and "not an empty directory" in proc.stderr, proc.stderr
    assert [p.name for p in out.iterdir()] == ["file"]


def test_missing_tar2sqfs_names_the_package(hpc_image: HpcImage, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    empty_path = tmp_path / "bin"
    empty_path.mkdir()
    proc = export(
        hpc_image, "squashfs", out / "x.sqfs", env={**os.environ, "PATH": str(empty_path)}
    )
    assert_failed_cleanly(proc, out, "squashfs-tools-ng", "EPEL")


@pytest.mark.parametrize("damage", ["swapped", "truncated"])
def test_layers_that_do_not_verify(busybox: Path, tmp_path: Path, damage: str) -> None:
    store = Store.open(tmp_path / "store")
    put_image(store, "localhost/test/bad:1", [busybox_entries(busybox), [bytes_entry("a", b"a\n")]])
    layers = store.image("localhost/test/bad:1").manifest.layers
    victim = store.blob_path(layers[1].digest)
    victim.chmod(0o644)
    if damage == "swapped":  # a readable layer, but not the one the manifest names
        put_image(store, "localhost/test/other:1", [[bytes_entry("b", b"other\n")]])
        other = store.image("localhost/test/other:1").manifest.layers[0]
        victim.write_bytes(store.blob_path(other.digest).read_bytes())
    else:
        victim.write_bytes(victim.read_bytes()[:-40])
    out = tmp_path / "out"
    out.mkdir()
    image = HpcImage(tmp_path / "store", "localhost/test/bad:1")
    for fmt, target in (("squashfs", out / "x.sqfs"), ("dir", out / "x")):
        proc = export(image, fmt, target)
        assert_failed_cleanly(proc, out, str(layers[1].digest))


def test_an_env_value_with_a_line_break_cannot_go_to_ch_environment() -> None:
    config = ImageConfig(config=RuntimeConfig(env=("A=1", "B=two\nlines")))
    assert ch_environment(ImageConfig(config=RuntimeConfig(env=("B=2", "A=1")))) == b"A=1\nB=2\n"
    with pytest.raises(ExportError, match="Env B holds a line break"):
        ch_environment(config)
