"""Product tarballs streamed into layer entries: the tree, the order, unsafe members, damage,
bounded memory."""

from __future__ import annotations

import bz2
import hashlib
import io
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from ocibuild.compression import Compression
from ocibuild.errors import LayerError, SourceError, UnsafePathError
from ocibuild.layer.entry import Kind
from ocibuild.layer.writer import write_layer
from ocibuild.ups import tarball as tarball_module
from ocibuild.ups.layering import group_products
from ocibuild.ups.tarball import ProductTarball, decodes_on_every_core, tarball_entries
from testsupport.synthetic_ups import SyntheticProduct, art_bundle, write_tarball

SLF6 = "Linux64bit+2.6-2.12"


def product_tarball(path: Path, product: str = "p", version: str = "v1") -> ProductTarball:
    with open(path, "rb") as f:
        sha256 = hashlib.file_digest(f, "sha256").hexdigest()
    return ProductTarball(
        product, version, f"http://mirror/{path.name}", path, path.stat().st_size, sha256
    )


def tar_of(
    path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:bz2"
) -> Path:
    with tarfile.open(path, mode) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def member(
    name: str, kind: bytes = tarfile.REGTYPE, link: str = "", data: bytes | None = b"x\n"
) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info, data if kind == tarfile.REGTYPE else None


def layer_members(
    tarballs: list[ProductTarball], into: str = "/products"
) -> dict[str, tarfile.TarInfo]:
    out = io.BytesIO()
    write_layer(tarball_entries(tarballs, into), out, Compression("none"))
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_products_land_under_into_as_pullproducts_leaves_them(tmp_path: Path) -> None:
    bundle = art_bundle()
    tarballs = []
    for product in bundle.products:
        path = tmp_path / product.tarball
        write_tarball(product, path)
        tarballs.append(product_tarball(path, product.name, product.version))
    members = layer_members(tarballs, "/products")
    assert {"products/setup", "products/.upsfiles/dbconfig"} <= set(members)
    assert f"products/art/v1_18_03.version/{SLF6}_e9_prof" in members
    assert "products/cetpkgsupport/v1_08_07.version/NULL_" in members
    assert f"products/gcc/v4_9_3.version/{SLF6}_" in members
    art = members[f"products/art/v1_18_03/{SLF6}-e9-prof/bin/art"]
    assert (art.mode, art.uid, art.gid, art.uname) == (0o755, 0, 0, "")
    assert members["products/art/v1_18_03/ups/art.table"].mode == 0o644
    # content survives the trip: compare with the tarball's own member
    with tarfile.open(tarballs[0].path) as tar:
        for info in tar.getmembers():
            if info.isfile():
                assert members[f"products/{info.name}"].size == info.size


@pytest.mark.parametrize("compression", ["gz", "xz", "none"])
def test_other_compressions(tmp_path: Path, compression: str) -> None:
    product = SyntheticProduct("cry", "v1_7g", SLF6, "e9:prof", program=True, payload=70_000)
    path = tmp_path / f"cry.tar.{compression}"
    write_tarball(product, path, compression)
    members = layer_members([product_tarball(path, "cry", "v1_7g")], "/opt/ups")
    lib = members[f"opt/ups/cry/v1_7g/{SLF6}-e9-prof/lib/libcry.so"]
    assert lib.size == 70_000
    assert not decodes_on_every_core(path.name)  # only bzip2 is decoded on every core
    assert decodes_on_every_core("art-1.18.03-slf6-x86_64-e9-prof.tar.bz2")


def test_same_tarball_same_layer(tmp_path: Path) -> None:
    product = art_bundle().products[-1]
    path = tmp_path / product.tarball
    write_tarball(product, path)
    digests = set()
    for _ in range(2):
        out = io.BytesIO()
        blob = write_layer(
            tarball_entries([product_tarball(path)], "products"), out, Compression("gzip")
        )
        digests.add(blob.digest)
    assert len(digests) == 1


UNSAFE = {
    "dotdot": (
        [member("p/v1/../../../etc/passwd")],
        "member 'p/v1/../../../etc/passwd' contains '..'",
    ),
    "absolute": ([member("/etc/passwd")], "member '/etc/passwd' is an absolute path"),
    "escaping-symlink": (
        [member("p/v1/lib", tarfile.SYMTYPE, "../../../etc")],
        "symlink /products/p/v1/lib -> ../../../etc resolves to /etc, outside /products",
    ),
    "absolute-symlink": (
        [member("p/v1/shadow", tarfile.SYMTYPE, "/etc/shadow")],
        "symlink /products/p/v1/shadow -> /etc/shadow resolves to /etc/shadow, outside /products",
    ),
    "escaping-hardlink": (
        [member("p/v1/x", tarfile.LNKTYPE, "../etc/passwd")],
        "hard link p/v1/x -> '../etc/passwd' contains '..'",
    ),
    "device": (
        [member("p/v1/null", tarfile.CHRTYPE)],
        "member 'p/v1/null' is a character device: no archive source takes device nodes",
    ),
    "fifo": ([member("p/v1/pipe", tarfile.FIFOTYPE)], "member 'p/v1/pipe' is a FIFO"),
    "duplicate": ([member("p/v1/a"), member("p/v1/a")], "products/p/v1/a is twice in the tarball"),
    "dangling-hardlink": (
        [member("p/v1/x", tarfile.LNKTYPE, "p/v1/missing")],
        "hardlink /products/p/v1/x -> /products/p/v1/missing: the target is not a file",
    ),
}


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_unsafe_members_reject_the_tarball_naming_it(tmp_path: Path, case: str) -> None:
    members, message = UNSAFE[case]
    path = tar_of(tmp_path / "p-1-slf6-x86_64.tar.bz2", [member("p/v1/ok"), *members])
    with pytest.raises(SourceError) as raised:
        layer_members([product_tarball(path)])
    text = str(raised.value)
    assert text.startswith("p v1: http://mirror/p-1-slf6-x86_64.tar.bz2: "), text
    assert message in text
    if case not in ("duplicate", "dangling-hardlink"):
        assert isinstance(raised.value, UnsafePathError)


def test_links_inside_the_products_root_are_kept(tmp_path: Path) -> None:
    path = tar_of(
        tmp_path / "p.tar.bz2",
        [
            member("p/v1/lib/libp.so.1"),
            member("p/v1/lib/libp.so", tarfile.SYMTYPE, "libp.so.1"),
            member("p/v1/current", tarfile.SYMTYPE, "../v1"),
            member("p/v1/abs", tarfile.SYMTYPE, "/products/p/v1/lib"),
            member("p/v1/lib/hard.so", tarfile.LNKTYPE, "p/v1/lib/libp.so.1"),
        ],
    )
    members = layer_members([product_tarball(path)])
    assert members["products/p/v1/lib/libp.so"].linkname == "libp.so.1"
    assert members["products/p/v1/abs"].linkname == "/products/p/v1/lib"
    assert members["products/p/v1/lib/hard.so"].linkname == "products/p/v1/lib/libp.so.1"


def test_a_file_in_two_products_of_one_layer_names_both(tmp_path: Path) -> None:
    a = tar_of(tmp_path / "a.tar.bz2", [member("setup")])
    b = tar_of(tmp_path / "b.tar.bz2", [member("setup")])
    with pytest.raises(
        SourceError, match=r"b v1: .*b.tar.bz2: products/setup is also in a v1: .*a.tar.bz2"
    ):
        layer_members([product_tarball(a, "a"), product_tarball(b, "b")])


def test_truncated_tarball(tmp_path: Path) -> None:
    product = SyntheticProduct("big", "v1", SLF6, "e9:prof", payload=300_000)
    path = tmp_path / "big.tar.bz2"
    write_tarball(product, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(
        SourceError,
        match=r"big v1: http://mirror/big.tar.bz2: not a readable tarball \(truncated or damaged\?\)",
    ):
        layer_members([product_tarball(path, "big")])


END_OF_STREAM = format(0x177245385090, "048b")  # bzip2's end-of-stream magic, as bits


def without_end_of_stream(data: bytes) -> bytes:
    """A bzip2 file cut right before its end-of-stream marker and combined CRC: every block
    whole, the stream's tail gone (the last byte keeps the last block's bits)."""
    bits = bin(int.from_bytes(data, "big"))[2:].zfill(len(data) * 8)
    end = bits.rindex(END_OF_STREAM)
    kept = bits[:end].ljust((end + 7) // 8 * 8, "0")
    return int(kept, 2).to_bytes(len(kept) // 8, "big")


@pytest.mark.parametrize("damage", ["no end-of-stream", "second stream cut", "flipped byte"])
def test_a_damaged_bzip2_stream_is_refused(tmp_path: Path, damage: str) -> None:
    product = SyntheticProduct("big", "v1", SLF6, "e9:prof", payload=400_000)
    path = tmp_path / "big.tar.bz2"
    write_tarball(product, path)
    data = path.read_bytes()
    if damage == "no end-of-stream":
        broken = without_end_of_stream(data)
    elif damage == "second stream cut":  # as pbzip2 writes them: one stream after the other
        broken = data + without_end_of_stream(data)
    else:
        broken = bytearray(data)
        broken[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(broken))
    with pytest.raises(
        SourceError,
        match=r"big v1: http://mirror/big.tar.bz2: not a readable tarball \(truncated or damaged\?\)"
        r": bzip2 stream truncated or damaged",
    ):
        layer_members([product_tarball(path, "big")])


def test_concatenated_bzip2_streams_are_one_tarball(tmp_path: Path) -> None:
    """pbzip2 and lbzip2 -c write several streams one after the other: all of it is read."""
    path = tar_of(tmp_path / "p.tar.bz2", [member("p/a", data=b"a" * 300_000)])
    plain = bz2.decompress(path.read_bytes())
    half = len(plain) // 2
    path.write_bytes(bz2.compress(plain[:half]) + bz2.compress(plain[half:]))
    members = layer_members([product_tarball(path)])
    assert members["products/p/a"].size == 300_000


def test_not_a_tarball(tmp_path: Path) -> None:
    path = tmp_path / "x.tar.bz2"
    path.write_bytes(b"<html>404 Not Found</html>\n" * 40)
    with pytest.raises(SourceError, match="not a readable tarball"):
        layer_members([product_tarball(path)])


def test_content_must_be_read_in_order(tmp_path: Path) -> None:
    path = tar_of(
        tmp_path / "p.tar.bz2", [member("p/a", data=b"a" * 10), member("p/b", data=b"b" * 10)]
    )
    entries = tarball_entries([product_tarball(path)], "products")
    first = next(e for e in entries if e.kind is Kind.FILE)
    stream = first.open()  # type: ignore[misc]
    assert stream.read(4) == b"aaaa"
    second = next(e for e in entries if e.kind is Kind.FILE)
    with pytest.raises(LayerError, match="content read after the next entry"):
        stream.read()
    assert second.open().read() == b"b" * 10  # type: ignore[misc]
    entries.close()


def test_memory_stays_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tarball_module, "READ_AHEAD_BYTES", 4 << 20)
    product = SyntheticProduct("huge", "v1", SLF6, "e9:prof", payload=96 << 20, files=2)
    path = tmp_path / "huge.tar"
    write_tarball(product, path, "none")
    sink = _NullSink()
    tarballs = [product_tarball(path, "huge")]
    tracemalloc.start()
    try:
        blob = write_layer(tarball_entries(tarballs, "products"), sink, Compression("none"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert blob.tar_size > 96 << 20
    assert peak < 24 << 20, f"peak {peak} bytes while streaming {blob.tar_size} bytes"


class _NullSink(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        return len(data)


def test_layering() -> None:
    def t(name: str, size: int) -> ProductTarball:
        return ProductTarball(name, "v1", f"u/{name}", Path(name), size, name * 8)

    products = [t("root", 90), t("art", 40), t("cetlib", 5), t("boost", 60), t("ups", 1)]
    assert [[p.product for p in g] for g in group_products(products, "bundle")] == [
        ["art", "boost", "cetlib", "root", "ups"]
    ]
    assert [[p.product for p in g] for g in group_products(products, "product")] == [
        ["art"],
        ["boost"],
        ["cetlib"],
        ["root"],
        ["ups"],
    ]
    auto = group_products(products, "auto", own_layer_bytes=40, max_own_layers=2)
    assert [[p.product for p in g] for g in auto] == [["boost"], ["root"], ["art", "cetlib", "ups"]]
    # a product's own layer does not depend on the other products of the bundle
    other = group_products([t("root", 90), t("geant4", 70)], "auto", own_layer_bytes=40)
    assert [p.product for p in other[1]] == ["root"]
    assert group_products([], "auto") == []
    with pytest.raises(ValueError, match="layering must be one of"):
        group_products(products, "layers")
