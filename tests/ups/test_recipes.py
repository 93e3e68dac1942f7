"""The shipped recipes: the demo builds from the shipped mirror alone; the demo mirror is what
scripts/make-demo-mirror makes; the paper's recipes read, and their UPS layers and setup work
against a scisoft-format mirror."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ocibuild.compression import Compression
from ocibuild.fetch import LockFile
from ocibuild.layer.writer import write_layer
from ocibuild.oci import Descriptor, MediaType
from ocibuild.progress import silent
from ocibuild.recipe import load_recipe
from ocibuild.sources.setup import frozen_environment
from ocibuild.store import Store
from ocibuild.store.rootfs import ImageFS
from tests.contexts import layer_context, resolved
from tests.podman import Podman
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


def shell_tree(root: Path) -> dict[str, str]:
    """Symlinks by their target, files by their sha256."""
    return {
        str(p.relative_to(root)): os.readlink(p)
        if p.is_symlink()
        else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_symlink() or p.is_file()
    }


def test_the_shipped_demo_mirror_is_what_the_script_makes(tmp_path: Path) -> None:
    write_mirror(tmp_path, [art_bundle()])
    shipped = RECIPES / "demo-mirror"
    assert tree_digests(shipped) == tree_digests(tmp_path)
    assert sum(p.stat().st_size for p in shipped.rglob("*") if p.is_file()) < 100_000


def test_the_shipped_demo_shell_is_what_the_script_makes(tmp_path: Path) -> None:
    """recipes/demo-shell is Debian's busybox-static as installed here (setup-test-env installs
    it), with its copyright, the GPL-2 text and a note of where its source is."""
    subprocess.run(
        [str(RECIPES.parent / "scripts/make-demo-shell"), "--out", str(tmp_path / "shell")],
        check=True,
        capture_output=True,
    )
    shipped = RECIPES / "demo-shell"
    note = "usr/share/doc/busybox-static/SOURCE"
    source = (shipped / note).read_text()
    made, have = shell_tree(tmp_path / "shell"), shell_tree(shipped)
    if source.split("\n")[0] != (tmp_path / "shell" / note).read_text().split("\n")[0]:
        # the host has another busybox-static than the one shipped (a Debian update): the
        # rest of the tree must still be what the script makes
        for tree in (made, have):
            del tree["bin/busybox"], tree[note]
    assert have == made, "run scripts/make-demo-shell"
    assert os.readlink(shipped / "bin/sh") == "busybox"
    assert "Debian's source package busybox 1:" in source
    assert hashlib.sha256((shipped / "bin/busybox").read_bytes()).hexdigest() in source
    assert "GNU GENERAL PUBLIC LICENSE" in (shipped / "usr/share/common-licenses/GPL-2").read_text()


def test_the_demo_builds_from_the_repository_alone_and_runs_in_podman(
    tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str], podman: Podman
) -> None:
    project = tmp_path / "recipes"
    project.mkdir()
    shutil.copy(RECIPES / "demo.yaml", project)
    for tree in ("demo-mirror", "demo-shell"):
        shutil.copytree(RECIPES / tree, project / tree, symlinks=True)
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
    assert env["SETUP_ART"] == "art v1_18_03 -f Linux64bit+2.6-2.12 -z /products -q e9:prof"
    assert env["PATH"].startswith("/products/root/v6_04_06/")
    assert env["LANG"] == "C"
    assert process["user"]["uid"] == 1000
    assert process["args"] == ["/usr/bin/art-setup"]
    # a second build of the unchanged demo is all cache
    capsys.readouterr()
    assert ocibuild("--store", str(store), "-v", "recipe", str(project / "demo.yaml")) == 0
    assert "(5 layers, 5 cached," in capsys.readouterr().err
    # as the README runs it: export, podman load, podman run (the CMD, then art)
    archive = tmp_path / "demo.tar"
    assert ocibuild("--store", str(store), "export", DEMO_REF, "--format", "oci-archive",
                    "-o", str(archive)) == 0  # fmt: skip
    podman("load", "-i", str(archive))
    try:
        shown = podman.run(DEMO_REF)
        assert shown.startswith("Built by ocibuild from recipes/demo.yaml")
        assert f"SETUP_ART={env['SETUP_ART']}\n" in shown
        assert "SETUP_ROOT=root v6_04_06 -f Linux64bit+2.6-2.12 -z /products -q e9:prof\n" in shown
        assert "ART_DIR=/products/art/v1_18_03\n" in shown
        art = podman.run(DEMO_REF, "art")
        assert art.splitlines()[:2] == ["art v1_18_03 e9:prof", "ART_DIR=/products/art/v1_18_03"]
        assert podman.run(DEMO_REF, "id", "-un") == "hep\n"
    finally:
        podman("rmi", DEMO_REF, check=False)


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
    ctx = layer_context(
        tmp_path,
        recipe_file=tmp_path / "art-1.18.yaml",
        origin=layer.origin,
        mirror=mirror.url,
        lock=LockFile(None),
    )
    descriptors = []
    for plan in resolved(layer.plan(ctx)):
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
    ).env
    assert env["SETUP_ART"] == "art v1_18_03 -f Linux64bit+2.6-2.12 -z /products -q e9:prof"
    assert env["PATH"].endswith(":/usr/bin:/bin")
    assert setup.spec.origin is not None and setup.spec.origin.file.endswith("art-1.18.yaml")
