"""Hostile archive members: product tarballs on a mirror, .deb payloads in an apt repository.
Each is refused by the one safe-path resolver or the limits, naming the archive and member."""

from __future__ import annotations

import bz2
import hashlib
import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.hostile.conftest import (
    Hostile,
    Member,
    dir_,
    file_,
    hardlink,
    old_gnu_sparse,
    pax_sparse,
    special,
    symlink,
    tar_bytes,
)
from tests.hostile.debrepo import apt_repo, deb_bytes, deb_recipe
from tests.ups.conftest import Mirror
from tests.ups.test_build import ART_TARBALL, write_recipe

P = "art/v1_18_03/"  # where the art product's members live in its tarball

TARBALLS: dict[str, tuple[list[Member], str]] = {
    # the campaign's escape: two hops through the tarball's own links
    "symlink-chain": (
        [
            dir_(P + "sub"),
            symlink(P + "sub/l", ".."),
            symlink(P + "esc", "sub/l/../etc"),
            file_(P + "esc/passwd", b"root::0:0::/:/bin/sh\n"),
        ],
        "/products/art/v1_18_03/esc/passwd is under /products/art/v1_18_03/esc, a symlink",
    ),
    "symlink-chain-to-root": (
        [dir_(P + "sub"), symlink(P + "sub/l", "../../.."), symlink(P + "esc", "sub/l/../etc")],
        "symlink /products/art/v1_18_03/esc -> sub/l/../etc resolves to /etc, outside /products",
    ),
    # the link that makes the chain escape comes after the one that uses it
    "symlink-chain-reversed": (
        [symlink(P + "esc", "sub/l/../../../etc"), dir_(P + "sub"), symlink(P + "sub/l", "..")],
        "symlink /products/art/v1_18_03/esc -> sub/l/../../../etc goes back out of /products/art/v1_18_03/sub/l, which is not a directory",
    ),
    "symlink-loop": (
        [symlink(P + "a", "b"), symlink(P + "b", "a/x")],
        "has too many levels of symlinks",
    ),
    "member-under-inside-symlink": (
        [dir_(P + "real"), symlink(P + "alias", "real"), file_(P + "alias/x")],
        "/products/art/v1_18_03/alias/x is under /products/art/v1_18_03/alias, a symlink",
    ),
    "file-under-file": (
        [file_(P + "a"), file_(P + "a/b")],
        "/products/art/v1_18_03/a/b is under /products/art/v1_18_03/a, which is a file",
    ),
    "dir-over-file": (
        [file_(P + "a"), dir_(P + "a")],
        ": products/art/v1_18_03/a is twice in the tarball",
    ),
    "whiteout": ([file_(P + ".wh.lib")], "a whiteout name (.wh.*) is not allowed here"),
    "opaque-whiteout": ([file_(P + ".wh..wh..opq")], "an opaque whiteout (.wh.*) is not allowed"),
    "hardlink-outside-products": (
        [hardlink(P + "x", "../../etc/passwd")],
        "hard link art/v1_18_03/x -> '../../etc/passwd' contains '..'",
    ),
    "hardlink-to-symlink": (
        [symlink(P + "s", "/etc/shadow")],
        "symlink /products/art/v1_18_03/s -> /etc/shadow resolves to /etc/shadow, outside /products",
    ),
    "hardlink-to-missing": (
        [hardlink(P + "x", P + "nothing")],
        "hardlink /products/art/v1_18_03/x -> /products/art/v1_18_03/nothing: the target is not",
    ),
    # device nodes and FIFOs: one rule for every archive source (layer.safepath)
    "char-device": ([special(P + "mem", tarfile.CHRTYPE)], f"member '{P}mem' is a character"),
    "block-device": ([special(P + "sda", tarfile.BLKTYPE)], f"member '{P}sda' is a block device"),
    "fifo": ([special(P + "pipe", tarfile.FIFOTYPE)], f"member '{P}pipe' is a FIFO"),
}


def replace_tarball(mirror: Mirror, data: bytes) -> str:
    (mirror.root / "scisoft" / ART_TARBALL).write_bytes(data)
    return f"art v1_18_03: {mirror.url}/{ART_TARBALL}: "


def build_art(hostile: Hostile, mirror: Mirror, *names: str) -> str:
    recipe = write_recipe(hostile.root / "art.yaml", None, layering="bundle", setup=False)
    return hostile.refused("recipe", "--mirror", mirror.url, str(recipe), names=names)


@pytest.mark.parametrize("case", sorted(TARBALLS))
def test_hostile_product_tarball_members_are_refused(
    case: str, hostile: Hostile, own_mirror: Mirror, cache_dir: Path
) -> None:
    members, message = TARBALLS[case]
    prefix = replace_tarball(own_mirror, bz2.compress(tar_bytes([file_(P + "ok"), *members])))
    build_art(hostile, own_mirror, prefix, message)


@pytest.mark.parametrize(
    "sparse", [old_gnu_sparse(P + "big", 16 << 30), pax_sparse(P + "big", 1 << 40)]
)
def test_sparse_members_are_refused_before_expanding(
    sparse: bytes, hostile: Hostile, own_mirror: Mirror, cache_dir: Path
) -> None:
    prefix = replace_tarball(own_mirror, bz2.compress(sparse))
    build_art(hostile, own_mirror, prefix, f"member '{P}big' is a sparse file")


def test_a_member_past_the_size_limit_is_refused(
    hostile: Hostile, own_mirror: Mirror, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCIBUILD_MAX_MEMBER_SIZE", "1000")
    prefix = replace_tarball(own_mirror, bz2.compress(tar_bytes([file_(P + "big", b"x" * 2000)])))
    build_art(
        hostile,
        own_mirror,
        prefix,
        f"member '{P}big': size in bytes of one archive member 2000 is over the limit 1000",
        "OCIBUILD_MAX_MEMBER_SIZE",
    )


def test_a_decompression_bomb_is_refused_by_ratio(
    hostile: Hostile, own_mirror: Mirror, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCIBUILD_EXPANSION_FLOOR", "65536")
    monkeypatch.setenv("OCIBUILD_MAX_EXPANSION_RATIO", "50")
    bomb = bz2.compress(tar_bytes([file_(P + "zeros", bytes(4 << 20))]))
    prefix = replace_tarball(own_mirror, bomb)
    build_art(hostile, own_mirror, prefix, "more than 50 times its size", "decompression bomb")


def test_a_bzip2_stream_without_its_crc_tail_is_refused(
    hostile: Hostile, own_mirror: Mirror, cache_dir: Path
) -> None:
    data = bz2.compress(tar_bytes([file_(P + "ok", b"fine\n")]))
    prefix = replace_tarball(own_mirror, data[:-4])
    build_art(hostile, own_mirror, prefix, "bzip2 stream truncated or damaged")


@pytest.mark.parametrize("cut", [1, 2, 3, 5, 9])
def test_a_bzip2_stream_cut_short_after_the_tar_end_is_refused(
    cut: int, hostile: Hostile, own_mirror: Mirror, cache_dir: Path
) -> None:
    data = bz2.compress(tar_bytes([file_(P + "ok", b"fine\n")]))
    prefix = replace_tarball(own_mirror, data[:-cut])
    build_art(hostile, own_mirror, prefix)


# -- deb ------------------------------------------------------------------------------------

DEBS: dict[str, tuple[list[Member], str]] = {
    "symlink-chain": (
        [
            dir_("./opt/"),
            dir_("./opt/sub/"),
            symlink("./opt/sub/l", ".."),
            symlink("./opt/esc", "sub/l/../../etc"),
            file_("./opt/esc/cron", b"* * * * * root sh\n"),
        ],
        "hostile_1.0_amd64: /opt/esc/cron is under /opt/esc, a symlink",
    ),
    "symlink-chain-above-root": (
        [
            dir_("./opt/"),
            dir_("./opt/sub/"),
            symlink("./opt/sub/l", "../.."),
            symlink("./opt/esc", "sub/l/../../etc"),
        ],
        "hostile_1.0_amd64: symlink /opt/esc -> sub/l/../../etc climbs above the image root",
    ),
    "hardlink-outside-package": (
        [dir_("./etc/"), hardlink("./etc/shadow-copy", "./etc/shadow")],
        "hostile_1.0_amd64: hardlink /etc/shadow-copy -> /etc/shadow: the target is not a file",
    ),
    "file-under-file": (
        [dir_("./etc/"), file_("./etc/a"), file_("./etc/a/b")],
        "hostile_1.0_amd64: /etc/a/b is under /etc/a, which is a file",
    ),
    "whiteout": (
        [dir_("./etc/"), file_("./etc/.wh.passwd")],
        "hostile_1.0_amd64: /etc/.wh.passwd: a whiteout name",
    ),
    "opaque-whiteout": (
        [dir_("./etc/"), file_("./etc/.wh..wh..opq")],
        "hostile_1.0_amd64: /etc/.wh..wh..opq: an opaque whiteout",
    ),
    "char-device": (
        [dir_("./dev/"), special("./dev/mem", tarfile.CHRTYPE)],
        "member './dev/mem' is a character device: no archive source takes device nodes",
    ),
    "block-device": (
        [dir_("./dev/"), special("./dev/sda", tarfile.BLKTYPE)],
        "member './dev/sda' is a block device",
    ),
    "fifo": ([dir_("./opt/"), special("./opt/pipe", tarfile.FIFOTYPE)], "'./opt/pipe' is a FIFO"),
}


def deb_build(
    hostile: Hostile,
    debs: dict[str, bytes],
    fields: dict[str, dict[str, str]],
    package: str,
    *names: str,
) -> str:
    url = apt_repo(hostile.root / "apt", debs, fields)
    recipe = hostile.recipe(deb_recipe(url, package), "deb.yaml")
    return hostile.refused("recipe", str(recipe), names=names)


@pytest.mark.parametrize("case", sorted(DEBS))
def test_hostile_deb_payloads_are_refused(case: str, hostile: Hostile, cache_dir: Path) -> None:
    members, message = DEBS[case]
    deb = deb_bytes({"Package": "hostile"}, members)
    name = "hostile_1.0_amd64.deb"
    deb_build(hostile, {name: deb}, {name: {"Package": "hostile"}}, "hostile", message)


def test_a_sparse_deb_member_is_refused(hostile: Hostile, cache_dir: Path) -> None:
    deb = deb_bytes({"Package": "hostile"}, [], data=pax_sparse("./opt/big", 1 << 40))
    name = "hostile_1.0_amd64.deb"
    deb_build(
        hostile,
        {name: deb},
        {name: {"Package": "hostile"}},
        "hostile",
        "member './opt/big' is a sparse file",
    )


@pytest.mark.parametrize("where", ["index", "control"])
def test_a_deb_package_name_that_is_a_path_is_refused(
    where: str, hostile: Hostile, cache_dir: Path
) -> None:
    evil = "../../etc/cron.d/evil"
    name = "evil_1.0_amd64.deb"
    index_name = evil if where == "index" else "evil"
    deb = deb_bytes({"Package": evil if where == "control" else "evil"}, [dir_("./opt/")])
    error = deb_build(
        hostile,
        {name: deb},
        {name: {"Package": index_name}},
        index_name,
        f"'{evil}' is not a Debian package name",
    )
    assert ("Packages" in error) if where == "index" else ("evil_1.0_amd64" in error)


def test_a_deb_filename_leaving_the_archive_is_refused(hostile: Hostile, cache_dir: Path) -> None:
    url = apt_repo(
        hostile.root / "apt",
        {"xx_1.0_amd64.deb": deb_bytes({"Package": "xx"}, [])},
        {"xx_1.0_amd64.deb": {"Package": "xx"}},
    )
    packages = hostile.root / "apt/dists/test/main/binary-amd64/Packages"
    text = packages.read_text().replace("Filename: pool/", "Filename: pool/../../../")
    packages.write_text(text)
    release = hostile.root / "apt/dists/test/Release"
    data = packages.read_bytes()
    release.write_text(
        "Suite: test\nArchitectures: amd64\nComponents: main\nSHA256:\n"
        f" {hashlib.sha256(data).hexdigest()} {len(data)} main/binary-amd64/Packages\n"
    )
    recipe = hostile.recipe(deb_recipe(url, "xx"), "deb.yaml")
    hostile.refused("recipe", str(recipe), names=("package xx", "leaves the archive"))


def test_tar_types_used_by_the_suite_are_what_they_claim() -> None:
    # the generators above must make what the cases say, or the cases prove nothing
    members = tarfile.open(fileobj=io.BytesIO(old_gnu_sparse("s", 1 << 20)))
    (info,) = list(members)
    assert info.issparse() and info.size == 1 << 20


# -- rpm ------------------------------------------------------------------------------------

RPM_SPEC = """\
Name: {name}
Version: 1.0
Release: 1
Summary: hostile
License: BSD
AutoReqProv: no
BuildArch: x86_64

%description
hostile

%install
mkdir -p %{{buildroot}}/opt/sub %{{buildroot}}/opt/real
{install}

%files
{files}
"""

RPMS = {
    "symlink-chain": (
        "ln -s .. %{buildroot}/opt/sub/l\nln -s sub/l/../../../etc %{buildroot}/opt/esc",
        "/opt/sub\n/opt/sub/l\n/opt/esc",
        "hostile-1.0-1.x86_64: symlink /opt/esc -> sub/l/../../../etc climbs above the image root",
    ),
    "member-under-symlink": (
        "printf x > %{buildroot}/opt/real/x\nln -s real %{buildroot}/opt/alias",
        "/opt/real\n/opt/alias\n/opt/alias/x",
        "hostile-1.0-1.x86_64: /opt/alias/x is under /opt/alias, a symlink",
    ),
    "whiteout": (
        "printf x > %{buildroot}/opt/real/.wh.x",
        "/opt/real\n/opt/real/.wh.x",
        "hostile-1.0-1.x86_64: /opt/real/.wh.x: a whiteout name",
    ),
    "char-device": (
        "",
        "%dev(c, 1, 1) /opt/mem",
        "hostile-1.0-1.x86_64: /opt/mem is a character device: no archive source takes device",
    ),
    "block-device": ("", "%dev(b, 8, 0) /opt/sda", "hostile-1.0-1.x86_64: /opt/sda is a block"),
    "fifo": (
        "mkfifo %{buildroot}/opt/pipe",
        "/opt/pipe",
        "hostile-1.0-1.x86_64: /opt/pipe is a FIFO",
    ),
}


@pytest.mark.parametrize("case", sorted(RPMS))
def test_hostile_rpm_payloads_are_refused(case: str, hostile: Hostile, cache_dir: Path) -> None:
    install, listed, message = RPMS[case]
    spec = hostile.root / "hostile.spec"
    spec.write_text(RPM_SPEC.format(name="hostile", install=install, files=listed))
    top, repo = hostile.root / "rpmbuild", hostile.root / "yum"
    subprocess.run(
        [
            "rpmbuild",
            "-bb",
            "--quiet",
            "--define",
            f"_topdir {top}",
            "--define",
            "debug_package %{nil}",
            "--define",
            "_build_id_links none",
            str(spec),
        ],
        check=True,
        capture_output=True,
    )
    repo.mkdir()
    for rpm in (top / "RPMS").rglob("*.rpm"):
        rpm.rename(repo / rpm.name)
    subprocess.run(["createrepo_c", "--quiet", str(repo)], check=True, capture_output=True)
    recipe = hostile.recipe(
        "images:\n  - name: a/rpm\n    layers:\n"
        f"      - rpm: {{repos: [{{url: {repo.as_uri()!r}, trusted: true}}], packages: [hostile]}}\n",
        "rpm.yaml",
    )
    hostile.refused("recipe", str(recipe), names=(message,))


def test_a_symlink_chain_across_layers_is_refused(tmp_path: Path) -> None:
    # two layers of one bundle: the second cannot see the first's `l -> ..`, so a `..` out of
    # what it does not itself create as a directory is refused
    from ocibuild.compression import Compression
    from ocibuild.errors import UnsafePathError
    from ocibuild.layer.writer import write_layer
    from ocibuild.ups.tarball import ProductTarball, tarball_entries

    def layer(name: str, members: list[Member]) -> None:
        data = bz2.compress(tar_bytes(members))
        path = tmp_path / f"{name}.tar.bz2"
        path.write_bytes(data)
        tarball = ProductTarball(name, "v1", f"http://m/{name}", path, len(data), "")
        write_layer(tarball_entries([tarball], "products"), io.BytesIO(), Compression("none"))

    layer("p", [dir_("p/v1/"), symlink("p/v1/l", "../..")])
    with pytest.raises(UnsafePathError, match=r"goes back out of /products/p/v1/l, which is not"):
        layer("q", [dir_("q/v1/"), symlink("q/v1/esc", "../../p/v1/l/../etc")])
