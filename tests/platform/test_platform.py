"""recipes/platform.yaml, built once from this machine's Debian archive and the real test
wheels: what the packages' maintainer scripts would have made (compared with the real
update-alternatives and update-ca-certificates run over the same files), and the image at work
in podman (as its non-root user) and under ch-run from a read-only squashfs: the compiler with
boost, pip's view of the stack, imports, uproot, an entry point, the CA bundle, and no module
compiled at import. Built again with another cache state: the same digest."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from packaging.utils import canonicalize_name

from ocibuild.builder import BuildSettings, BuiltImage, build_recipe
from ocibuild.layer.reader import decompressed, members
from ocibuild.ospkg import basefiles
from ocibuild.ospkg.alternatives import install_calls
from ocibuild.store import Store
from ocibuild.store.export import RootfsOptions, export_image
from tests.events import Events
from tests.hpc.conftest import user_env
from tests.platform.conftest import Platform
from tests.podman import Podman

REF = "localhost/ocibuild/platform:12"
HELLO_CC = r"""#include <boost/program_options.hpp>
#include <iostream>
namespace po = boost::program_options;
int main(int argc, char** argv) {
  po::options_description options("hello");
  options.add_options()("name", po::value<std::string>()->default_value("world"), "who");
  po::variables_map vm;
  po::store(po::parse_command_line(argc, argv, options), vm);
  std::cout << "hello " << vm["name"].as<std::string>() << std::endl;
}
"""
# compile events of module sources during the imports (the import system compiles a module
# whose pyc is missing or stale; exec/eval of strings are not modules)
IMPORTS = (
    "import sys\n"
    "compiled = []\n"
    "sys.addaudithook(lambda e, a: e == 'compile' and str(a[1]).endswith('.py')"
    " and compiled.append(a[1]))\n"
    "import numpy, awkward, uproot, hist, coffea, ssl, urllib.request\n"
    "print(len(compiled), compiled[:3])\n"
)
CA = (
    "import os, ssl\n"
    "paths = ssl.get_default_verify_paths()\n"
    "print(os.path.realpath(paths.cafile), ssl.create_default_context().cert_store_stats()['x509_ca'])\n"
)
ROOT_FILE = (
    "import numpy, uproot\n"
    "with uproot.recreate('/tmp/t.root') as f:\n"
    "    f['t'] = {'x': numpy.arange(5, dtype='i4')}\n"
    "print(uproot.open('/tmp/t.root')['t']['x'].array(library='np').tolist())\n"
)


def layer_files(store: Store, image: BuiltImage, index: int) -> dict[str, tuple[str, bytes]]:
    """A layer of `image` as path -> ("link", target) or ("file", content)."""
    descriptor = image.manifest.layers[index]
    out = {}
    with (
        store.open_blob(descriptor.digest) as blob,
        decompressed(blob, descriptor.media_type) as tar,
    ):
        for info, archive in members(tar, "layer"):
            if info.issym():
                out[info.name] = ("link", info.linkname.encode())
            elif info.isfile():
                f = archive.extractfile(info)
                assert f is not None
                out[info.name] = ("file", f.read())
    return out


Meta = tuple[str, int, int, str]  # kind, mode, gid, link target or content sha256


def layer_meta(store: Store, image: BuiltImage, index: int) -> dict[str, Meta]:
    """Every entry of a layer of `image`: path -> (kind, mode, gid, target or sha256)."""
    descriptor = image.manifest.layers[index]
    out: dict[str, Meta] = {}
    with (
        store.open_blob(descriptor.digest) as blob,
        decompressed(blob, descriptor.media_type) as tar,
    ):
        for info, archive in members(tar, "layer"):
            name = info.name.rstrip("/")
            if info.issym():
                out[name] = ("link", 0o777, info.gid, info.linkname)
            elif info.isdir():
                out[name] = ("dir", info.mode, info.gid, "")
            elif info.isfile():
                f = archive.extractfile(info)
                assert f is not None
                out[name] = ("file", info.mode, info.gid, hashlib.sha256(f.read()).hexdigest())
    return out


def tree(root: Path) -> dict[str, Meta]:
    """A directory tree's paths -> (kind, mode, gid, link target or size)."""
    out: dict[str, Meta] = {}
    for path in root.rglob("*"):
        st = path.lstat()
        kind = "link" if path.is_symlink() else "dir" if path.is_dir() else "file"
        mode = 0o777 if kind == "link" else st.st_mode & 0o7777
        detail = os.readlink(path) if kind == "link" else str(st.st_size) if kind == "file" else ""
        out[str(path.relative_to(root))] = (kind, mode, st.st_gid, detail)
    return out


def with_content(root: Path, path: str, meta: Meta) -> Meta:
    """`meta` of a tree's file with its content's sha256 in place of its size."""
    if meta[0] != "file":
        return meta
    return (*meta[:3], hashlib.sha256((root / path).read_bytes()).hexdigest())


def packages_only(platform: Platform, tmp_path: Path) -> Path:
    """The platform image's deb layer alone (a cache hit), exported as a directory."""
    recipe = yaml.safe_load(platform.recipe.read_text())
    recipe["images"][0]["layers"] = recipe["images"][0]["layers"][:1]
    recipe["images"][0]["name"] = "localhost/ocibuild/platform-packages:12"
    path = platform.recipe.with_name("packages.yaml")
    path.write_text(yaml.safe_dump(recipe))
    (built,) = build_recipe(path, platform.store, platform.settings, Events())
    assert isinstance(built, BuiltImage) and built.layers[0].cached
    root = tmp_path / "root"
    export_image(platform.store, built.ref, "dir", root, rootfs=RootfsOptions())
    return root


def test_configure_is_what_the_real_tools_make(platform_image: Platform, tmp_path: Path) -> None:
    built = platform_image.built
    assert isinstance(built, BuiltImage)
    configured = layer_files(platform_image.store, built, 1)
    root = packages_only(platform_image, tmp_path)

    # base-files' own postinst, run for a fresh install with DPKG_ROOT (dpkg's --root)
    script = (root / "var/lib/dpkg/info/base-files.postinst").read_text()
    listed = {
        line
        for f in (root / "var/lib/dpkg/info").glob("*.list")
        for line in f.read_text().splitlines()
    }
    files = {
        str(p.relative_to(root)): p.read_bytes() for p in (root / "usr/share/base-files").iterdir()
    }
    group = (root / "usr/share/base-passwd/group.master").read_bytes()
    ours_made, _ = basefiles.made(script, files, listed.__contains__, basefiles.group_ids(group))
    before = tree(root)
    subprocess.run(
        ["sh", str(root / "var/lib/dpkg/info/base-files.postinst"), "configure"],
        env={**os.environ, "DPKG_ROOT": str(root)}, check=True, capture_output=True,
    )  # fmt: skip
    after = tree(root)
    changed = {p for p, v in after.items() if before.get(p) != v}
    assert {"etc/profile", "root/.profile", "var/run", "usr/local/bin", "var/log/wtmp"} <= changed
    made = {m.path for m in ours_made}  # (the export makes /mnt: the script then need not)
    assert changed <= made
    layer = layer_meta(platform_image.store, built, 1)
    assert {p: layer[p] for p in made} == {p: with_content(root, p, after[p]) for p in made}

    # the real update-alternatives, given the calls the postinsts make
    names = set()
    for script in sorted(glob.glob(f"{root}/var/lib/dpkg/info/*.postinst")):
        package = Path(script).name.removesuffix(".postinst").partition(":")[0]
        for call in install_calls(package, Path(script).read_text(errors="replace"))[0]:
            names.add(call.name)
            slaves = [w for s in call.slaves for w in ("--slave", s.link, s.name, s.path)]
            subprocess.run(
                ["update-alternatives", "--root", str(root), "--quiet", "--install",
                 call.link, call.name, call.path, str(call.priority), *slaves],
                check=True, capture_output=True,
            )  # fmt: skip
    assert {"cc", "c++", "c89", "c99", "cpp", "awk", "which", "lzma"} <= names
    theirs = {}
    for name in names:
        theirs[f"var/lib/dpkg/alternatives/{name}"] = (
            "file",
            (root / "var/lib/dpkg/alternatives" / name).read_bytes(),
        )
    for link in (root / "etc/alternatives").iterdir():
        if link.is_symlink():
            theirs[f"etc/alternatives/{link.name}"] = ("link", os.readlink(link).encode())
    ours = {
        p: v
        for p, v in configured.items()
        if p.startswith(("etc/alternatives/", "var/lib/dpkg/alternatives/"))
    }
    assert ours == theirs
    assert configured["usr/bin/c++"] == ("link", b"/etc/alternatives/c++")
    assert os.readlink(root / "usr/bin/c++") == "/etc/alternatives/c++"

    # the image's own update-ca-certificates, run by the host's shell and openssl over the
    # same files, with the configuration the layer wrote
    (root / "etc/ca-certificates.conf").write_bytes(configured["etc/ca-certificates.conf"][1])
    subprocess.run(
        ["sh", str(root / "usr/sbin/update-ca-certificates"), "--sysroot", str(root), "--hooksdir", ""],
        check=True, capture_output=True,
    )  # fmt: skip
    theirs = {}
    for path in (root / "etc/ssl/certs").iterdir():
        key = f"etc/ssl/certs/{path.name}"
        if path.is_symlink():
            theirs[key] = ("link", os.readlink(path).removeprefix(str(root) + "/").encode())
        else:
            theirs[key] = ("file", path.read_bytes())
    ours = {p: v for p, v in configured.items() if p.startswith("etc/ssl/certs/")}
    assert len(ours) > 250 and ours == theirs

    # ld.so.cache is not made: every library the real ldconfig would list in it is in a
    # directory the image's own loader searches without one
    subprocess.run(["ldconfig", "-r", str(root)], check=True, capture_output=True)
    cached = subprocess.run(
        ["ldconfig", "-C", str(root / "etc/ld.so.cache"), "-p"],
        check=True, capture_output=True, text=True,
    ).stdout.splitlines()  # fmt: skip
    cached = [line for line in cached if " => " in line]
    loader = subprocess.run(
        [str(root / "lib64/ld-linux-x86-64.so.2"), "--help"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    searched = {line.split()[0] for line in loader.splitlines() if "(system search path)" in line}
    assert len(cached) > 50
    assert {os.path.dirname(line.split(" => ")[1]) for line in cached} <= searched
    assert "/etc/ld.so.cache" not in {"/" + p for p in configured}
    assert configured["usr/bin/lzcat"] == ("link", b"/etc/alternatives/lzcat")  # xz's slaves

    # bytecode: every module of the stdlib and of Debian's Python packages has its pyc
    sources = {
        str(p.relative_to(root))
        for d in ("usr/lib/python3.11", "usr/lib/python3/dist-packages")
        for p in (root / d).rglob("*.py")
    }
    pycs = {p for p in configured if p.endswith(".cpython-311.pyc")}
    shutil.rmtree(root)
    assert len(pycs) > 1000
    assert len(pycs) >= len(sources) - 10  # sources that do not compile (lib2to3 test data)


def test_platform_in_podman(platform_image: Platform, podman: Podman, tmp_path: Path) -> None:
    """podman runs the image's tree (`--rootfs`) with the image's config: its user, env and
    working directory. (Loaded into podman's vfs storage, this image's four layers would be
    four full copies of its 2 GB tree.)"""
    built = platform_image.built
    assert isinstance(built, BuiltImage)
    root = tmp_path / "rootfs"
    export_image(platform_image.store, built.ref, "dir", root, rootfs=RootfsOptions())
    config = built.config.config
    assert config.user == "1000:1000"
    settings = [w for e in config.env for w in ("--env", e)]
    settings += ["--user", config.user, "--workdir", config.working_dir or "/"]
    try:
        script = (
            f"cat > /tmp/hello.cc <<'EOF'\n{HELLO_CC}EOF\n"
            "c++ -O2 /tmp/hello.cc -o /tmp/hello -lboost_program_options && /tmp/hello --name platform\n"
            "id -un; python3 -m pip check; python3 -m pip list --format json; numpy-config --version\n"
            f"python3 -c \"$(cat <<'EOF'\n{IMPORTS}EOF\n)\"\n"
            f"python3 -c \"$(cat <<'EOF'\n{IMPORTS}EOF\n)\"\n"
            f"python3 -c \"$(cat <<'EOF'\n{CA}EOF\n)\"\n"
            f"python3 -c \"$(cat <<'EOF'\n{ROOT_FILE}EOF\n)\"\n"
        )
        lines = podman(
            "run", "--rm", "--network", "none", *settings, "--rootfs", str(root), "bash", "-c", script
        ).stdout.splitlines()  # fmt: skip
        hello, user, check, listed, numpy_version, first, second, ca, root_file = lines
        assert hello == "hello platform" and user == "hep"
        assert check == "No broken requirements found."
        pip_list = {canonicalize_name(p["name"]): p["version"] for p in json.loads(listed)}
        assert platform_image.locked.items() <= pip_list.items()
        assert {"numpy", "awkward", "uproot", "hist", "coffea"} <= set(platform_image.locked)
        assert numpy_version == platform_image.locked["numpy"]
        assert first == "0 []" and second == "0 []"  # nothing compiled, as the non-root user
        cafile, count = ca.split()
        assert cafile == "/etc/ssl/certs/ca-certificates.crt" and int(count) > 100
        assert root_file == "[0, 1, 2, 3, 4]"
    finally:
        shutil.rmtree(root)


def test_platform_under_ch_run(platform_image: Platform, tmp_path: Path) -> None:
    image = tmp_path / "platform.sqfs"
    export_image(
        platform_image.store, platform_image.built.ref, "squashfs", image, rootfs=RootfsOptions()
    )
    script = (
        f"python3 -c \"$(cat <<'EOF'\n{IMPORTS}EOF\n)\"\n"
        f"python3 -c \"$(cat <<'EOF'\n{CA}EOF\n)\"\n"
        "cc --version | head -1; c++ --version | head -1\n"
    )
    proc = subprocess.run(
        ["ch-run", "--set-env", str(image), "--", "bash", "-c", script],
        env=user_env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    image.unlink()
    assert proc.returncode == 0, proc.stderr
    imports, ca, cc, cxx = proc.stdout.splitlines()
    assert imports == "0 []"  # a read-only squashfs: every module has its pyc
    assert ca.startswith("/etc/ssl/certs/ca-certificates.crt ")
    assert cc.startswith("cc (Debian 12") and cxx.startswith("c++ (Debian 12")


@pytest.mark.slow
def test_platform_is_reproducible(platform_image: Platform, tmp_path: Path) -> None:
    """Again with an empty download cache and another store (no layer cache), the lock kept,
    other jobs: the same image."""
    shutil.copy(platform_image.recipe.with_suffix(".yaml.lock"), tmp_path / "platform.yaml.lock")
    recipe = tmp_path / "platform.yaml"
    shutil.copy(platform_image.recipe, recipe)
    settings = BuildSettings(
        cache_dir=tmp_path / "cache", index_url=platform_image.settings.index_url, jobs=1
    )
    (again,) = build_recipe(recipe, Store.open(tmp_path / "store"), settings, Events())
    shutil.rmtree(tmp_path / "store")
    shutil.rmtree(tmp_path / "cache")
    assert again.descriptor.digest == platform_image.built.descriptor.digest
