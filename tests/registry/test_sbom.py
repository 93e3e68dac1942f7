"""An SBOM for every image: SPDX 2.3 (and CycloneDX 1.6) that the reference validators accept,
listing every UPS product of the recipe with its tarball's URL and sha256 and every `files:`
input; the same bytes from two builds; pushed with the image, where a registry without the
referrers API keeps it under the `sha256-<hex>` tag; a provenance statement signed with the
image's key."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from ocibuild.oci import MediaType
from ocibuild.signing import keys
from ocibuild.store import Store
from ocibuild.ups.manifest import parse_manifest
from tests.cli import run
from tests.registry.conftest import Registry

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
DEMO_REF = "localhost/ocibuild/demo-art_1_18_03_e9-prof:latest"
DEMO_MANIFEST = next((RECIPES / "demo-mirror" / "bundles").rglob("*_MANIFEST.txt"))


def demo_recipe(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("demo.yaml", "demo.yaml.lock"):
        shutil.copy(RECIPES / name, directory / name)
    for name in ("demo-mirror", "demo-shell"):
        shutil.copytree(RECIPES / name, directory / name, symlinks=True)
    return directory / "demo.yaml"


def spdx_problems(path: Path) -> list[str]:
    return [m.validation_message for m in validate_full_spdx_document(parse_file(str(path)))]


def cyclonedx_problems(data: bytes) -> Any:
    return JsonStrictValidator(SchemaVersion.V1_6).validate_str(data.decode())


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The demo recipe, built once: (recipe, store)."""
    from ocibuild.cli import main

    directory = tmp_path_factory.mktemp("demo")
    recipe = demo_recipe(directory / "recipe")
    assert main(["-q", "--store", str(directory / "store"), "recipe", str(recipe)]) == 0
    return recipe, directory / "store"


def test_the_demo_sbom_validates_and_lists_every_ups_product_and_file(
    demo: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe, store = demo
    mirror = (recipe.parent / "demo-mirror").resolve().as_uri()
    spdx = tmp_path / "demo.spdx.json"
    spdx.write_text(run(capsys, "--store", str(store), "sbom", DEMO_REF))
    assert spdx_problems(spdx) == []
    cyclonedx = run(capsys, "--store", str(store), "sbom", DEMO_REF, "--format", "cyclonedx")
    assert cyclonedx_problems(cyclonedx.encode()) is None

    document = json.loads(spdx.read_text())
    image = Store.open(store).image(DEMO_REF)
    assert document["packages"][0]["versionInfo"] == image.descriptor.digest  # the subject
    assert document["creationInfo"]["created"] == "2016-01-01T00:00:00Z"  # SOURCE_DATE_EPOCH
    products = {
        (p["name"], p["versionInfo"]): p
        for p in document["packages"]
        if "kind: ups" in p.get("comment", "")
    }
    lock = json.loads((RECIPES / "demo.yaml.lock").read_text())["files"]
    for entry in parse_manifest(DEMO_MANIFEST.read_text(), str(DEMO_MANIFEST)):
        package = products.pop((entry.product, entry.version))
        assert f"flavor: {entry.flavor}" in package["comment"]
        if entry.qualifiers:
            assert f"qualifiers: {entry.qualifiers}" in package["comment"]
        (url,) = [u for u in lock if u.endswith("/" + entry.tarball)]
        assert package["checksums"] == [
            {"algorithm": "SHA256", "checksumValue": lock[url]["sha256"]}
        ]
        assert f"url: {url.replace('{mirror}', mirror)}" in package["comment"]
    assert products == {}  # nothing else
    # every files: input with its sha256, in the layer that holds it
    busybox = RECIPES / "demo-shell" / "bin" / "busybox"
    (shell,) = [p for p in document["packages"] if p["name"] == "/bin/busybox"]
    assert (
        shell["checksums"][0]["checksumValue"] == hashlib.sha256(busybox.read_bytes()).hexdigest()
    )
    contains = {(r["spdxElementId"], r["relatedSpdxElement"]) for r in document["relationships"]}
    assert ("SPDXRef-Layer-0", shell["SPDXID"]) in contains
    layers = [p for p in document["packages"] if p["primaryPackagePurpose"] == "ARCHIVE"]
    assert [p["versionInfo"] for p in layers] == [d.digest for d in image.manifest.layers]


def test_two_builds_give_the_same_sbom_bytes(
    demo: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe, store = demo
    first = run(capsys, "--store", str(store), "sbom", DEMO_REF)
    other = tmp_path / "other"
    run(capsys, "--store", str(other), "recipe", str(recipe), "--no-cache")
    assert run(capsys, "--store", str(other), "sbom", DEMO_REF) == first
    # again from the layer cache: the components come from what the store remembers
    run(capsys, "--store", str(other), "recipe", str(recipe))
    assert run(capsys, "--store", str(other), "sbom", DEMO_REF) == first


def test_a_cyclonedx_build_stores_cyclonedx(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = demo_recipe(tmp_path / "recipe")
    store = tmp_path / "store"
    run(capsys, "--store", str(store), "recipe", str(recipe), "--sbom", "cyclonedx")
    stored = Store.open(store)
    (artifact,) = [
        m
        for _, m in stored.referrers(stored.resolve(DEMO_REF).digest)
        if m.artifact_type == MediaType.CYCLONEDX
    ]
    data = stored.read_blob(artifact.layers[0].digest)
    assert cyclonedx_problems(data) is None
    assert run(capsys, "--store", str(store), "sbom", DEMO_REF).encode() == data
    bom = json.loads(data)
    assert bom["metadata"]["component"]["version"] == str(stored.resolve(DEMO_REF).digest)
    ups = [
        c
        for layer in bom["components"]
        for c in layer["components"]
        if {"name": "ocibuild:kind", "value": "ups"} in c["properties"]
    ]
    assert len(ups) == len(parse_manifest(DEMO_MANIFEST.read_text(), "manifest"))


def get(url: str, accept: str = "") -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_the_sbom_and_signed_provenance_go_with_the_image(
    demo: tuple[Path, Path],
    tmp_path: Path,
    registry: Registry,
    repo: Callable[[str], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, store = demo
    pair = keys.generate(b"pw")
    (tmp_path / "k.key").write_bytes(pair.private_pem)
    (tmp_path / "k.pub").write_bytes(pair.public_pem)
    (tmp_path / "pw").write_text("pw\n")
    target = f"{registry.host}/{repo()}:1"

    out = run(
        capsys, "--store", str(store), "push", DEMO_REF, "--to", target,
        "--sign", str(tmp_path / "k.key"), "--passphrase-file", str(tmp_path / "pw"),
    )  # fmt: skip

    digest = out.strip().rsplit("@", 1)[1]
    base = f"{registry.url}/v2/{repo()}"
    # this registry has no referrers API: the artifacts are listed under the fallback tag
    status, _ = get(f"{base}/referrers/{digest}")
    assert status == 404
    status, data = get(f"{base}/manifests/sha256-{digest[7:]}", MediaType.OCI_INDEX)
    assert status == 200, data
    listed = {d["artifactType"]: d for d in json.loads(data)["manifests"]}
    assert set(listed) == {MediaType.SPDX, MediaType.DSSE}
    status, data = get(
        f"{base}/manifests/{listed[MediaType.SPDX]['digest']}", MediaType.OCI_MANIFEST
    )
    sbom_manifest = json.loads(data)
    assert sbom_manifest["subject"]["digest"] == digest
    status, sbom = get(f"{base}/blobs/{sbom_manifest['layers'][0]['digest']}")
    assert sbom.decode() == run(capsys, "--store", str(store), "sbom", DEMO_REF)
    # the provenance: signed with the image's key, about the image, naming recipe and lock
    verified = run(capsys, "verify", target, "--key", str(tmp_path / "k.pub"))
    assert "provenance https://slsa.dev/provenance/v1: signed by the key" in verified
    status, data = get(
        f"{base}/manifests/{listed[MediaType.DSSE]['digest']}", MediaType.OCI_MANIFEST
    )
    status, envelope = get(f"{base}/blobs/{json.loads(data)['layers'][0]['digest']}")
    statement = json.loads(base64.b64decode(json.loads(envelope)["payload"]))
    assert statement["subject"][0]["digest"]["sha256"] == digest[7:]
    definition = statement["predicate"]["buildDefinition"]
    assert definition["externalParameters"]["source_date_epoch"] == 1451606400
    uris = {d["uri"]: d["digest"]["sha256"] for d in definition["resolvedDependencies"]}
    recipe_file = RECIPES / "demo.yaml"
    assert uris["demo.yaml"] == hashlib.sha256(recipe_file.read_bytes()).hexdigest()
    assert "demo.yaml.lock" in uris
