"""The SBOM of a deb + UPS image, from the test apt repository and the demo's UPS mirror: it
validates with spdx-tools and cyclonedx-python-lib, lists every UPS product of the bundle and
every layer, and two builds give the same bytes. (The deb packages themselves are listed once
the deb source declares its components: issue 20's verified-indexes branch does.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from ocibuild.store import Store
from ocibuild.ups.manifest import parse_manifest
from tests.cli import run
from tests.ospkg.conftest import AptRepo

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
REF = "docker.io/t/deb-ups:1"
RECIPE = """\
source_date_epoch: 1451606400
mirror: demo-mirror
images:
  - name: t/deb-ups:1
    layers:
      - deb:
          repos: [{{url: "{url}", suite: test, components: [main], signed_by: "{key}"}}]
          packages: [app, libbar]
      - ups: {{bundle: art-v1_18_03, os: slf6, qualifiers: e9, build: prof}}
"""


def test_a_deb_and_ups_image_has_a_valid_sbom_listing_every_product(
    apt_repo: AptRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(RECIPES / "demo-mirror", tmp_path / "demo-mirror")
    recipe = tmp_path / "deb-ups.yaml"
    recipe.write_text(RECIPE.format(url=apt_repo.url, key=apt_repo.key.public))
    store = tmp_path / "store"

    run(capsys, "--store", str(store), "recipe", str(recipe))

    spdx = tmp_path / "sbom.spdx.json"
    spdx.write_text(run(capsys, "--store", str(store), "sbom", REF))
    problems = validate_full_spdx_document(parse_file(str(spdx)))
    assert [p.validation_message for p in problems] == []
    cyclonedx = run(capsys, "--store", str(store), "sbom", REF, "--format", "cyclonedx")
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(cyclonedx) is None

    document = json.loads(spdx.read_text())
    image = Store.open(store).image(REF)
    layers = [
        p["versionInfo"] for p in document["packages"] if p["primaryPackagePurpose"] == "ARCHIVE"
    ]
    assert layers == [d.digest for d in image.manifest.layers]
    listed = {
        (p["name"], p.get("versionInfo"))
        for p in document["packages"]
        if "kind: ups" in p.get("comment", "")
    }
    manifest = next((tmp_path / "demo-mirror" / "bundles").rglob("*_MANIFEST.txt"))
    bundle = {(e.product, e.version) for e in parse_manifest(manifest.read_text(), str(manifest))}
    assert listed == bundle
    # a second store, the same recipe: the same bytes
    run(capsys, "--store", str(tmp_path / "again"), "recipe", str(recipe))
    assert run(capsys, "--store", str(tmp_path / "again"), "sbom", REF) == spdx.read_text()


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("https://deb.debian.org/debian/pool/main/b/bash/bash_5.2.15-2_amd64.deb", "same"),
        ("http://mirror.example.org:8080/x.rpm", "same"),
        ("http://127.0.0.1:8080/pool/app.deb", "NOASSERTION"),
        ("http://localhost/pool/app.deb", "NOASSERTION"),
        ("file:///srv/mirror/app.deb", "NOASSERTION"),
    ],
)
def test_a_download_location_is_one_spdx_takes(url: str, location: str) -> None:
    """A package's URL is its downloadLocation only where SPDX's grammar takes it (a DNS name
    with a top-level domain); else NOASSERTION, and the URL is kept in the comment."""
    from ocibuild.sbom import Component
    from ocibuild.sbom.spdx import _package

    package = _package(Component("deb", "app", "1.0", url=url), "SPDXRef-Package-app", {})
    assert package["downloadLocation"] == (url if location == "same" else location)
    assert (f"url: {url}" in package["comment"]) == (location != "same")
