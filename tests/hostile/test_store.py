"""Store faults: gc over a reference whose manifest cannot be read keeps every blob and says
which reference is broken."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.hostile.conftest import Hostile, tree


def manifest_blob(store: Path, ref: str) -> Path:
    """The image's manifest: a Docker-format image's, which its OCI view's entry names."""
    index = json.loads((store / "index.json").read_text())
    (digest,) = [
        d["annotations"].get("dev.ocibuild.image.manifest", d["digest"])
        for d in index["manifests"]
        if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref
    ]
    return store / "blobs" / "sha256" / digest.removeprefix("sha256:")


BREAK: dict[str, tuple[Callable[[Path], None], str]] = {
    "garbage": (lambda p: p.write_bytes(b"\x00garbage"), "is corrupt"),
    "missing": (lambda p: p.unlink(), "cannot be read"),
    "json-null": (lambda p: p.write_bytes(b"null"), "is corrupt"),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:20]), "is corrupt"),
}


@pytest.mark.parametrize("case", sorted(BREAK))
@pytest.mark.parametrize("dry_run", [False, True])
def test_gc_keeps_the_blobs_of_a_broken_reference(
    case: str, dry_run: bool, hostile: Hostile
) -> None:
    other = hostile.recipe(
        "images:\n  - name: a/other\n    layers:\n      - files: [{content: b, dest: /b}]\n",
        "other.yaml",
    )
    assert hostile.run("recipe", str(other)).code == 0
    assert hostile.run("rmi", "a/other").code == 0  # its blobs are now garbage
    change, reason = BREAK[case]
    change(manifest_blob(hostile.store, "docker.io/a/good:latest"))
    before = tree(hostile.store, (hostile.store / ".ocibuild",))
    outcome = hostile.run("gc", *(["--dry-run"] if dry_run else []))
    assert outcome.code == 0, outcome
    warnings = [line for line in outcome.err.splitlines() if line.startswith("warning: ")]
    assert any("docker.io/a/good:latest" in w and reason in w for w in warnings), outcome.err
    assert any("no blob removed" in w for w in warnings), outcome.err
    blobs = len(list((hostile.store / "blobs" / "sha256").iterdir()))
    assert f"remove{'' if dry_run else 'd'} 0 blobs (0 B); {blobs} kept" in outcome.out
    assert tree(hostile.store, (hostile.store / ".ocibuild",)) == before


def test_gc_still_removes_garbage_when_every_reference_reads(hostile: Hostile) -> None:
    other = hostile.recipe(
        "images:\n  - name: a/other\n    layers:\n      - files: [{content: b, dest: /b}]\n",
        "other.yaml",
    )
    assert hostile.run("recipe", str(other)).code == 0
    assert hostile.run("rmi", "a/other").code == 0
    outcome = hostile.run("gc")
    assert outcome.code == 0 and "warning" not in outcome.err
    # its Docker manifest, OCI view, config, layer; its SBOM's and provenance's manifest and blob
    assert "removed 8 blobs" in outcome.out


def test_images_names_a_broken_reference_instead_of_hiding_it(hostile: Hostile) -> None:
    manifest_blob(hostile.store, "docker.io/a/good:latest").write_bytes(b"{}")
    outcome = hostile.run("images")
    assert outcome.code == 0
    assert "warning: docker.io/a/good:latest: its manifest or config cannot be read" in outcome.err
    assert "a/good" not in outcome.out
