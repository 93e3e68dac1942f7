"""The tar-split ocibuild writes for podman-hpc's store equals, after gunzip, the one podman
itself writes when it loads the layer (containers/storage 1.43, tar-split 0.11), with the
layer's diff digest, size and id sets: for tars of every format a layer may come in."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from ocibuild.layer.reader import decompressed
from ocibuild.layer.tarsplit import tar_split
from ocibuild.store import Store
from ocibuild.store.cstorage import layer_ids
from ocibuild.store.export import export_image
from tests.hpc.conftest import DEMO, WHITEOUT_USER, busybox_entries, put_image, raw_layer
from tests.podman import Podman

TRICKY = "localhost/test/tar-formats:1"


def tar(fmt: int, members: list[tuple[tarfile.TarInfo, bytes | None]], **kwargs: object) -> bytes:
    """A tar as Python's tarfile writes it: padded to its 10 KiB records, so bytes follow the
    end blocks."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt, errors="surrogateescape", **kwargs) as t:  # type: ignore[call-overload]
        for info, data in members:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def member(
    name: str,
    data: bytes = b"",
    kind: bytes = tarfile.REGTYPE,
    link: str = "",
    uid: int = 0,
    gid: int = 0,
) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.uid, info.gid, info.mtime = kind, link, uid, gid, 1451606400
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    if kind == tarfile.REGTYPE:
        info.size = len(data)
        return info, data
    return info, None


def v7_directory_as_regular_file() -> bytes:
    """An old tar's directory: typeflag NUL and a name ending in a slash."""
    raw = bytearray(tar(tarfile.USTAR_FORMAT, [member("v7dir/", b""), member("v7dir/a", b"a")]))
    raw[156] = 0
    raw[148:156] = b" " * 8
    raw[148:156] = b"%06o\0 " % sum(raw[:512])
    return bytes(raw)


@pytest.fixture(scope="module")
def tricky(phpc_store: Store, busybox: Path) -> Store:
    long = "deep/" + "d" * 120 + "/a-name-longer-than-a-ustar-header-holds.txt"
    gnu = tar(
        tarfile.GNU_FORMAT,
        [
            member("deep/", kind=tarfile.DIRTYPE),
            member(long, b"long\n" * 200, uid=3000000, gid=5),  # base-256 uid
            member("deep/ln", kind=tarfile.SYMTYPE, link="/" + "t" * 150),  # GNU long link
            member("deep/hard", kind=tarfile.LNKTYPE, link=long),
            member("deep/.wh.gone", uid=1234, gid=4321),  # left out of the id sets
            member("deep/exact512", b"x" * 512),
            member("deep/empty"),
        ],
    )
    pax = tar(
        tarfile.PAX_FORMAT,
        [
            member("pax/", kind=tarfile.DIRTYPE),
            member("pax/caf\u00e9 <&> \u2028.txt", b"utf8\n"),  # Go's JSON escapes
            member("pax/bad-\udcff-name", b"raw\n"),  # not UTF-8: name_raw
            member("pax/ctl\x01", b"c\n"),
            member("pax/" + "p" * 130, b"p" * 1000, uid=7),
        ],
        pax_headers={"comment": "a global header, an entry of its own"},
    )
    unended = tar(tarfile.USTAR_FORMAT, [member("unended.txt", b"u" * 1000)])[
        :1536
    ]  # no end blocks
    put_image(
        phpc_store,
        TRICKY,
        [
            raw_layer(phpc_store, unended),
            busybox_entries(busybox),
            raw_layer(phpc_store, gnu),
            raw_layer(phpc_store, pax),
            raw_layer(phpc_store, v7_directory_as_regular_file()),
        ],
    )
    return phpc_store


@pytest.mark.parametrize("ref", [DEMO, WHITEOUT_USER, TRICKY])
def test_tar_split_and_layer_facts_equal_podmans(
    tricky: Store, podman: Podman, tmp_path: Path, ref: str
) -> None:
    archive = tmp_path / "image.tar"
    export_image(tricky, ref, "oci-archive", archive)
    podman("load", "-i", str(archive))
    graph = podman.root / "storage" / "vfs-layers"
    records = {r["id"]: r for r in json.loads((graph / "layers.json").read_text())}
    image = tricky.image(ref)
    ids = layer_ids([str(d) for d in image.config.diff_ids])
    for layer_id, descriptor in zip(ids, image.manifest.layers, strict=True):
        out = io.BytesIO()
        with (
            tricky.open_blob(descriptor.digest) as blob,
            decompressed(blob, descriptor.media_type) as stream,
        ):
            facts = tar_split(stream, out, str(descriptor.digest))
        assert out.getvalue() == gzip.decompress((graph / f"{layer_id}.tar-split.gz").read_bytes())
        record = records[layer_id]
        assert (facts.digest, facts.size) == (record["diff-digest"], record["diff-size"])
        assert (list(facts.uids), list(facts.gids)) == (
            record.get("uidset", []),
            record.get("gidset", []),
        )
