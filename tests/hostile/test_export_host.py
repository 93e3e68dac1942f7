"""Exports never create what a hostile image could use on the host, and never write where the
user did not mean: a loaded image holding /dev/mem (1,1, 0666), a block device and a set-uid
root shell, exported as a directory, gives none of them (unless --devices / --keep-setid ask);
a member through the image's own symlink out of the directory is refused; `-o` never lands in
the store (its index.json, a blob, through a symlink) and a path ending with / is a directory."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from ocibuild.cli import main
from tests.hostile.conftest import Hostile, Outcome, tree, verify_store

REF = "example.org/hostile/devices:1"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def member(name: str, kind: bytes, mode: int, link: str = "", data: bytes = b"") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname, info.size = kind, mode, link, len(data)
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = (1, 1) if kind == tarfile.CHRTYPE else (8, 0)
    return info


def layer(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data else None)
    return buffer.getvalue()


def oci_archive(path: Path, layers: list[bytes], ref: str = REF) -> None:
    """An oci-archive of one image made of `layers` (uncompressed), as any tool could write it:
    nothing in it was checked by ocibuild's sources."""
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [sha(x) for x in layers]},
            "config": {},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha(x),
                    "size": len(x),
                }
                for x in layers
            ],
        }
    ).encode()
    index = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": sha(manifest),
                    "size": len(manifest),
                    "annotations": {"org.opencontainers.image.ref.name": ref},
                }
            ],
        }
    ).encode()
    files = {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}', "index.json": index}
    files |= {f"blobs/sha256/{sha(b)[7:]}": b for b in (config, manifest, *layers)}
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


HOSTILE_LAYER = layer(
    [
        (member("dev/", tarfile.DIRTYPE, 0o755), b""),
        (member("dev/mem", tarfile.CHRTYPE, 0o666), b""),
        (member("dev/sda", tarfile.BLKTYPE, 0o666), b""),
        (member("bin/", tarfile.DIRTYPE, 0o755), b""),
        (member("bin/rootsh", tarfile.REGTYPE, 0o4755, data=b"#!/bin/sh\n"), b"#!/bin/sh\n"),
        (member("shared/", tarfile.DIRTYPE, 0o2775), b""),
        (member("tmp/", tarfile.DIRTYPE, 0o1777), b""),
    ]
)


@pytest.fixture
def loaded(hostile: Hostile) -> Hostile:
    archive = hostile.root / "hostile.tar"
    oci_archive(archive, [HOSTILE_LAYER])
    outcome = hostile.run("load", str(archive))
    assert outcome.code == 0, outcome.err
    archive.unlink()
    return hostile


def test_a_dir_export_writes_no_devices_and_no_set_id_bits(loaded: Hostile) -> None:
    out = loaded.root / "rootfs"
    loaded.capsys.readouterr()
    code = main(["--store", str(loaded.store), "export", REF, "--format", "dir", "-o", str(out)])
    outcome = Outcome(code, *loaded.capsys.readouterr())
    assert outcome.code == 0, outcome.err
    assert not (out / "dev" / "mem").exists() and not (out / "dev" / "sda").exists()
    assert stat.S_IMODE((out / "bin" / "rootsh").stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "shared").stat().st_mode) == 0o2775  # a group handed down
    assert stat.S_IMODE((out / "tmp").stat().st_mode) == 0o1777  # the sticky bit is harmless
    assert "warning: " in outcome.err and "2 device nodes of the image not written" in outcome.err
    assert "set-uid/set-gid bits of 1 file cleared (--keep-setid keeps them)" in outcome.err


def test_a_dir_export_writes_them_when_asked(loaded: Hostile) -> None:
    out = loaded.root / "rootfs"
    outcome = loaded.run(
        "export", REF, "--format", "dir", "--devices", "--keep-setid", "-o", str(out)
    )
    assert outcome.code == 0, outcome.err
    mem = (out / "dev" / "mem").lstat()
    assert stat.S_ISCHR(mem.st_mode) and os.major(mem.st_rdev) == 1
    assert stat.S_IMODE((out / "bin" / "rootsh").stat().st_mode) == 0o4755
    assert "warning" not in outcome.err


@pytest.mark.parametrize("fmt", ["oci-archive", "squashfs"])
def test_devices_and_keep_setid_are_for_dir_only(fmt: str, loaded: Hostile) -> None:
    loaded.refused(
        "export", REF, "--format", fmt, "--devices", "-o", str(loaded.root / "x"),
        names=("--devices and --keep-setid apply to --format dir only",),
    )  # fmt: skip


def test_a_member_through_the_images_symlink_out_of_the_directory_is_refused(
    hostile: Hostile,
) -> None:
    outside = hostile.root / "outside"
    outside.mkdir()
    escape = layer(
        [
            (member("esc", tarfile.SYMTYPE, 0o777, link=str(outside)), b""),
            (member("esc/pwned", tarfile.REGTYPE, 0o644, data=b"x"), b"x"),
        ]
    )
    oci_archive(hostile.root / "escape.tar", [escape], "example.org/hostile/escape:1")
    assert hostile.run("load", str(hostile.root / "escape.tar")).code == 0
    out = hostile.root / "rootfs"
    outcome = hostile.run(
        "export", "example.org/hostile/escape:1", "--format", "dir", "-o", str(out)
    )
    assert outcome.code == 1 and "would be written outside the image" in outcome.err
    assert list(outside.iterdir()) == [] and not out.exists()
    assert [p for p in hostile.root.iterdir() if p.name.startswith(".rootfs")] == []


# -- output paths -------------------------------------------------------------------------------


def blob_of(store: Path) -> Path:
    return next(p for p in (store / "blobs" / "sha256").iterdir())


TARGETS: dict[str, Callable[[Hostile], tuple[str, ...]]] = {
    "index.json": lambda h: ("-o", str(h.store / "index.json")),
    "a blob": lambda h: ("-o", str(blob_of(h.store))),
    "the store itself": lambda h: ("--format", "dir", "-o", str(h.store / "rootfs")),
    "a symlink to a blob": lambda h: (
        os.symlink(blob_of(h.store), h.root / "link") or "-o",  # type: ignore[func-returns-value]
        str(h.root / "link"),
    ),
    "a new name in the store": lambda h: ("-o", str(h.store / "blobs" / "new.tar")),
}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_an_output_is_never_inside_the_store(target: str, hostile: Hostile) -> None:
    args = TARGETS[target](hostile)
    before = tree(hostile.store)
    error = hostile.refused("export", "a/good", *args, names=("is inside the store",))
    assert str(hostile.store.resolve()) in error
    assert tree(hostile.store) == before
    verify_store(hostile.store)


def test_a_trailing_slash_names_a_directory(hostile: Hostile) -> None:
    (hostile.root / "file").write_text("keep me")
    hostile.refused(
        "export", "a/good", "-o", f"{hostile.root / 'file'}/",
        names=("a path ending with / names a directory, and this one is not a directory",),
    )  # fmt: skip
    assert (hostile.root / "file").read_text() == "keep me"
    hostile.refused(
        "export", "a/good", "-o", f"{hostile.root / 'new'}/",
        names=("names a directory, and this one does not exist",),
    )  # fmt: skip
    out = hostile.root / "rootfs"
    assert hostile.run("export", "a/good", "--format", "dir", "-o", f"{out}/").code == 0
    assert (out / "ok").read_text() == "ok"
