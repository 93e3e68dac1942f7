"""Sizes believed only up to a budget, names only if they can be written back, and trees of any
depth walked without recursion: an `ar` member of size -60 (it looped, writing 2.6 GB), a PAX
size that is negative, a data.tar that ends early, a name that is not UTF-8, a `load` of a
sparse member claiming 1 TiB (it wrote 8 GiB), and 1,100-deep trees in a product tarball, a
.deb and a host directory, built and exported as a directory."""

from __future__ import annotations

import bz2
import io
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocibuild.store.rootdir import remove_tree
from tests.hostile.conftest import Hostile, dir_, file_, pax_sparse, tar_bytes
from tests.hostile.debrepo import apt_repo, deb_bytes, deb_recipe
from tests.hostile.test_export_host import layer, member, oci_archive
from tests.ups.conftest import Mirror
from tests.ups.test_build import ART_TARBALL, write_recipe

P = "art/v1_18_03/"
DEB = "hostile_1.0_amd64.deb"


def with_ar_size(deb: bytes, member: str, size: bytes) -> bytes:
    """`deb` with the size field of its ar member `member` replaced by `size`."""
    at = deb.index(member.encode().ljust(16))
    return deb[: at + 48] + size.ljust(10) + deb[at + 58 :]


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (b"-60", "corrupt ar member size '-60'"),
        (b"99999999", "corrupt ar member size '99999999'"),
        (b"12abc", "corrupt ar member size '12abc'"),
    ],
)
def test_an_ar_member_size_is_believed_only_if_it_fits(
    size: bytes, expected: str, hostile: Hostile, cache_dir: Path
) -> None:
    deb = with_ar_size(deb_bytes({"Package": "hostile"}, [dir_("./opt/")]), "data.tar", size)
    url = apt_repo(hostile.root / "apt", {DEB: deb}, {DEB: {"Package": "hostile"}})
    recipe = hostile.recipe(deb_recipe(url, "hostile"), "deb.yaml")
    started = time.monotonic()
    hostile.refused("recipe", str(recipe), names=(expected,))
    assert time.monotonic() - started < 30


def negative_pax_size(name: str) -> bytes:
    info = tarfile.TarInfo(name)
    info.pax_headers = {"size": "-5"}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info)
    return buffer.getvalue()


def latin1_name(name: bytes) -> bytes:
    """A ustar member whose name is not UTF-8 (a GNU tar of a Latin-1 file system)."""
    info = tarfile.TarInfo("x" * len(name))
    info.size = 1
    header = bytearray(info.tobuf(tarfile.USTAR_FORMAT))
    header[: len(name)] = name
    header[148:156] = b"        "
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header) + b"z".ljust(512, b"\0") + b"\0" * 1024


def tarball(mirror: Mirror, data: bytes) -> None:
    (mirror.root / "scisoft" / ART_TARBALL).write_bytes(bz2.compress(data))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (negative_pax_size(P + "neg"), "archive member -5 is negative"),
        (latin1_name(P.encode() + b"caf\xe9"), "a name that is not UTF-8"),
        (tar_bytes([file_(P + "big", b"x" * 4096)])[:1024], "not a readable tarball"),
    ],
    ids=["negative-pax-size", "latin-1-name", "ends-early"],
)
def test_product_tarball_sizes_and_names(
    data: bytes, expected: str, hostile: Hostile, own_mirror: Mirror, cache_dir: Path
) -> None:
    tarball(own_mirror, data)
    recipe = write_recipe(hostile.root / "art.yaml", None, layering="bundle", setup=False)
    hostile.refused("recipe", "--mirror", own_mirror.url, str(recipe), names=(expected,))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (tar_bytes([dir_("./"), file_("./opt/x", b"y" * 5000)])[:2048], "payload"),
        (latin1_name(b"./caf\xe9"), "a name that is not UTF-8"),
    ],
    ids=["ends-early", "latin-1-name"],
)
def test_deb_payload_sizes_and_names(
    data: bytes, expected: str, hostile: Hostile, cache_dir: Path
) -> None:
    deb = deb_bytes({"Package": "hostile"}, [], data=data)
    url = apt_repo(hostile.root / "apt", {DEB: deb}, {DEB: {"Package": "hostile"}})
    recipe = hostile.recipe(deb_recipe(url, "hostile"), "deb.yaml")
    error = hostile.refused("recipe", str(recipe))
    assert expected in error or "not a readable tar" in error, error


def test_load_refuses_a_sparse_member_before_writing(hostile: Hostile) -> None:
    archive = hostile.root / "sparse.tar"
    archive.write_bytes(pax_sparse("blobs/sha256/" + "a" * 64, 1 << 40))
    started = time.monotonic()
    hostile.refused("load", str(archive), names=("is a sparse file",))
    assert time.monotonic() - started < 10


# -- depth -------------------------------------------------------------------------------------

DEPTH = 1100


@pytest.fixture(autouse=True)
def deep_trees_removed(tmp_path: Path) -> Iterator[None]:
    """pytest's own clean-up recurses per level: the deep trees go with ocibuild's."""
    yield
    for path in tmp_path.iterdir():
        remove_tree(path)


def deep_members(top: str) -> list[tuple[str, bytes, str, bytes]]:
    path = top.rstrip("/")
    members = [dir_(path + "/")]
    for _ in range(DEPTH):
        path += "/d"
        members.append(dir_(path + "/"))
    members.append(file_(path + "/leaf", b"deep\n"))
    return members


def exported_leaf(hostile: Hostile, ref: str, under: str) -> Path:
    out = hostile.root / "rootfs"
    outcome = hostile.run("export", ref, "--format", "dir", "-o", str(out))
    assert outcome.code == 0, outcome.err
    leaf = out.joinpath(under, *["d"] * DEPTH, "leaf")
    assert leaf.read_bytes() == b"deep\n"
    return out


def test_a_deep_product_tree_builds_and_exports(
    hostile: Hostile, own_mirror: Mirror, cache_dir: Path
) -> None:
    tarball(own_mirror, tar_bytes(deep_members(P + "deep")))
    recipe = write_recipe(hostile.root / "art.yaml", None, layering="bundle", setup=False)
    outcome = hostile.run("recipe", "--mirror", own_mirror.url, str(recipe))
    assert outcome.code == 0 and "Recursion" not in outcome.err, outcome.err
    ref = outcome.out.split("@")[0].strip()
    exported_leaf(hostile, ref, f"products/{P}deep")


def test_a_deep_deb_tree_builds(hostile: Hostile, cache_dir: Path) -> None:
    deb = deb_bytes({"Package": "hostile"}, deep_members("./opt"))
    url = apt_repo(hostile.root / "apt", {DEB: deb}, {DEB: {"Package": "hostile"}})
    recipe = hostile.recipe(deb_recipe(url, "hostile"), "deb.yaml")
    outcome = hostile.run("recipe", str(recipe))
    assert outcome.code == 0 and "Recursion" not in outcome.err, outcome.err
    exported_leaf(hostile, "docker.io/a/deb:latest", "opt")


def test_a_deep_host_tree_builds_and_exports(hostile: Hostile) -> None:
    path = hostile.root / "tree"
    path.mkdir()
    for _ in range(DEPTH):  # os.makedirs recurses per level
        path = path / "d"
        path.mkdir()
    (path / "leaf").write_bytes(b"deep\n")
    recipe = hostile.recipe(
        "images:\n  - name: a/deep\n    layers:\n      - files: [{src: tree, dest: /deep}]\n"
    )
    outcome = hostile.run("recipe", str(recipe))
    assert outcome.code == 0 and "Recursion" not in outcome.err, outcome.err
    exported_leaf(hostile, "a/deep", "deep")


def test_a_failed_export_of_a_deep_tree_leaves_nothing(hostile: Hostile) -> None:
    outside = hostile.root / "outside"
    outside.mkdir()
    members = [(member(name, kind, 0o755), b"") for name, kind, _, _ in deep_members("deep")]
    members += [
        (member("esc", tarfile.SYMTYPE, 0o777, link=str(outside)), b""),
        (member("esc/pwned", tarfile.REGTYPE, 0o644, data=b"x"), b"x"),
    ]
    oci_archive(hostile.root / "deep.tar", [layer(members)], "example.org/hostile/deep:1")
    assert hostile.run("load", str(hostile.root / "deep.tar")).code == 0
    out = hostile.root / "rootfs"
    error = hostile.refused(
        "export", "example.org/hostile/deep:1", "--format", "dir", "-o", str(out),
        names=("would be written outside the image",),
    )  # fmt: skip
    assert "Recursion" not in error and not out.exists() and list(outside.iterdir()) == []
    assert [p.name for p in hostile.root.iterdir() if p.name.startswith(".rootfs")] == []
