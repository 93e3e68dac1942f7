"""Blobs are verified whenever they leave the store or are reused: a flipped byte in a layer,
config or manifest blob is found by every export format (to a file and to stdout), push, copy,
a rebuild from the layer cache, a build on a base image and a pull over a corrupt copy. The
error names the blob and the image; nothing half-written is left; the layer cache forgets a
corrupt layer and the rebuild writes it again."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.conftest import ENV, Registry, check_store, ocibuild, one_error_line

REF = "example.org/faults/verify:1"


def recipe(directory: Path, name: str = REF, base: str | None = None) -> Path:
    if not (directory / "data.bin").exists():  # a file rewritten is a new input
        (directory / "data.bin").write_bytes(bytes(range(256)) * 4096)
    head = f"images:\n  - name: {name}\n" + (f"    from: {base}\n" if base else "")
    path = directory / f"{name.replace('/', '_').replace(':', '_')}.yaml"
    path.write_text(
        head + "    layers:\n      - files: [{src: data.bin, dest: /data.bin}]\n"
        "      - files: [{content: hello, dest: /hello}]\n"
    )
    return path


def blobs_of(store: Path, ref: str = REF) -> dict[str, str]:
    """The image's blobs by role: manifest, config, layer (the first)."""
    manifest = json.loads(ocibuild(store, "inspect", "--manifest", ref).out)
    digest = json.loads(ocibuild(store, "inspect", ref).out)["digest"]
    return {
        "manifest": digest,
        "config": manifest["config"]["digest"],
        "layer": manifest["layers"][0]["digest"],
    }


def flip(store: Path, digest: str) -> None:
    path = store / "blobs" / "sha256" / digest.removeprefix("sha256:")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def built(tmp_path: Path) -> Path:
    store = tmp_path / "store"
    assert ocibuild(store, "-q", "recipe", str(recipe(tmp_path))).code == 0
    return store


ROLES = ["layer", "config", "manifest"]


def corrupt_named(line: str, digest: str) -> None:
    assert f"blob {digest}" in line and "is corrupt" in line, line
    assert REF in line or "verify:1" in line, line


@pytest.mark.parametrize("fmt", ["oci-archive", "docker-archive", "squashfs", "dir"])
@pytest.mark.parametrize("role", ROLES)
def test_an_export_of_a_corrupt_blob_fails_naming_it(
    fmt: str, role: str, built: Path, tmp_path: Path
) -> None:
    digest = blobs_of(built)[role]
    flip(built, digest)
    output = tmp_path / "out"
    line = one_error_line(ocibuild(built, "export", REF, "--format", fmt, "-o", str(output)))
    corrupt_named(line, digest)
    assert not output.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


@pytest.mark.parametrize("fmt", ["oci-archive", "docker-archive"])
@pytest.mark.parametrize("role", ROLES)
def test_an_export_to_stdout_of_a_corrupt_blob_fails(fmt: str, role: str, built: Path) -> None:
    digest = blobs_of(built)[role]
    flip(built, digest)
    export = ["export", REF, "--format", fmt, "-o", "-"]
    done = subprocess.run(
        [sys.executable, "-m", "ocibuild", "--store", str(built), *export],
        env=ENV,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 1
    (line,) = done.stderr.decode().strip().splitlines()
    corrupt_named(line, digest)
    # what did go out is cut short: no tar end, which a reader takes for a damaged archive
    assert not done.stdout.endswith(b"\0" * 1024) or len(done.stdout) < 1024


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("command", ["push", "copy"])
def test_a_push_of_a_corrupt_blob_fails_before_the_manifest(
    command: str, role: str, built: Path, registry: Registry
) -> None:
    digest = blobs_of(built)[role]
    flip(built, digest)
    target = f"{registry.host}/faults/verify-{command}-{role}:1"
    args = ["push", REF, "--to", target] if command == "push" else ["copy", f"store:{REF}", target]
    corrupt_named(one_error_line(ocibuild(built, *args)), digest)
    missing = ocibuild(built, "digest", target)
    assert (missing.code == 1 and "404" in missing.err) or "no such manifest" in missing.err


def test_a_rebuild_forgets_a_corrupt_cached_layer_and_writes_it_again(
    built: Path, tmp_path: Path
) -> None:
    digest = blobs_of(built)["layer"]
    flip(built, digest)
    result = ocibuild(built, "recipe", str(recipe(tmp_path)))
    assert result.code == 0, result.err
    assert f"the layer cache's blob {digest} is corrupt: removed, and the layer built" in result.err
    assert blobs_of(built)["layer"] == digest  # the same layer, written again
    check_store(built)
    again = ocibuild(built, "recipe", str(recipe(tmp_path)))
    assert again.code == 0 and "corrupt" not in again.err


def test_a_build_on_a_corrupt_base_fails_naming_the_base(built: Path, tmp_path: Path) -> None:
    digest = blobs_of(built)["layer"]
    flip(built, digest)
    child = recipe(tmp_path, "example.org/faults/child:1", base=REF)
    line = one_error_line(ocibuild(built, "recipe", str(child)))
    assert f"base image {REF}: its layer {digest}" in line and "pull or build" in line


def test_a_pull_over_a_corrupt_copy_fetches_the_blob_again(
    built: Path, registry: Registry, tmp_path: Path
) -> None:
    target = f"{registry.host}/faults/verify-pull:1"
    assert ocibuild(built, "-q", "push", REF, "--to", target).code == 0
    other = tmp_path / "other"
    assert ocibuild(other, "-q", "pull", target).code == 0
    digest = blobs_of(other, target)["layer"]
    flip(other, digest)
    assert ocibuild(other, "-q", "pull", target).code == 0
    path = other / "blobs" / "sha256" / digest.removeprefix("sha256:")
    assert "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest() == digest
    check_store(other)


CHANGES: dict[str, Callable[[bytes], bytes]] = {
    "truncated": lambda data: data[: len(data) // 2],
    "longer": lambda data: data + b"\0" * 512,
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_layer_of_another_size_is_corrupt_too(change: str, built: Path, tmp_path: Path) -> None:
    digest = blobs_of(built)["layer"]
    path = built / "blobs" / "sha256" / digest.removeprefix("sha256:")
    path.write_bytes(CHANGES[change](path.read_bytes()))
    line = one_error_line(ocibuild(built, "export", REF, "-o", str(tmp_path / "x.tar")))
    corrupt_named(line, digest)
