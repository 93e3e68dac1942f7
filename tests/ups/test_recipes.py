"""The shipped recipes: the demo builds from the shipped mirror alone; the demo mirror is what
scripts/make-demo-mirror makes; the paper's recipes read, and their UPS layers and setup work
against a scisoft-format mirror."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from ocibuild.fetch import LockFile
from ocibuild.layer.codec import Compression
from ocibuild.layer.writer import write_layer
from ocibuild.oci import Descriptor, MediaType
from ocibuild.progress import silent
from ocibuild.recipe import load_recipe
from ocibuild.sources import SOURCES, SourceContext
from ocibuild.sources.setup import frozen_environment
from ocibuild.store import Store
from ocibuild.store.rootfs import ImageFS
from tests.ups.conftest import Mirror, ocibuild
from testsupport.synthetic_ups import art_bundle, write_mirror

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
DEMO_REF = "localhost/ocibuild/demo-art_1_18_03_e9-prof:latest"


def tree_digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "README"
    }


def test_the_shipped_demo_mirror_is_what_the_script_makes(tmp_path: Path) -> None:
    write_mirror(tmp_path, [art_bundle()])
    shipped = RECIPES / "demo-mirror"
    assert tree_digests(shipped) == tree_digests(tmp_path)
    assert sum(p.stat().st_size for p in shipped.rglob("*") if p.is_file()) < 100_000


def test_the_demo_builds_from_the_repository_alone(
    tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "recipes"
    project.mkdir()
    shutil.copy(RECIPES / "demo.yaml", project)
    shutil.copytree(RECIPES / "demo-mirror", project / "demo-mirror")
    store = tmp_path / "store"
    assert ocibuild("--store", str(store), "-q", "recipe", str(project / "demo.yaml")) == 0, (
        capsys.readouterr().err
    )
    bundle = tmp_path / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--image", f"{store}:{DEMO_REF}", str(bundle)],
        check=True,
        capture_output=True,
    )
    rootfs = bundle / "rootfs"
    assert (rootfs / "products/setup").is_file()
    assert (rootfs / "products/art/v1_18_03/ups/art.table").is_file()
    assert "hep:x:1000:1000:" in (rootfs / "etc/passwd").read_text()
    process = json.loads((bundle / "config.json").read_text())["process"]
    env = dict(e.split("=", 1) for e in process["env"])
    assert env["SETUP_ART"] == "art v1_18_03 -f Linux64bit+2.6-2.12 -q e9:prof -z /products"
    assert env["PATH"].startswith("/products/root/v6_04_06/")
    assert env["LANG"] == "C"
    assert process["user"]["uid"] == 1000
    # a second build of the unchanged demo is all cache
    capsys.readouterr()
    assert ocibuild("--store", str(store), "recipe", str(project / "demo.yaml")) == 0
    assert "0 cached" not in capsys.readouterr().err


PAPER = {
    "build-base.yaml": ["docker.io/paterno/centos67-build_base:latest"],
    "art-1.18.yaml": [
        "docker.io/jbkowalkowski/centos67-art_1_18_03_e9-prof:latest",
        "docker.io/jbkowalkowski/centos67-study_1_18_03_e9-prof:latest",
    ],
    "art-1.17.yaml": ["docker.io/jbkowalkowski/centos67-art_1_17_07_e9-prof:latest"],
    "uboone-04.31.00.yaml": ["docker.io/paterno/centos-uboone_v04_31_00-e9-prof:latest"],
}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_the_paper_recipes_read(name: str) -> None:
    recipe = load_recipe(RECIPES / name)
    assert [image.name for image in recipe.images] == PAPER[name]
    first = recipe.images[0]
    assert first.from_ == "centos67-base.yaml#docker.io/paterno/centos67base:latest"
    assert [layer.source for layer in first.layers][-2:] == ["user", "setup"]  # setup: is last
    ups = next(layer.spec for layer in first.layers if layer.source == "ups")
    assert (ups.os, ups.into) == ("slf6", "/products")
    assert ups.bundle.split("-v")[0] in ("build_base", "art", "uboone")


def test_the_art_recipe_against_a_scisoft_mirror(
    tmp_path: Path, mirror: Mirror, store: Store
) -> None:
    """The art image's ups layer and setup, as written in recipes/art-1.18.yaml, resolved
    against the synthetic art-v1_18_03 on the mirror (the base image comes from another recipe)."""
    recipe = load_recipe(RECIPES / "art-1.18.yaml")
    image = recipe.images[0]
    layer = next(layer for layer in image.layers if layer.source == "ups")
    ctx = SourceContext(
        recipe_file=tmp_path / "art-1.18.yaml",
        origin=layer.origin,
        layer_index=0,
        source_date_epoch=0,
        mirror=mirror.url,
        cache_dir=tmp_path / "cache",
        lock=LockFile(None),
    )
    descriptors = []
    for plan in SOURCES["ups"].plan(layer.spec, ctx):
        with store.pending_blob() as pending:
            blob = write_layer(plan.entries(), pending.file, Compression("gzip"))
            pending.commit(blob.digest)
        descriptors.append(Descriptor(MediaType.OCI_LAYER_GZIP, blob.digest, blob.size))
    setup = image.layers[-1]
    assert setup.source == "setup"
    env = frozen_environment(
        ImageFS(store, descriptors),
        setup.spec,
        silent,
        base_env={"PATH": "/usr/bin:/bin"},
    )
    assert env["SETUP_ART"] == "art v1_18_03 -f Linux64bit+2.6-2.12 -q e9:prof -z /products"
    assert env["PATH"].endswith(":/usr/bin:/bin")
    assert setup.spec.origin is not None and setup.spec.origin.file.endswith("art-1.18.yaml")
