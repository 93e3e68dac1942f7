"""A hostile mirror: bundle manifest lines whose fields would become paths outside the mirror,
the products tree or the cache. Each is refused naming the manifest's URL and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile.conftest import Hostile
from tests.ups.conftest import Mirror
from tests.ups.test_build import SLF6, write_recipe

MANIFEST = f"bundles/art/v1_18_03/manifest/art-1.18.03-{SLF6}-e9-prof_MANIFEST.txt"

LINES = {
    "product-traversal": (
        "../../../../x v1_0 t.tar.bz2 -f NULL",
        "'../../../../x' is not a product name",
    ),
    "product-absolute": ("/etc v1_0 t.tar.bz2 -f NULL", "'/etc' is not a product name"),
    "product-dot": (". v1_0 t.tar.bz2 -f NULL", "'.' is not a product name"),
    "tarball-traversal": (
        "x v1_0 ../../t.tar.bz2 -f NULL",
        "'../../t.tar.bz2' is not a tarball file name",
    ),
    "tarball-hidden": ("x v1_0 .t.tar.bz2 -f NULL", "'.t.tar.bz2' is not a tarball file name"),
    "version-traversal": ("x v1/../.. t.tar.bz2 -f NULL", "is not a UPS version"),
    "flavor-path": ("x v1_0 t.tar.bz2 -f ../../etc", "flavor '../../etc' is not a UPS flavor"),
    "qualifiers-path": ("x v1_0 t.tar.bz2 -f NULL -q e9/../..", "are not UPS qualifiers"),
}


@pytest.mark.parametrize("case", sorted(LINES))
def test_hostile_manifest_lines_are_refused_naming_url_and_line(
    case: str, hostile: Hostile, own_mirror: Mirror, cache_dir: Path
) -> None:
    line, message = LINES[case]
    manifest = own_mirror.root / "scisoft" / MANIFEST
    text = manifest.read_text()
    number = len(text.splitlines()) + 1
    manifest.write_text(text + line + "\n")
    recipe = write_recipe(hostile.root / "art.yaml", None, layering="bundle", setup=False)
    hostile.refused(
        "recipe",
        "--mirror",
        own_mirror.url,
        str(recipe),
        names=(f"{own_mirror.url}/{MANIFEST}:{number}: ", message),
    )


def test_a_directory_mirror_is_refused_the_same_way(
    hostile: Hostile, own_mirror: Mirror, cache_dir: Path
) -> None:
    # the campaign's case: a mirror given as a directory, read with file access
    root = own_mirror.root / "scisoft"
    (hostile.root / "secret").mkdir()
    (hostile.root / "secret" / "t.tar.bz2").write_bytes(b"secret")
    manifest = root / MANIFEST
    text = manifest.read_text()
    manifest.write_text(text + "../../../../../../secret v1_0 t.tar.bz2 -f NULL\n")
    recipe = write_recipe(hostile.root / "art.yaml", None, layering="bundle", setup=False)
    hostile.refused(
        "recipe", "--mirror", str(root), str(recipe), names=(MANIFEST, "is not a product name")
    )
