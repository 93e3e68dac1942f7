"""An image for linux/amd64 and linux/arm64 from one recipe (Debian's arm64 archive, numpy's
aarch64 wheel): an index in the store that skopeo and umoci read, pushed with its images under
one digest, an arm64 image of aarch64 binaries that runs under Debian's qemu-user-static in
podman; and a UPS layer that refuses arm64."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocibuild.builder import BuildSettings, BuiltIndex, build_recipe
from ocibuild.cli import main
from ocibuild.errors import SourceError
from ocibuild.oci import MediaType
from ocibuild.remote import RemoteOptions, push_image
from ocibuild.store import Store
from ocibuild.store.export import RootfsOptions, export_image
from tests.cli import fail, run
from tests.events import Events
from tests.podman import Podman
from tests.python.pyindex import IndexServer
from tests.registry.conftest import Registry, start_registry

REF = "localhost/ocibuild/multi:1"
RECIPE = """\
source_date_epoch: 1451606400
platforms: [linux/amd64, linux/arm64]
images:
  - name: {ref}
    layers:
      - deb:
          repos:
            - {{url: "${{DEBIAN_MIRROR:-http://deb.debian.org/debian}}", suite: "${{DEBIAN_SUITE:-bookworm}}"}}
          packages: [base-files, base-passwd, bash, coreutils, dash, libstdc++6, python3]
      - configure: {{effects: [alternatives, bytecode]}}
      - wheels: {{requirements: [numpy], index_url: "{index}"}}
    cmd: ["/bin/bash"]
"""
QEMU = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")


@pytest.fixture(scope="module")
def multi(
    tmp_path_factory: pytest.TempPathFactory, build_env: IndexServer
) -> tuple[Store, BuiltIndex]:
    work = tmp_path_factory.mktemp("multi")
    recipe = work / "multi.yaml"
    recipe.write_text(RECIPE.format(ref=REF, index=build_env.simple))
    store = Store.open(work / "store")
    (built,) = build_recipe(recipe, store, BuildSettings(cache_dir=work / "cache"), Events())
    assert isinstance(built, BuiltIndex)
    yield store, built
    shutil.rmtree(work)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    running = start_registry(tmp_path_factory.mktemp("registry"))
    yield running
    running.stop()


def test_the_store_holds_an_index(multi: tuple[Store, BuiltIndex], tmp_path: Path) -> None:
    store, built = multi
    assert built.descriptor.media_type == MediaType.DOCKER_MANIFEST_LIST  # every layer gzip
    listed = json.loads(store.read_blob(built.descriptor.digest))
    platforms = [(m["platform"]["os"], m["platform"]["architecture"]) for m in listed["manifests"]]
    assert platforms == [("linux", "amd64"), ("linux", "arm64")]
    # skopeo reads the index's OCI view, and picks a platform from it
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", f"oci:{store.root}:{REF}"], capture_output=True, check=True
    ).stdout
    view = json.loads(raw)
    assert view["mediaType"] == MediaType.OCI_INDEX
    assert [m["annotations"]["dev.ocibuild.image.manifest"] for m in view["manifests"]] == [
        m["digest"] for m in listed["manifests"]
    ]
    arm = subprocess.run(
        ["skopeo", "inspect", "--override-arch", "arm64", f"oci:{store.root}:{REF}"],
        capture_output=True, check=True, text=True,
    )  # fmt: skip
    assert json.loads(arm.stdout)["Architecture"] == "arm64"
    # umoci reads one image of a tag: each platform's is tagged too
    unpacked = tmp_path / "arm64"
    subprocess.run(
        ["umoci", "unpack", "--rootless", "--image", f"{store.root}:{REF}-linux-arm64", str(unpacked)],
        capture_output=True, check=True,
    )  # fmt: skip
    assert elf_machine(unpacked / "rootfs/bin/bash") == "AArch64"


def elf_machine(path: Path) -> str:
    """The `Machine:` readelf reads in an ELF file's header."""
    header = subprocess.run(
        ["readelf", "-h", str(path)], capture_output=True, text=True, check=True
    )
    line = next(x for x in header.stdout.splitlines() if x.strip().startswith("Machine:"))
    return line.split(":", 1)[1].strip()


def test_the_arm64_image_is_aarch64(multi: tuple[Store, BuiltIndex], tmp_path: Path) -> None:
    store, _ = multi
    for platform, machine in (("linux/arm64", "AArch64"), ("linux/amd64", "X86-64")):
        root = tmp_path / platform.replace("/", "-")
        export_image(store, REF, "dir", root, rootfs=RootfsOptions(), platform=platform)
        for binary in ("bin/bash", "usr/bin/python3.11"):
            assert machine in elf_machine(root / binary), binary
        libs = list(
            (root / "usr/local/lib/python3.11/dist-packages/numpy/_core").glob(
                "_multiarray_umath*.so"
            )
        )
        assert len(libs) == 1 and ("aarch64" in libs[0].name) == (machine == "AArch64")


def test_podman_runs_the_arm64_image(
    multi: tuple[Store, BuiltIndex], podman: Podman, tmp_path: Path
) -> None:
    assert QEMU.exists(), f"{QEMU} is missing: scripts/setup-test-env registers qemu-user-static"
    store, _ = multi
    archive = tmp_path / "arm64.tar"
    export_image(
        store,
        REF,
        "oci-archive",
        archive,
        tags=["localhost/ocibuild/multi:arm64"],
        platform="linux/arm64",
    )
    podman("load", "-i", str(archive))
    try:
        out = podman.run(
            "localhost/ocibuild/multi:arm64",
            "sh", "-c", "uname -m; python3 -c 'import numpy; print(numpy.arange(4).sum())'",
            extra=("--arch", "arm64"),
        )  # fmt: skip
        assert out.splitlines() == ["aarch64", "6"]
    finally:
        podman("rmi", "localhost/ocibuild/multi:arm64", check=False)


def test_push_sends_the_index_and_its_images(
    multi: tuple[Store, BuiltIndex], registry: Registry
) -> None:
    store, built = multi
    result = push_image(store, REF, RemoteOptions(), Events(), to=f"{registry.host}/hep/multi:1")
    assert result.digest == built.descriptor.digest
    raw = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{registry.host}/hep/multi:1"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    assert raw == store.read_blob(built.descriptor.digest)  # one digest, build to registry
    for image in built.images:  # each image's manifest, as stored, by its digest
        fetched = subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", "--raw",
             f"docker://{registry.host}/hep/multi@{image.descriptor.digest}"],
            capture_output=True, check=True,
        ).stdout  # fmt: skip
        assert fetched == store.read_blob(image.descriptor.digest)
        assert json.loads(fetched)["config"]["digest"] in registry.blob_digests()


def test_ups_refuses_arm64(tmp_path: Path) -> None:
    recipe = tmp_path / "ups.yaml"
    recipe.write_text(
        "images:\n"
        "  - name: localhost/ocibuild/ups-arm:1\n"
        "    platforms: [linux/arm64]\n"
        "    layers:\n"
        "      - ups: {bundle: art-v1_18_03, os: slf6, qualifiers: e9, build: prof}\n"
    )
    store = Store.open(tmp_path / "store")
    with pytest.raises(SourceError) as e:
        build_recipe(recipe, store, BuildSettings(cache_dir=tmp_path / "cache"), Events())
    assert str(e.value) == (
        f"{recipe}:5:14: ups: os slf6 is the UPS flavor Linux64bit+2.6-2.12, whose products run "
        "on linux/amd64: not on linux/arm64 (UPS has no products for it; build this image for "
        "linux/amd64 only)"
    )
    assert store.refs() == {} and not os.listdir(store.blobs)


def test_the_cli_names_the_platforms(
    multi: tuple[Store, BuiltIndex], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, built = multi
    listed = run(capsys, "--store", str(store.root), "images", "--digests")
    rows = {line.split()[0]: line.split()[1] for line in listed.splitlines()[1:]}
    assert rows[REF] == built.descriptor.digest  # the index's digest, as the build printed it
    assert rows[f"{REF}-linux-arm64"] == built.images[1].descriptor.digest
    err = fail(
        capsys, "--store", str(store.root), "export", REF, "--platform", "linux/s390x",
        "-o", str(tmp_path / "x.tar"),
    )  # fmt: skip
    assert "no image for linux/s390x in its index (it has: linux/amd64, linux/arm64" in err
    assert not (tmp_path / "x.tar").exists()
    code = main(["recipe", str(tmp_path / "none.yaml"), "--platform", "linux/amd64,linux/sparc"])
    _, err = capsys.readouterr()
    assert code == 2 and "unknown architecture 'sparc'" in err
