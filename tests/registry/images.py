"""Small test images written straight into a store with the layer writer."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ocibuild.compression import Compression
from ocibuild.layer.entry import Entry, Kind, bytes_entry
from ocibuild.layer.writer import write_layer
from ocibuild.oci import Descriptor, History, ImageConfig, Manifest, MediaType, RuntimeConfig
from ocibuild.oci.formats import in_format
from ocibuild.store import Store


def add_layer(store: Store, entries: Sequence[Entry], compression: str = "gzip") -> Descriptor:
    with store.pending_blob() as pending:
        blob = write_layer(entries, pending.file, Compression(compression), mtime=1451606400)
        pending.commit(blob.digest)
    return Descriptor(
        blob.media_type, blob.digest, blob.size, annotations={"diff_id": blob.diff_id}
    )


def make_image(
    store: Store,
    refs: Sequence[str],
    layers: Sequence[Sequence[Entry]],
    cmd: Sequence[str] = ("/bin/sh",),
    compression: str = "gzip",
    env: Sequence[str] = ("PATH=/bin",),
    workdir: str = "",
    fmt: str = "oci",
) -> Descriptor:
    """An image of `layers` (each a list of entries), its manifest in the family `fmt` (oci,
    docker, auto), tagged under every ref of `refs`."""
    blobs = [add_layer(store, entries, compression) for entries in layers]
    config = ImageConfig(
        created="2016-01-01T00:00:00Z",
        config=RuntimeConfig(env=tuple(env), cmd=tuple(cmd), working_dir=workdir),
        diff_ids=tuple(b.annotations["diff_id"] for b in blobs),  # type: ignore[misc]
        history=tuple(History(created_by=f"test layer {i}") for i in range(len(blobs))),
    )
    config_desc = store.put_json(MediaType.OCI_CONFIG, config.to_bytes())
    layer_descs = tuple(Descriptor(b.media_type, b.digest, b.size) for b in blobs)
    manifest = in_format(Manifest(config_desc, layer_descs), fmt)
    descriptor = store.put_json(manifest.media_type, manifest.to_bytes())
    store.tag(list(refs), descriptor)
    return descriptor


def random_layer(name: str, size: int) -> list[Entry]:
    """One file of incompressible bytes: a layer about `size` bytes big."""
    return [bytes_entry(f"data/{name}", os.urandom(size))]


def busybox_layer(busybox: Path) -> list[Entry]:
    """/bin/busybox (the host's static one) and /bin/sh -> busybox."""
    size = busybox.stat().st_size
    return [
        Entry("bin/busybox", Kind.FILE, mode=0o755, size=size, open=lambda: open(busybox, "rb")),
        Entry("bin/sh", Kind.SYMLINK, mode=0o777, link="busybox"),
        Entry("bin/echo", Kind.SYMLINK, mode=0o777, link="busybox"),
        Entry("bin/cat", Kind.SYMLINK, mode=0o777, link="busybox"),
    ]
