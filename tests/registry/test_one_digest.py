"""One digest from build to registry: what `recipe` prints is what `push` prints, what the
registry serves (`skopeo inspect --raw` hashed), and what `pull` stores, byte for byte; and
every image of a store, built or pulled, Docker or OCI format, reads in skopeo's `oci:` and
umoci."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from ocibuild.cli import main
from ocibuild.oci import MediaType
from ocibuild.store import Store
from tests.cli import run
from tests.registry.conftest import Registry
from tests.registry.images import make_image, random_layer

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
DEMO_REF = "localhost/ocibuild/demo-art_1_18_03_e9-prof:latest"


def demo_recipe(tmp_path: Path) -> Path:
    """The demo recipe with its mirror, shell and lock, copied (the build writes its lock)."""
    for name in ("demo.yaml", "demo.yaml.lock"):
        shutil.copy(RECIPES / name, tmp_path / name)
    for name in ("demo-mirror", "demo-shell"):
        shutil.copytree(RECIPES / name, tmp_path / name, symlinks=True)
    return tmp_path / "demo.yaml"


def two_images(tmp_path: Path) -> Path:
    """A base and an image on it, both gzip (Docker format by the auto rule)."""
    recipe = tmp_path / "two.yaml"
    recipe.write_text(
        textwrap.dedent("""\
        source_date_epoch: 1451606400
        images:
          - name: example.org/hep/base:1
            layers:
              - files: [{content: "base\\n", dest: /etc/base}]
          - name: example.org/hep/app:1
            from: example.org/hep/base:1
            layers:
              - files: [{content: "app\\n", dest: /opt/app}]
        """)
    )
    return recipe


def printed(out: str) -> dict[str, str]:
    """REF@DIGEST lines, by reference."""
    return dict(line.rsplit("@", 1) for line in out.splitlines())


def skopeo(*args: str) -> str:
    proc = subprocess.run(["skopeo", *args], check=False, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def raw_digest(ref: str) -> str:
    raw = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{ref}"],
        capture_output=True,
        check=True,
    ).stdout
    return "sha256:" + hashlib.sha256(raw).hexdigest()


@pytest.mark.parametrize("which", ["demo", "two images"])
def test_the_digest_recipe_prints_is_pushed_served_and_pulled(
    which: str,
    tmp_path: Path,
    registry: Registry,
    repo: Callable[[str], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    recipe = demo_recipe(tmp_path) if which == "demo" else two_images(tmp_path)
    store = tmp_path / "store"

    built = printed(run(capsys, "--store", str(store), "recipe", str(recipe)))

    stored = Store.open(store)
    pushed_out = ""
    for n, ref in enumerate(sorted(built)):
        assert stored.image(ref).descriptor.media_type == MediaType.DOCKER_MANIFEST  # all gzip
        target = f"{registry.host}/{repo(str(n))}:1"
        pushed_out += run(capsys, "--store", str(store), "push", ref, "--to", target)
    pushed = printed(pushed_out)
    assert sorted(pushed.values()) == sorted(built.values())
    for target, digest in pushed.items():
        assert raw_digest(target) == digest
        assert run(capsys, "digest", target).strip() == digest
        other = tmp_path / f"pulled-{hashlib.sha256(target.encode()).hexdigest()[:8]}"
        pulled = printed(run(capsys, "--store", str(other), "pull", target))
        assert pulled == {target: digest}
        # the pulled manifest is the built one, byte for byte
        assert Store.open(other).read_blob(digest) == stored.read_blob(digest)
    # the store names the same digest for every reference
    for ref, digest in built.items():
        assert run(capsys, "--store", str(store), "digest", f"store:{ref}").strip() == digest


def test_a_push_that_converts_says_so_and_prints_the_new_digest(
    tmp_path: Path,
    registry: Registry,
    repo: Callable[[str], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = tmp_path / "store"
    built = printed(run(capsys, "--store", str(store), "recipe", str(two_images(tmp_path))))
    ref = "example.org/hep/base:1"
    target = f"{registry.host}/{repo()}:oci"

    code_out = run(capsys, "--store", str(store), "push", ref, "--to", target, "--format", "oci")

    (digest,) = printed(code_out).values()
    assert digest != built[ref] and raw_digest(target) == digest
    view = json.loads(run(capsys, "--store", str(store), "inspect", ref))["ociView"]
    assert view["digest"] == digest  # the OCI form is the store's OCI view


def test_a_push_that_converts_warns(
    tmp_path: Path,
    registry: Registry,
    repo: Callable[[str], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = str(tmp_path / "store")
    run(capsys, "--store", store, "recipe", str(two_images(tmp_path)))
    target = f"{registry.host}/{repo()}:oci"

    code = main(
        [
            "--store",
            store,
            "--progress",
            "plain",
            "push",
            "example.org/hep/base:1",
            "--to",
            target,
            "--format",
            "oci",
        ]
    )

    out, err = capsys.readouterr()
    assert code == 0, err
    (digest,) = printed(out).values()
    assert f"converted to oci media types: pushed as {digest}, not the image's own sha256:" in err


def test_recipe_format_chooses_the_family(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recipe = two_images(tmp_path)
    text = recipe.read_text().replace("images:\n", "format: oci\nimages:\n", 1)
    text = text.replace(
        "name: example.org/hep/app:1\n", "name: example.org/hep/app:1\n    format: docker\n"
    )
    recipe.write_text(text)
    store = tmp_path / "store"

    run(capsys, "--store", str(store), "recipe", str(recipe))

    stored = Store.open(store)
    assert stored.image("example.org/hep/base:1").descriptor.media_type == MediaType.OCI_MANIFEST
    assert stored.image("example.org/hep/app:1").descriptor.media_type == MediaType.DOCKER_MANIFEST
    # the command line wins over both
    run(capsys, "--store", str(store), "recipe", str(recipe), "--format", "oci")
    assert stored.image("example.org/hep/app:1").descriptor.media_type == MediaType.OCI_MANIFEST


def test_every_image_of_a_mixed_store_reads_in_skopeo_and_umoci(
    tmp_path: Path,
    store: Store,
    registry: Registry,
    repo: Callable[[str], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Built Docker and OCI images, and pulled ones of both formats, in one store."""
    recipe = two_images(tmp_path)
    run(capsys, "--store", str(store.root), "recipe", str(recipe))
    run(
        capsys,
        "--store",
        str(store.root),
        "recipe",
        str(recipe),
        "--format",
        "oci",
        "--image",
        "example.org/hep/base:1",
    )
    run(
        capsys,
        "--store",
        str(store.root),
        "tag",
        "example.org/hep/app:1",
        "example.org/hep/app:docker",
    )
    pusher = Store.open(tmp_path / "pusher")
    for fmt in ("docker", "oci"):
        ref = f"{registry.host}/{repo(fmt)}:1"
        make_image(pusher, [ref], [random_layer(fmt, 2000)], fmt=fmt)
        run(capsys, "--store", str(pusher.root), "push", ref)
        run(capsys, "--store", str(store.root), "pull", ref)
    refs = sorted(store.refs())
    assert len(refs) == 5
    families = {store.image(r).descriptor.media_type for r in refs}
    assert families == {MediaType.DOCKER_MANIFEST, MediaType.OCI_MANIFEST}

    index = json.loads((store.root / "index.json").read_bytes())
    assert {d["mediaType"] for d in index["manifests"]} == {MediaType.OCI_MANIFEST}
    for ref in refs:
        image = store.image(ref)
        info = json.loads(skopeo("inspect", f"oci:{store.root}:{ref}"))
        assert info["Layers"] == [layer.digest for layer in image.manifest.layers]
        bundle = tmp_path / "bundles" / hashlib.sha256(ref.encode()).hexdigest()[:12]
        proc = subprocess.run(
            ["umoci", "unpack", "--rootless", "--image", f"{store.root}:{ref}", str(bundle)],
            check=False,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        assert (bundle / "rootfs").is_dir()
        copied = tmp_path / "copied"
        skopeo("copy", f"oci:{store.root}:{ref}", f"oci:{copied}:x")
        assert json.loads(skopeo("inspect", f"oci:{copied}:x"))["Layers"] == info["Layers"]
        shutil.rmtree(copied)
    # inspect shows both digests of a Docker-format image
    shown = json.loads(run(capsys, "--store", str(store.root), "inspect", "example.org/hep/app:1"))
    assert shown["mediaType"] == MediaType.DOCKER_MANIFEST
    assert shown["ociView"]["mediaType"] == MediaType.OCI_MANIFEST
    assert shown["ociView"]["digest"] != shown["digest"]


def test_a_store_of_the_old_layout_is_migrated(
    tmp_path: Path,
    registry: Registry,
    repo: Callable[[str], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A pulled Docker-format image indexed as its Docker manifest (before OCI views) is
    re-indexed by its view when the store is next opened, keeping its digest."""
    pusher = Store.open(tmp_path / "pusher")
    ref = f"{registry.host}/{repo()}:1"
    make_image(pusher, [ref], [random_layer("a", 2000)], fmt="docker")
    run(capsys, "--store", str(pusher.root), "push", ref)
    store = Store.open(tmp_path / "store")
    run(capsys, "--store", str(store.root), "pull", ref)
    digest = str(store.resolve(ref).digest)
    old = json.loads((store.root / "index.json").read_bytes())
    (entry,) = old["manifests"]
    entry.update(mediaType=MediaType.DOCKER_MANIFEST, digest=digest, size=store.blob_size(digest))
    del entry["annotations"]["dev.ocibuild.image.manifest"]
    (store.root / "index.json").write_text(json.dumps(old))
    assert (
        subprocess.run(
            ["skopeo", "inspect", f"oci:{store.root}:{ref}"], check=False, capture_output=True
        ).returncode
        != 0
    )

    assert run(capsys, "--store", str(store.root), "digest", f"store:{ref}").strip() == digest

    (entry,) = json.loads((store.root / "index.json").read_bytes())["manifests"]
    assert entry["mediaType"] == MediaType.OCI_MANIFEST
    assert entry["annotations"]["dev.ocibuild.image.manifest"] == digest
    skopeo("inspect", f"oci:{store.root}:{ref}")
