"""`ocibuild export --format podman-hpc` with the real podman-hpc 1.2.2 and podman: the images it
writes are listed and run as `podman run` runs them, and the store it leaves equals, record for
record, the one a real `podman-hpc migrate` leaves (docs/podman-hpc-layout.md)."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocibuild.store import Store
from tests.cli import fail, run
from tests.hpc.conftest import DEMO, REF, SAME_LAYERS, WHITEOUT_USER
from tests.podman import Podman
from tests.registry.conftest import Registry, start_registry
from testsupport.podman_hpc import PodmanHPC, build_static_mksquashfs, missing_tools, remove_tree

# What the hpc_layers image holds, printed the same by every runtime: owners, modes, link
# counts of files, symlink targets, contents (directory sizes and link counts differ between
# squashfs and ext4, and are left out).
TREE = (
    "cd /; for f in $(find opt data old var usr ! -type d | sort); do "
    'stat -c "%n %a %u:%g %h %F %N" "$f"; done; '
    "find opt data old var usr -type d | sort; cat data/hello.txt data/hard.txt opt/tree/link"
)


def short_dir() -> Path:
    """podman refuses a run root longer than 50 characters: pytest's are longer."""
    return Path(tempfile.mkdtemp(prefix="phpc-"))


@pytest.fixture
def hpc() -> Iterator[PodmanHPC]:
    """podman-hpc with a graph root and squash store of this test's own."""
    assert not missing_tools(), f"scripts/setup-test-env installs {missing_tools()}"
    hpc = PodmanHPC.create(short_dir())
    yield hpc
    remove_tree(hpc.root)


@pytest.fixture(scope="session")
def podman_images(
    phpc_store: Store, podman: Podman, tmp_path_factory: pytest.TempPathFactory
) -> Podman:
    """The same images in plain podman (its own root), loaded from oci-archives."""
    from ocibuild.store.export import export_image

    work = tmp_path_factory.mktemp("phpc-archives")
    for ref in (DEMO, WHITEOUT_USER, SAME_LAYERS, REF):
        archive = work / "image.tar"
        export_image(phpc_store, ref, "oci-archive", archive)
        podman("load", "-i", str(archive))
    return podman


def environment(env: str) -> set[str]:
    """`env`'s lines but the container's HOSTNAME (its id) and what podman-hpc adds to every
    run (PODMANHPC_MODULES_DIR)."""
    return {line for line in env.splitlines() if not line.startswith(("HOSTNAME=", "PODMANHPC_"))}


def export(
    capsys: pytest.CaptureFixture[str], store: Store, ref: str, squash: Path, *extra: str
) -> str:
    return run(
        capsys,
        "--store",
        str(store.root),
        "export",
        ref,
        "--format",
        "podman-hpc",
        "-o",
        str(squash),
        *extra,
    )


def records(squash: Path, kind: str) -> list[dict[str, object]]:
    return json.loads((squash / f"overlay-{kind}" / f"{kind}.json").read_text())


def listed(hpc: PodmanHPC) -> dict[str, bool]:
    """`podman-hpc images`: each name and whether it is the squash store's (read-only)."""
    return {name: image["ReadOnly"] for image in hpc.images() for name in image.get("Names") or []}


def test_the_demo_is_listed_and_runs_as_podman_runs_it(
    capsys: pytest.CaptureFixture[str], phpc_store: Store, podman_images: Podman, hpc: PodmanHPC
) -> None:
    export(capsys, phpc_store, DEMO, hpc.squash_dir)
    assert listed(hpc) == {DEMO: True}
    art = hpc.run(DEMO, "art")
    assert art == podman_images.run(DEMO, "art") and art.startswith("art v1_18_03 e9:prof\n")
    # the default command prints the frozen UPS environment (PATH, SETUP_*, ...) from the config
    setup = hpc.run(DEMO)
    assert setup == podman_images.run(DEMO) and "SETUP_ART=art v1_18_03" in setup
    assert (
        hpc.run(DEMO, "id")
        == podman_images.run(DEMO, "id")
        == "uid=1000(hep) gid=1000(hep) groups=1000(hep)\n"
    )


@pytest.mark.parametrize("ref", [WHITEOUT_USER, SAME_LAYERS])
def test_whiteouts_and_a_non_root_user_run_as_in_podman(
    capsys: pytest.CaptureFixture[str],
    phpc_store: Store,
    podman_images: Podman,
    hpc: PodmanHPC,
    ref: str,
) -> None:
    export(capsys, phpc_store, ref, hpc.squash_dir)
    out = hpc.run(ref)
    assert out == podman_images.run(ref)
    assert out.startswith("uid=1000(hep)") and "junk" not in out and "gone.txt" not in out
    assert "new.txt" in out and "old.txt" not in out
    env = hpc.run(ref, "env")
    assert ("SAME_LAYERS=other config" in env) == (ref == SAME_LAYERS)


def test_hardlinks_opaque_directories_and_owners_as_in_podman(
    capsys: pytest.CaptureFixture[str], phpc_store: Store, podman_images: Podman, hpc: PodmanHPC
) -> None:
    export(capsys, phpc_store, REF, hpc.squash_dir)
    tree = hpc.run(REF, "/bin/sh", "-c", TREE)
    assert tree == podman_images.run(REF, "/bin/sh", "-c", TREE)
    assert "data/pair2 640 0:0 2 regular file" in tree  # a hardlink, kept linked
    assert "data/hard.txt 644 1000:1000 1 regular file" in tree  # its file replaced above
    assert "opt/tree/top.txt" not in tree  # a whiteout
    assert "var/cache/lower.txt" not in tree and "old/gone.txt" not in tree  # opaque, whiteout
    env = hpc.run(REF, "/bin/busybox", "env")
    assert environment(env) == environment(podman_images.run(REF, "/bin/busybox", "env"))
    assert "STUDY_VAR=frozen value" in env.splitlines()  # the config's Env


def test_images_sharing_layers_share_one_squash(
    capsys: pytest.CaptureFixture[str], phpc_store: Store, hpc: PodmanHPC
) -> None:
    export(capsys, phpc_store, WHITEOUT_USER, hpc.squash_dir)
    squashes = sorted((hpc.squash_dir / "overlay/l").glob("*.squash"))
    export(capsys, phpc_store, SAME_LAYERS, hpc.squash_dir)
    assert sorted((hpc.squash_dir / "overlay/l").glob("*.squash")) == squashes
    assert len(records(hpc.squash_dir, "images")) == 2
    assert len(records(hpc.squash_dir, "layers")) == 5
    assert set(listed(hpc)) == {WHITEOUT_USER, SAME_LAYERS}


# -- the store migrate leaves ------------------------------------------------------------------------

# What may differ between the two stores, and why (the rest is compared):
# - a layer's `created`: when podman stored it in the graph root, when ocibuild wrote it;
# - link names: random in podman (migrate copies them), derived from the layer id in ocibuild
#   (compared with each replaced by the layer it names);
# - the squash's bytes: migrate's is mksquashfs of a running container (podman's /etc/hosts and
#   friends in it), ocibuild's tar2sqfs of the layers (compared: both named after the top layer);
# - the tar-split's gzip stream (compared gunzipped), the JSON files' formatting (compared parsed),
#   modes (migrate copies podman's 0700/0600; ocibuild writes 0755/0644 for shared stores) and the
#   lock files' last-writer ids.
LAYER_CREATED = "created"


def tree(squash: Path) -> dict[str, str]:
    """Every path of the store with what it is, link names replaced by the layer they name
    (podman's are random, ocibuild's derived from the layer id), so that two stores compare."""
    links = {
        (layer_dir / "link").read_text(): layer_dir.name
        for layer_dir in (squash / "overlay").iterdir()
        if (layer_dir / "link").is_file()
    }
    out = {}
    for path in sorted(squash.rglob("*")):
        relative = str(path.relative_to(squash))
        for link, layer in links.items():
            relative = relative.replace(link, f"<link of {layer[:12]}>")
        kind = "symlink" if path.is_symlink() else "dir" if path.is_dir() else "file"
        if path.is_symlink():
            kind += f" -> {os.readlink(path)}"
        out[relative] = kind
    return out


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    running = start_registry(tmp_path / "registry")
    yield running
    running.stop()


def test_the_store_equals_what_podman_hpc_migrate_leaves(
    capsys: pytest.CaptureFixture[str], phpc_store: Store, registry: Registry, tmp_path: Path
) -> None:
    """Both images (they share busybox's layer) the way a NERSC user gets them: pushed to a
    registry (a real one on 127.0.0.1) and `podman-hpc pull`ed, which migrates them with the
    static mksquashfs; and through the export, into another squash store. (From an oci-archive,
    podman would record the OCI view the store indexes a Docker-format image by, not the
    manifest the registry serves.) Each image goes into a graph root of its own: podman makes a
    layer whose diff id it holds already under another parent (the demo's and whiteout-user's
    top layers are the same `user: hep` layer) from that one's files, and records it
    uncompressed (compressed-size = diff-size, no compression)."""
    theirs, ours = tmp_path / "migrated", tmp_path / "exported"
    mksquashfs = build_static_mksquashfs()
    graph_roots = []
    try:
        for ref in (DEMO, WHITEOUT_USER):
            pushed = f"{registry.host}/{ref.removeprefix('localhost/')}"
            run(capsys, "--store", str(phpc_store.root), "tag", ref, pushed)
            run(capsys, "--store", str(phpc_store.root), "push", pushed)
            migrated = PodmanHPC.create(short_dir(), mksquashfs=mksquashfs, squash_dir=theirs)
            graph_roots.append(migrated.root)
            migrated("pull", "--tls-verify=false", pushed)  # pull migrates
            export(capsys, phpc_store, pushed, ours)
            (image,) = [r for r in records(ours, "images") if pushed in r["names"]]
            assert image["digest"] == phpc_store.image(ref).descriptor.digest

        # images: every field equal, the big-data files byte for byte
        assert records(ours, "images") == records(theirs, "images")
        for image in records(theirs, "images"):
            for file in (theirs / "overlay-images" / str(image["id"])).iterdir():
                assert (
                    ours / "overlay-images" / str(image["id"]) / file.name
                ).read_bytes() == file.read_bytes()

        # layers: the whole chain of both, equal but for when each was stored
        def without_created(layers: list[dict[str, object]]) -> dict[object, dict[str, object]]:
            return {r["id"]: {k: v for k, v in r.items() if k != LAYER_CREATED} for r in layers}

        assert without_created(records(ours, "layers")) == without_created(
            records(theirs, "layers")
        )
        assert len(records(ours, "layers")) == 9  # 5 + 5, busybox's shared
        # tar-split: equal once gunzipped (the gzip streams differ)
        for split in (theirs / "overlay-layers").glob("*.tar-split.gz"):
            assert gzip.decompress(
                (ours / "overlay-layers" / split.name).read_bytes()
            ) == gzip.decompress(split.read_bytes())

        # the same files, directories and symlinks; the squash named after the same (top) layer
        assert tree(ours) == tree(theirs)
        for image in records(ours, "images"):
            top = str(image["layer"])
            for squash in (ours, theirs):
                link = (squash / "overlay" / top / "link").read_text()
                assert (squash / "overlay/l" / f"{link}.squash").is_file()
    finally:
        for root in graph_roots:
            remove_tree(root)


# -- the names ---------------------------------------------------------------------------------------


def stat_all(squash: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.lstat().st_ino, p.lstat().st_mtime_ns) for p in squash.rglob("*")}


def test_exporting_again_changes_nothing(
    capsys: pytest.CaptureFixture[str], phpc_store: Store, hpc: PodmanHPC
) -> None:
    export(capsys, phpc_store, DEMO, hpc.squash_dir)
    before = stat_all(hpc.squash_dir)
    export(capsys, phpc_store, DEMO, hpc.squash_dir)
    assert stat_all(hpc.squash_dir) == before


def test_a_new_tag_only_adds_the_name(
    capsys: pytest.CaptureFixture[str], phpc_store: Store, hpc: PodmanHPC
) -> None:
    export(capsys, phpc_store, DEMO, hpc.squash_dir)
    layers = records(hpc.squash_dir, "layers")
    files = {p for p in stat_all(hpc.squash_dir) if not p.endswith((".json", ".lock"))}
    export(capsys, phpc_store, DEMO, hpc.squash_dir, "--tag", "localhost/hep/art:1.18")
    (image,) = records(hpc.squash_dir, "images")
    assert image["names"] == [DEMO, "localhost/hep/art:1.18"]
    assert image["names-history"] == [DEMO, "localhost/hep/art:1.18"]
    assert records(hpc.squash_dir, "layers") == layers
    assert {p for p in stat_all(hpc.squash_dir) if not p.endswith((".json", ".lock"))} == files
    assert listed(hpc) == {DEMO: True, "localhost/hep/art:1.18": True}
    assert hpc.run("localhost/hep/art:1.18", "art").startswith("art v1_18_03")


def test_a_name_moves_from_the_image_that_had_it(
    capsys: pytest.CaptureFixture[str], phpc_store: Store, hpc: PodmanHPC
) -> None:
    """One name on two images makes every podman command fail: the export takes it from the
    image that held it, as migrate's drop_tag does."""
    name = "localhost/hep/study:latest"
    export(capsys, phpc_store, DEMO, hpc.squash_dir, "--tag", name, "--tag", DEMO)
    export(capsys, phpc_store, WHITEOUT_USER, hpc.squash_dir, "--tag", name)
    by_id = {r["layer"]: r["names"] for r in records(hpc.squash_dir, "images")}
    assert sorted(by_id.values()) == [[name], [DEMO]]
    assert listed(hpc) == {DEMO: True, name: True}
    assert hpc.run(name, "id").startswith("uid=1000(hep)")
    assert hpc.run(name).startswith("uid=1000(hep)")  # whiteout-user's command now


# -- refusals -----------------------------------------------------------------------------------------


def test_a_directory_that_is_not_a_squash_store_is_refused(
    capsys: pytest.CaptureFixture[str], phpc_store: Store, tmp_path: Path
) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "notes.txt").write_text("mine\n")
    err = fail(
        capsys,
        "--store",
        str(phpc_store.root),
        "export",
        DEMO,
        "--format",
        "podman-hpc",
        "-o",
        str(tmp_path / "home"),
    )
    assert f"{tmp_path / 'home'} is not a podman-hpc squash store (no overlay-images/)" in err
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == ["notes.txt"]
    err = fail(
        capsys,
        "--store",
        str(phpc_store.root),
        "export",
        DEMO,
        "--format",
        "podman-hpc",
        "--all-root",
        "-o",
        str(tmp_path / "sq"),
    )
    assert "--all-root and --xattrs do not apply to --format podman-hpc" in err
    assert not (tmp_path / "sq").exists()


def test_a_half_written_images_json_is_reported_and_left_alone(
    capsys: pytest.CaptureFixture[str], phpc_store: Store, hpc: PodmanHPC
) -> None:
    """What podman-hpc's migrate leaves when killed while it writes images.json in place."""
    export(capsys, phpc_store, DEMO, hpc.squash_dir)
    images_json = hpc.squash_dir / "overlay-images/images.json"
    half = images_json.read_bytes()[:100]
    images_json.write_bytes(half)
    err = fail(
        capsys,
        "--store",
        str(phpc_store.root),
        "export",
        WHITEOUT_USER,
        "--format",
        "podman-hpc",
        "-o",
        str(hpc.squash_dir),
    )
    assert f"{images_json}: not valid JSON" in err and "nothing was changed" in err
    assert images_json.read_bytes() == half


def test_a_link_name_leading_out_of_the_store_is_refused(
    capsys: pytest.CaptureFixture[str], phpc_store: Store, hpc: PodmanHPC
) -> None:
    """A store others write to (a group's) may hold anything: a link file naming a path
    outside it stops the export before it writes there."""
    export(capsys, phpc_store, DEMO, hpc.squash_dir)
    base = str(records(hpc.squash_dir, "layers")[0]["id"])
    (hpc.squash_dir / "overlay" / base / "link").write_text("../../../escaped")
    argv = ["--store", str(phpc_store.root), "export", WHITEOUT_USER, "--format", "podman-hpc"]
    err = fail(capsys, *argv, "-o", str(hpc.squash_dir))
    assert "'../../../escaped' is not the link name in " in err and "tampered with" in err
    assert not (hpc.squash_dir.parent / "escaped").exists()
    assert not (hpc.squash_dir.parent / "escaped.squash").exists()
