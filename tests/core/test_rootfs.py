"""The merged view of an image's layers that sources read the base image through."""

from __future__ import annotations

from ocibuild.compression import Compression
from ocibuild.layer.entry import Entry, Kind, bytes_entry, whiteout_entry
from ocibuild.layer.tarstream import sorted_entries
from ocibuild.layer.writer import write_layer
from ocibuild.oci import Descriptor
from ocibuild.store import Store
from ocibuild.store.rootfs import ImageFS


def put_layer(store: Store, entries: list[Entry], algorithm: str = "gzip") -> Descriptor:
    with store.pending_blob() as pending:
        blob = write_layer(sorted_entries(entries), pending.file, Compression(algorithm))
        pending.commit(blob.digest)
    return Descriptor(blob.media_type, blob.digest, blob.size)


def test_upper_layers_shadow_and_whiteouts_hide(store: Store) -> None:
    bottom = put_layer(
        store,
        [
            bytes_entry("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
            bytes_entry("etc/group", b"root:x:0:\n"),
            bytes_entry("opt/old/a", b"a"),
            bytes_entry("var/lib/x", b"x"),
        ],
        "zstd",
    )
    middle = put_layer(
        store,
        [
            bytes_entry(
                "etc/passwd", b"root:x:0:0::/root:/bin/sh\nhep:x:1000:1000::/home/hep:/bin/sh\n"
            ),
            whiteout_entry("opt/old"),
            Entry("var/lib/.wh..wh..opq", Kind.FILE),
            bytes_entry("var/lib/y", b"y"),
        ],
        "none",
    )
    top = put_layer(store, [bytes_entry("opt/new", b"n")])
    fs = ImageFS(store, [bottom, middle, top])
    assert fs.read("/etc/passwd").endswith(b"hep:x:1000:1000::/home/hep:/bin/sh\n")
    assert fs.read("etc/group") == b"root:x:0:\n"
    assert fs.read("/opt/old/a") is None
    assert fs.read("/var/lib/x") is None
    assert fs.collect(lambda p: p.startswith(("opt/", "var/"))) == {
        "opt/new": b"n",
        "var/lib/y": b"y",
    }
    # the bottom layer alone still has everything
    assert ImageFS(store, [bottom]).read("/opt/old/a") == b"a"
