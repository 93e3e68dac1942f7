"""A test image with every kind of entry the flattening must get right, written straight into a
store: busybox, a nested tree, symlinks, a hardlink whose file an upper layer replaces, a
whiteout-removed path, an opaque directory, non-root owners, and an Env."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from ocibuild.compression import Compression
from ocibuild.layer.entry import Entry, Kind, bytes_entry, dir_entry, whiteout_entry
from ocibuild.layer.tarstream import sorted_entries
from ocibuild.layer.writer import write_layer
from ocibuild.oci import Descriptor, History, ImageConfig, Manifest, MediaType, RuntimeConfig
from ocibuild.store import Store

REF = "localhost/test/hpc:1.0"
ENV = ("PATH=/bin", "UPS_DIR=/products/ups/v5_1_4", "STUDY_VAR=frozen value")


def _layer(store: Store, entries: Sequence[Entry], compression: str) -> Descriptor:
    with store.pending_blob() as pending:
        blob = write_layer(
            sorted_entries(entries), pending.file, Compression(compression), mtime=1451606400
        )
        pending.commit(blob.digest)
    return Descriptor(
        blob.media_type, blob.digest, blob.size, annotations={"diff_id": blob.diff_id}
    )


def busybox_entries(busybox: Path) -> list[Entry]:
    size = busybox.stat().st_size
    return [
        Entry("bin/busybox", Kind.FILE, mode=0o755, size=size, open=lambda: open(busybox, "rb")),
        Entry("bin/sh", Kind.SYMLINK, mode=0o777, link="busybox"),
    ]


def raw_layer(store: Store, tar: bytes) -> Descriptor:
    """An uncompressed layer of hand-made tar bytes (what our writer would never write)."""
    digest = store.put_blob(tar)
    return Descriptor(MediaType.OCI_LAYER, digest, len(tar), annotations={"diff_id": digest})


def put_image(
    store: Store,
    ref: str,
    layers: Sequence[Sequence[Entry] | Descriptor],
    env: Sequence[str] = ENV,
    compressions: Sequence[str] = ("gzip", "none", "gzip"),  # umoci reads no zstd
) -> Descriptor:
    blobs = [
        e if isinstance(e, Descriptor) else _layer(store, e, compressions[i % 3])
        for i, e in enumerate(layers)
    ]
    config = ImageConfig(
        created="2016-01-01T00:00:00Z",
        config=RuntimeConfig(env=tuple(env), cmd=("/bin/sh",), working_dir="/opt"),
        diff_ids=tuple(b.annotations["diff_id"] for b in blobs),  # type: ignore[misc]
        history=tuple(History(created_by=f"test layer {i}") for i in range(len(blobs))),
    )
    config_desc = store.put_json(MediaType.OCI_CONFIG, config.to_bytes())
    manifest = Manifest(
        config_desc, tuple(Descriptor(b.media_type, b.digest, b.size) for b in blobs)
    )
    descriptor = store.put_json(MediaType.OCI_MANIFEST, manifest.to_bytes())
    store.tag([ref], descriptor)
    return descriptor


def hpc_layers(busybox: Path) -> list[list[Entry]]:
    bottom = [
        *busybox_entries(busybox),
        dir_entry("opt/tree/a/b", mode=0o750, uid=1000, gid=1000),
        bytes_entry("opt/tree/a/b/deep.txt", b"deep\n", uid=1000, gid=100),
        bytes_entry("opt/tree/top.txt", b"top\n", mode=0o600),
        Entry("opt/tree/link", Kind.SYMLINK, mode=0o777, link="a/b/deep.txt"),
        Entry("opt/abs", Kind.SYMLINK, mode=0o777, link="/opt/tree"),
        bytes_entry("data/hello.txt", b"old hello\n", uid=1000, gid=1000),
        Entry("data/hard.txt", Kind.HARDLINK, link="data/hello.txt"),
        bytes_entry("data/pair1", b"pair\n", mode=0o640),
        Entry("data/pair2", Kind.HARDLINK, link="data/pair1"),
        bytes_entry("old/gone.txt", b"gone\n"),
        bytes_entry("old/stays.txt", b"stays\n"),
        bytes_entry("var/cache/lower.txt", b"lower\n"),
        dir_entry("var/cache/sub"),
        bytes_entry("var/cache/sub/x", b"x\n"),
        bytes_entry("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
    ]
    middle = [
        bytes_entry("data/hello.txt", b"new hello\n", mode=0o664, uid=2000, gid=2000),
        whiteout_entry("old/gone.txt"),
        Entry("var/cache/.wh..wh..opq", Kind.FILE),
        bytes_entry("var/cache/upper.txt", b"upper\n"),
        bytes_entry("opt/tree/a/b/deep.txt", b"deeper\n", uid=1000, gid=100),
    ]
    top = [
        bytes_entry("usr/share/doc/README", b"readme\n"),
        whiteout_entry("opt/tree/top.txt"),
    ]
    return [bottom, middle, top]


@dataclass(frozen=True)
class HpcImage:
    store: Path
    ref: str


@pytest.fixture(scope="module")
def hpc_image(tmp_path_factory: pytest.TempPathFactory, busybox: Path) -> HpcImage:
    root = tmp_path_factory.mktemp("hpc") / "store"
    store = Store.open(root)
    put_image(store, REF, hpc_layers(busybox))
    return HpcImage(root, REF)


def run(argv: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]


def user_env() -> dict[str, str]:
    """ch-run needs USER set."""
    return {**os.environ, "USER": os.environ.get("USER") or "root"}


# -- podman-hpc (tests/hpc/test_podman_hpc*.py) -------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
DEMO = "localhost/ocibuild/demo-art_1_18_03_e9-prof:latest"
WHITEOUT_USER = "localhost/ocibuild/phpc-whiteout-user:1"
SAME_LAYERS = "localhost/ocibuild/phpc-same-layers:1"  # whiteout-user's layers, another config


def same_layers_other_config(store: Store, ref: str, new_ref: str) -> None:
    """An image with `ref`'s layers and a config of its own (another Env): the two share every
    layer, and so podman-hpc's squash."""
    image = store.image(ref)
    config = image.config.to_json()
    config["config"]["Env"] = [*config["config"].get("Env", []), "SAME_LAYERS=other config"]
    config_desc = store.put_json(MediaType.OCI_CONFIG, json.dumps(config).encode())
    manifest = Manifest(config_desc, image.manifest.layers)
    store.tag([new_ref], store.put_json(MediaType.OCI_MANIFEST, manifest.to_bytes()))


@pytest.fixture(scope="session")
def phpc_store(tmp_path_factory: pytest.TempPathFactory, busybox: Path) -> Store:
    """The demo (frozen UPS Env, a non-root user), whiteout-user (whiteouts, a re-created
    directory, files of uid 1000, User hep), an image of the same layers with another config,
    and hpc_layers' image (hardlinks, an opaque directory, symlinks, three compressions)."""
    from ocibuild.builder import build_recipe

    store = Store.open(tmp_path_factory.mktemp("phpc-store") / "store")
    build_recipe(REPO / "recipes" / "demo.yaml", store)
    build_recipe(REPO / "tests" / "hpc" / "podman_hpc_capture" / "whiteout-user.yaml", store)
    same_layers_other_config(store, WHITEOUT_USER, SAME_LAYERS)
    put_image(store, REF, hpc_layers(busybox))
    return store
