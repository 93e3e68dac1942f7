"""The core builder end to end, checked with the real umoci, skopeo and podman."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from ocibuild.builder import build_recipe
from ocibuild.store import Store
from tests.core.conftest import copy_project, ocibuild


def build(project: Path, store: Path, *extra: str) -> dict[str, str]:
    out = subprocess.run(
        [
            "python3",
            "-m",
            "ocibuild",
            "--store",
            str(store),
            "recipe",
            str(project / "hep.yaml"),
            *extra,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return dict(line.split("@", 1) for line in out.stdout.split())


def test_same_recipe_same_digest_in_fresh_stores_at_other_times(
    project: Path, tmp_path: Path
) -> None:
    first = build(project, tmp_path / "s1")
    time.sleep(1.1)
    other = copy_project(project, tmp_path / "copy")
    second = build(other, tmp_path / "s2")
    assert first == second
    assert set(first) == {
        "example.org/hep/base:1.0",
        "example.org/hep/base:latest",
        "example.org/hep/study:1.0",
    }


def test_umoci_unpack_gives_the_expected_tree(project: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    build(project, store)
    bundle = tmp_path / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--image", f"{store}:example.org/hep/study:1.0", str(bundle)],
        check=True,
        capture_output=True,
    )
    root = bundle / "rootfs"
    found = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        rel = path.relative_to(root).as_posix()
        kind = "l" if path.is_symlink() else "d" if path.is_dir() else "f"
        found[rel] = (kind, oct(st.st_mode & 0o7777), st.st_uid, st.st_gid)
    assert found == {
        "etc": ("d", "0o755", 0, 0),
        "etc/build_base_setup.sh": ("f", "0o600", 0, 0),
        "etc/foo.sh": ("f", "0o644", 0, 0),
        "etc/profile.d": ("d", "0o755", 0, 0),
        "etc/profile.d/ocibuild-01.sh": ("f", "0o644", 0, 0),
        "study": ("d", "0o755", 1000, 1000),
        "study/hard.txt": ("f", "0o644", 1000, 1000),
        "study/hello.txt": ("f", "0o644", 1000, 1000),
        "study/link.txt": ("l", "0o777", 1000, 1000),
        "study/run.sh": ("f", "0o755", 1000, 1000),
        "study/sub": ("d", "0o755", 1000, 1000),
        "study/sub/deep.txt": ("f", "0o644", 1000, 1000),
        "tmp": ("d", "0o755", 0, 0),
        "tmp/keep": ("f", "0o644", 0, 0),
    }
    assert (root / "study/hello.txt").stat().st_ino == (root / "study/hard.txt").stat().st_ino
    assert os.readlink(root / "study/link.txt") == "hello.txt"
    assert (root / "study/run.sh").read_text() == "#!/bin/sh\necho run\n"
    assert "source /etc/build_base_setup.sh" in (root / "etc/profile.d/ocibuild-01.sh").read_text()
    assert not (root / "tmp/junk").exists()


def test_skopeo_inspect_shows_the_config(project: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    build(project, store)
    out = subprocess.run(
        ["skopeo", "inspect", "--config", f"oci:{store}:example.org/hep/study:1.0"],
        check=True,
        capture_output=True,
        text=True,
    )
    config = json.loads(out.stdout)["config"]
    assert config["Env"] == [
        "LANG=C",
        "PATH=/usr/bin:/bin",
        "FOO=1",
        "STUDY_PATH=/usr/bin:/bin:/study",
    ]
    assert config["Cmd"] == ["/bin/sh", "-l"]
    assert config["Labels"] == {"Vendor": "FNAL", "License": "BSD"}
    assert config["User"] == "1000"
    assert config["WorkingDir"] == "/study"


def test_unchanged_rebuild_writes_nothing_and_is_fast(project: Path, tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    build_recipe(project / "hep.yaml", store)
    blobs = sorted(p.name for p in store.blobs.iterdir())
    mtimes = {p.name: p.stat().st_mtime_ns for p in store.blobs.iterdir()}
    started = time.monotonic()
    again = build_recipe(project / "hep.yaml", store)
    assert time.monotonic() - started < 1.0
    assert all(layer.cached for image in again for layer in image.layers)
    assert sorted(p.name for p in store.blobs.iterdir()) == blobs
    assert {p.name: p.stat().st_mtime_ns for p in store.blobs.iterdir()} == mtimes


def test_changing_one_file_rebuilds_only_its_layer_and_later(project: Path, tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    first = build_recipe(project / "hep.yaml", store)
    (project / "setup.sh").write_text("export FROM_SETUP=2\n")
    second = build_recipe(project / "hep.yaml", store)
    base1, base2 = first[0], second[0]
    assert [layer.cached for layer in base2.layers] == [False, True]
    assert base1.layers[1].descriptor == base2.layers[1].descriptor
    assert base1.layers[0].descriptor != base2.layers[0].descriptor
    assert all(layer.cached for layer in second[1].layers)  # its own layers did not change
    assert second[1].descriptor != first[1].descriptor  # but its base did


def test_two_builds_at_once_share_the_store(project: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    cmd = [
        "python3",
        "-m",
        "ocibuild",
        "--store",
        str(store),
        "recipe",
        "--no-cache",
        str(project / "hep.yaml"),
    ]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert outs[0][0] == outs[1][0]
    subprocess.run(
        ["skopeo", "inspect", f"oci:{store}:example.org/hep/base:latest"],
        check=True,
        capture_output=True,
    )
    assert not [p for p in (store / "blobs" / "sha256").iterdir() if p.name.startswith(".tmp")]


def test_images_inspect_gc(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    assert ocibuild("--store", str(store), "-q", "recipe", str(project / "hep.yaml")) == 0
    capsys.readouterr()
    assert ocibuild("--store", str(store), "images") == 0
    listing = capsys.readouterr().out
    assert "example.org/hep/study:1.0" in listing and "example.org/hep/base:latest" in listing
    assert ocibuild("--store", str(store), "inspect", "--config", "example.org/hep/study:1.0") == 0
    assert json.loads(capsys.readouterr().out)["config"]["User"] == "1000"
    before = len(list((store / "blobs" / "sha256").iterdir()))
    assert ocibuild("--store", str(store), "rmi", "example.org/hep/study:1.0") == 0
    assert ocibuild("--store", str(store), "gc") == 0
    after = len(list((store / "blobs" / "sha256").iterdir()))
    assert after < before
    for ref in ("example.org/hep/base:1.0",):
        subprocess.run(
            ["umoci", "stat", "--image", f"{store}:{ref}"], check=True, capture_output=True
        )
    assert ocibuild("--store", str(store), "inspect", "example.org/hep/study:1.0") == 1


def test_a_layer_failing_while_written_leaves_the_store_unchanged(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ocibuild.errors import LayerError
    from ocibuild.sources import SOURCES, Source, remove
    from ocibuild.sources.base import LayerPlan

    def failing_plan(spec: str, ctx: object) -> list[LayerPlan]:
        def entries() -> list[object]:
            time.sleep(0.2)  # let the sibling layer finish first
            raise LayerError(f"{spec}: broken while streaming")

        return [LayerPlan(key="broken", description="broken", entries=entries, created_by="x")]

    monkeypatch.setitem(SOURCES, "broken", Source("broken", str, failing_plan, ""))
    (project / "bad.yaml").write_text(
        "images:\n  - name: a/b\n    layers:\n"
        "      - files: [{content: big, dest: /big}]\n"
        "      - broken: tarball.tar.bz2\n"
    )
    store = Store.open(tmp_path / "store")
    with pytest.raises(LayerError, match="broken while streaming"):
        build_recipe(project / "bad.yaml", store)
    assert list(store.blobs.iterdir()) == []
    assert store.refs() == {}
    # and nothing was remembered in the layer cache: the next build writes the good layer again
    monkeypatch.setitem(SOURCES, "broken", Source("broken", list[str], remove.plan, ""))
    (project / "bad.yaml").write_text(
        "images:\n  - name: a/b\n    layers:\n"
        "      - files: [{content: big, dest: /big}]\n"
        "      - broken: [/tmp]\n"
    )
    built = build_recipe(project / "bad.yaml", store)
    assert [layer.cached for layer in built[0].layers] == [False, False]
