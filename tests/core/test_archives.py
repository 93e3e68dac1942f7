"""`ocibuild load`, `export -o -`, `tag` and `images --format json`, with real podman and skopeo
making and taking the archives."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from ocibuild.cli import main
from ocibuild.store import Store
from tests.cli import fail, run
from tests.podman import Podman
from tests.registry.images import busybox_layer, make_image, random_layer

REF = "localhost/ocibuild-test/archive:1"


@pytest.fixture(scope="module")
def archives(
    tmp_path_factory: pytest.TempPathFactory, podman: Podman, busybox: Path
) -> dict[str, Path]:
    """The image made here, and the archives podman and skopeo write of it."""
    root = tmp_path_factory.mktemp("archives")
    store = Store.open(root / "origin")
    make_image(
        store,
        [REF],
        [busybox_layer(busybox), random_layer("payload", 20_000)],
        cmd=["/bin/echo", "loaded and running"],
    )
    made = {"origin": store.root}
    exported = root / "exported.tar"
    assert main(["--store", str(store.root), "-q", "export", REF, "-o", str(exported)]) == 0
    podman("load", "-i", str(exported))
    for fmt in ("oci-archive", "docker-archive"):
        made[f"podman-{fmt}"] = root / f"podman-{fmt}.tar"
        podman("save", "--format", fmt, "-o", str(made[f"podman-{fmt}"]), REF)
        made[f"skopeo-{fmt}"] = root / f"skopeo-{fmt}.tar"
        subprocess.run(
            [
                "skopeo",
                "copy",
                "-q",
                f"oci-archive:{exported}",
                f"{fmt}:{made[f'skopeo-{fmt}']}:{REF}",
            ],
            check=True,
        )
    podman("rmi", REF)
    return made


def store_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    "kind",
    ["podman-oci-archive", "podman-docker-archive", "skopeo-oci-archive", "skopeo-docker-archive"],
)
def test_load_what_podman_and_skopeo_save(
    kind: str, archives: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    origin = Store.open(archives["origin"]).image(REF)
    store = tmp_path / "store"

    out = run(capsys, "--store", str(store), "load", str(archives[kind]))

    loaded = Store.open(store)
    image = loaded.image(REF)
    assert out == f"{REF}@{image.descriptor.digest}\n"
    # the config (the image ID) and the layers' content are the ones built
    assert image.manifest.config.digest == origin.manifest.config.digest
    assert image.config.diff_ids == origin.config.diff_ids
    for blob in (image.descriptor, image.manifest.config, *image.manifest.layers):
        data = loaded.blob_path(blob.digest).read_bytes()
        assert hashlib.sha256(data).hexdigest() == blob.digest.hex
    if kind == "skopeo-oci-archive":  # an OCI layout copied as it is: the same manifest
        assert image.descriptor.digest == origin.descriptor.digest
    assert not [p for p in (store / "blobs" / "sha256").iterdir() if p.name.startswith(".tmp")]


def test_a_loaded_image_runs_in_podman_after_export_to_stdout(
    archives: dict[str, Path], tmp_path: Path, podman: Podman, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    with open(archives["podman-docker-archive"], "rb") as archive:
        loaded = subprocess.run(
            ["ocibuild", "--store", str(store), "load", "-", "--tag", "localhost/t/reloaded:2"],
            stdin=archive,
            check=False,
            capture_output=True,
            text=True,
        )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.startswith("localhost/t/reloaded:2@sha256:")

    export = subprocess.Popen(
        ["ocibuild", "--store", str(store), "export", "localhost/t/reloaded:2", "-o", "-"],
        stdout=subprocess.PIPE,
    )
    load = subprocess.run(
        [*podman.base_args, "load"],
        stdin=export.stdout,
        check=False,
        env=podman.env,
        capture_output=True,
        text=True,
    )
    assert export.wait() == 0 and load.returncode == 0, load.stderr
    assert not Path("-").exists() and not (tmp_path / "-").exists()
    assert "localhost/t/reloaded:2" in load.stdout
    assert podman.run("localhost/t/reloaded:2").strip() == "loaded and running"
    podman("rmi", "localhost/t/reloaded:2")


def test_export_to_stdout_is_the_archive_export_to_a_file_writes(
    archives: dict[str, Path], tmp_path: Path
) -> None:
    store = str(archives["origin"])
    for fmt in ("oci-archive", "docker-archive"):
        to_file = tmp_path / f"{fmt}.tar"
        assert (
            main(["--store", store, "-q", "export", REF, "--format", fmt, "-o", str(to_file)]) == 0
        )
        piped = subprocess.run(
            ["ocibuild", "--store", store, "export", REF, "--format", fmt, "-o", "-"],
            capture_output=True,
            check=True,
        )
        assert piped.stdout == to_file.read_bytes()
        assert piped.stderr == b""


def test_load_a_compressed_archive(
    archives: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    packed = tmp_path / "image.tar.gz"
    packed.write_bytes(gzip.compress(archives["podman-docker-archive"].read_bytes(), 1))
    run(capsys, "--store", str(tmp_path / "store"), "load", str(packed))
    assert REF in Store.open(tmp_path / "store").refs()


def rewrite(source: Path, target: Path, change: dict[str, bytes | None]) -> None:
    """A copy of a tar with the members of `change` replaced (None: left out)."""
    with tarfile.open(source) as old, tarfile.open(target, "w") as new:
        for info in old:
            if info.name in change:
                data = change[info.name]
                if data is None:
                    continue
                info.size = len(data)
                new.addfile(info, io.BytesIO(data))
            else:
                new.addfile(info, old.extractfile(info) if info.isfile() else None)


def flipped(path: Path, name: str) -> bytes:
    with tarfile.open(path) as tar:
        data = bytearray(tar.extractfile(name).read())  # type: ignore[union-attr]
    data[len(data) // 2] ^= 0xFF
    return bytes(data)


def test_bad_archives_are_refused_and_the_store_is_unchanged(
    archives: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    run(capsys, "--store", str(store), "load", str(archives["skopeo-oci-archive"]))
    before = store_files(store)
    docker = archives["podman-docker-archive"]
    with tarfile.open(docker) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    layer = manifest[0]["Layers"][1]
    bad = tmp_path / "bad-layer.tar"
    rewrite(docker, bad, {layer: flipped(docker, layer)})

    err = fail(capsys, "--store", str(store), "load", str(bad))
    assert err.startswith(f"error: {bad}: layer {layer} has content of digest sha256:")
    assert "the image config says sha256:" in err

    oci = archives["skopeo-oci-archive"]
    with tarfile.open(oci) as tar:
        blob = max(
            (i for i in tar if i.name.startswith("blobs/sha256/") and i.isfile()),
            key=lambda i: i.size,
        ).name
    bad = tmp_path / "bad-blob.tar"
    rewrite(oci, bad, {blob: flipped(oci, blob)})
    err = fail(capsys, "--store", str(store), "load", str(bad))
    assert err.startswith(f"error: {bad}: {blob} has content of digest sha256:")

    missing = tmp_path / "missing.tar"
    rewrite(oci, missing, {blob: None})
    assert f"error: {missing}: no file {blob} in the archive" in fail(
        capsys, "--store", str(store), "load", str(missing)
    )

    not_tar = tmp_path / "notes.txt"
    not_tar.write_text("not an archive\n")
    assert "not a readable tar archive" in fail(capsys, "--store", str(store), "load", str(not_tar))
    other = tmp_path / "other.tar"
    with tarfile.open(other, "w") as tar:
        tar.add(not_tar, "notes.txt")
    assert "neither an oci-archive" in fail(capsys, "--store", str(store), "load", str(other))

    assert store_files(store) == before


def test_tag_adds_references_and_images_json_lists_them(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    digest = make_image(store, ["example.org/hep/art:1"], [random_layer("a", 1000)]).digest
    s = ["--store", str(store.root)]

    out = run(capsys, *s, "tag", "example.org/hep/art:1", "site.org/hep/art:v1", "art:latest")

    assert out.splitlines() == [
        f"site.org/hep/art:v1@{digest}",
        f"docker.io/library/art:latest@{digest}",
    ]
    listed = json.loads(run(capsys, *s, "images", "--format", "json"))
    assert [i["reference"] for i in listed] == [
        "docker.io/library/art:latest",
        "example.org/hep/art:1",
        "site.org/hep/art:v1",
    ]
    image = store.image("art:latest")
    assert listed[0] == {
        "reference": "docker.io/library/art:latest",
        "digest": digest,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "layers": 1,
        "size": image.manifest.layers[0].size + image.manifest.config.size,
        "created": "2016-01-01T00:00:00Z",
        "platform": "linux/amd64",
    }
    table = run(capsys, *s, "images", "--digests").splitlines()
    assert table[0].split() == ["REFERENCE", "DIGEST", "LAYERS", "SIZE", "CREATED"]
    assert table[1].split()[:2] == ["docker.io/library/art:latest", digest]
    assert run(capsys, *s, "-q", "images", "--format", "json") == run(
        capsys, *s, "images", "--format", "json"
    )

    assert "error: no such image example.org/hep/nothing:1 in the store" in fail(
        capsys, *s, "tag", "example.org/hep/nothing:1", "x:1"
    )
    assert "invalid tag" in fail(capsys, *s, "tag", "art:latest", "x:bad tag")
    assert len(store.refs()) == 3


def test_export_refuses_a_terminal(tmp_path: Path, store: Store) -> None:
    make_image(store, [REF], [random_layer("a", 100)])
    primary, secondary = os.openpty()
    proc = subprocess.run(
        ["ocibuild", "--store", str(store.root), "export", REF, "-o", "-"],
        stdout=secondary,
        check=False,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(primary)
    os.close(secondary)
    assert proc.returncode == 2
    assert "refusing to write an archive to a terminal" in proc.stderr
