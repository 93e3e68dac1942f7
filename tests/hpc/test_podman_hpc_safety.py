"""The podman-hpc export as a writer of a store others read and write: killed at every step,
run twice at once, read by podman while it writes; and removal, ocibuild's and podman-hpc's
own (`rmi`, `rmsqi`), with the real podman-hpc 1.2.2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocibuild.cli import main
from ocibuild.store import Store
from ocibuild.store.cstorage import STOP_AT
from tests.cli import fail, run
from tests.hpc.conftest import DEMO, REF, REPO, SAME_LAYERS, WHITEOUT_USER
from tests.hpc.test_podman_hpc import export, listed, records, short_dir
from testsupport.podman_hpc import PodmanHPC, missing_tools, remove_tree

# Where an export can be stopped (store/cstorage.py `checkpoint`), in the order it passes them:
# after the layers' directories and links; inside the squash (tar2sqfs has part of the tar,
# the tar-splits part of theirs); after the big data; holding the locks; after layers.json;
# after images.json.
CHECKPOINTS = ["layers", "squash", "big-data", "locked", "layers-json", "images-json"]


@pytest.fixture
def hpc() -> Iterator[PodmanHPC]:
    assert not missing_tools(), f"scripts/setup-test-env installs {missing_tools()}"
    hpc = PodmanHPC.create(short_dir())
    yield hpc
    remove_tree(hpc.root)


def start_export(
    store: Store, ref: str, squash: Path, stop_at: str | None = None
) -> subprocess.Popen[str]:
    """`ocibuild export REF --format podman-hpc` in a process of its own (this worktree's code)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop(STOP_AT, None)
    if stop_at:
        env[STOP_AT] = stop_at
    argv = [sys.executable, "-m", "ocibuild", "-q", "--store", str(store.root), "export", ref]
    return subprocess.Popen(
        [*argv, "--format", "podman-hpc", "-o", str(squash)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_stopped(proc: subprocess.Popen[str], timeout: float = 120) -> None:
    """Until the process has stopped itself (SIGSTOP) at its checkpoint."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, (
            f"the export ended ({proc.returncode}) before its checkpoint: {proc.communicate()}"
        )
        state = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "T":
            return
        time.sleep(0.02)
    raise AssertionError("the export did not reach its checkpoint")


def finish(proc: subprocess.Popen[str]) -> None:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err


@pytest.mark.parametrize("checkpoint", CHECKPOINTS)
def test_kill_9_leaves_the_images_there_before_and_the_new_one_whole_or_absent(
    capsys: pytest.CaptureFixture[str], phpc_store: Store, hpc: PodmanHPC, checkpoint: str
) -> None:
    export(capsys, phpc_store, DEMO, hpc.squash_dir)  # shares busybox's layer with whiteout-user
    art = hpc.run(DEMO, "art")
    proc = start_export(phpc_store, WHITEOUT_USER, hpc.squash_dir, checkpoint)
    wait_stopped(proc)
    proc.kill()
    proc.wait()

    names = listed(hpc)
    assert names.get(DEMO) is True and hpc.run(DEMO, "art") == art
    if checkpoint == "images-json":  # the last write was done: the image is complete
        assert WHITEOUT_USER in names
        assert hpc.run(WHITEOUT_USER).startswith("uid=1000(hep)")
    else:
        assert WHITEOUT_USER not in names
    # the next export finishes the job, over what the killed one left
    export(capsys, phpc_store, WHITEOUT_USER, hpc.squash_dir)
    assert set(listed(hpc)) == {DEMO, WHITEOUT_USER}
    assert hpc.run(WHITEOUT_USER).startswith("uid=1000(hep)")
    assert len(records(hpc.squash_dir, "layers")) == 9


def test_a_second_writer_and_podman_wait_for_the_locks(phpc_store: Store, hpc: PodmanHPC) -> None:
    """An export holding the store's locks (stopped there) keeps a second export and podman's
    readers (`podman-hpc images` takes shared POSIX locks) waiting; then both land."""
    first = start_export(phpc_store, DEMO, hpc.squash_dir, stop_at="locked")
    wait_stopped(first)
    second = start_export(phpc_store, WHITEOUT_USER, hpc.squash_dir)
    reader = subprocess.Popen(
        [str(hpc.bindir / "podman-hpc"), "images", "--format", "json"],
        env=hpc.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3)
    assert second.poll() is None and reader.poll() is None  # both waiting
    os.kill(first.pid, signal.SIGCONT)
    finish(first)
    finish(second)
    out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err
    assert {n for image in json.loads(out) for n in image.get("Names") or []} <= {
        DEMO,
        WHITEOUT_USER,
    }
    assert set(listed(hpc)) == {DEMO, WHITEOUT_USER}
    assert hpc.run(DEMO, "art").startswith("art v1_18_03")
    assert hpc.run(WHITEOUT_USER).startswith("uid=1000(hep)")


def test_exports_at_once_all_land(phpc_store: Store, hpc: PodmanHPC) -> None:
    procs = [
        start_export(phpc_store, ref, hpc.squash_dir)
        for ref in (DEMO, WHITEOUT_USER, SAME_LAYERS, REF)
    ]
    for proc in procs:
        finish(proc)
    assert set(listed(hpc)) == {DEMO, WHITEOUT_USER, SAME_LAYERS, REF}
    assert len(records(hpc.squash_dir, "layers")) == 9 + 3
    for ref in (WHITEOUT_USER, SAME_LAYERS):
        assert hpc.run(ref).startswith("uid=1000(hep)")
    assert hpc.run(DEMO, "art").startswith("art v1_18_03")


# -- removal -------------------------------------------------------------------------------------------


def rmi(capsys: pytest.CaptureFixture[str], squash: Path, *refs: str) -> str:
    return run(capsys, "rmi", "--podman-hpc", str(squash), *refs)


def test_rmi_says_what_it_could_not_remove(
    capsys: pytest.CaptureFixture[str],
    phpc_store: Store,
    hpc: PodmanHPC,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A layer directory still in use (a container's overlay not yet unmounted) outlives the
    patience: the records go, the directory is named in a warning, not silently left."""
    import ocibuild.store.podmanhpcrmi as rmi_module

    export(capsys, phpc_store, DEMO, hpc.squash_dir)
    (image,) = records(hpc.squash_dir, "images")
    kept = {hpc.squash_dir / "overlay-images" / str(image["id"])} | {
        hpc.squash_dir / "overlay" / str(r["id"]) for r in records(hpc.squash_dir, "layers")
    }
    monkeypatch.setattr(rmi_module, "BUSY_PATIENCE", 0.3)
    monkeypatch.setattr(rmi_module, "remove_tree", lambda path: None)
    code = main(["rmi", "--podman-hpc", str(hpc.squash_dir), DEMO])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.splitlines()[0] == f"untagged {DEMO}"
    assert records(hpc.squash_dir, "layers") == []
    warned = [line for line in err.splitlines() if "not removed, still in use" in line]
    assert {Path(line.split()[1].rstrip(":")) for line in warned} == kept, err


def test_podman_hpc_rmi_never_removes_a_squashed_image(
    capsys: pytest.CaptureFixture[str], phpc_store: Store, hpc: PodmanHPC
) -> None:
    """`podman-hpc rmi` passes through to podman without the squash store: to podman the image
    is not known."""
    export(capsys, phpc_store, DEMO, hpc.squash_dir)
    proc = hpc("rmi", DEMO, check=False)
    assert proc.returncode != 0 and "image not known" in proc.stderr
    assert listed(hpc) == {DEMO: True}


def test_rmsqi_leaves_pieces_and_the_export_writes_over_them(
    capsys: pytest.CaptureFixture[str], phpc_store: Store, hpc: PodmanHPC
) -> None:
    """`podman-hpc rmsqi` takes the image record, its top layer (record, directory, link,
    tar-split, squash) and leaves the rest: the layers below, the image's directory."""
    export(capsys, phpc_store, DEMO, hpc.squash_dir)
    export(capsys, phpc_store, WHITEOUT_USER, hpc.squash_dir)
    image = next(r for r in records(hpc.squash_dir, "images") if r["names"] == [WHITEOUT_USER])
    hpc.rmsqi(WHITEOUT_USER)
    assert listed(hpc) == {DEMO: True}
    assert len(records(hpc.squash_dir, "layers")) == 8  # only the top one went
    assert (hpc.squash_dir / "overlay-images" / str(image["id"])).is_dir()
    assert not list((hpc.squash_dir / "overlay/l").glob("*.squash"))[1:]  # the demo's
    export(capsys, phpc_store, WHITEOUT_USER, hpc.squash_dir)
    assert set(listed(hpc)) == {DEMO, WHITEOUT_USER}
    assert hpc.run(WHITEOUT_USER).startswith("uid=1000(hep)")


def test_rmsqi_of_an_image_sharing_its_squash_breaks_the_store(
    capsys: pytest.CaptureFixture[str], phpc_store: Store, hpc: PodmanHPC
) -> None:
    """Two images with the same layers share the top layer and its squash; rmsqi of one
    removes them, and every podman command then fails on the other's missing layer. (What
    `ocibuild rmi --podman-hpc` avoids, below.) A new export repairs it."""
    export(capsys, phpc_store, WHITEOUT_USER, hpc.squash_dir)
    export(capsys, phpc_store, SAME_LAYERS, hpc.squash_dir)
    hpc.rmsqi(SAME_LAYERS)
    broken = hpc("images", check=False)
    assert broken.returncode == 125 and "layer not known" in broken.stderr
    export(capsys, phpc_store, WHITEOUT_USER, hpc.squash_dir)
    assert listed(hpc) == {WHITEOUT_USER: True}
    assert hpc.run(WHITEOUT_USER).startswith("uid=1000(hep)")


def test_ocibuild_rmi_removes_an_image_and_what_no_other_uses(
    capsys: pytest.CaptureFixture[str], phpc_store: Store, hpc: PodmanHPC
) -> None:
    export(
        capsys,
        phpc_store,
        WHITEOUT_USER,
        hpc.squash_dir,
        "--tag",
        "localhost/hep/w:1",
        "--tag",
        WHITEOUT_USER,
    )
    export(capsys, phpc_store, SAME_LAYERS, hpc.squash_dir)
    export(capsys, phpc_store, DEMO, hpc.squash_dir)
    assert rmi(capsys, hpc.squash_dir, SAME_LAYERS).splitlines()[0] == f"untagged {SAME_LAYERS}"
    assert set(listed(hpc)) == {"localhost/hep/w:1", WHITEOUT_USER, DEMO}
    assert hpc.run(WHITEOUT_USER).startswith("uid=1000(hep)")  # the shared squash stayed
    assert len(records(hpc.squash_dir, "layers")) == 9
    # one of two names: the name only
    assert rmi(capsys, hpc.squash_dir, "localhost/hep/w:1") == "untagged localhost/hep/w:1\n"
    assert hpc.run(WHITEOUT_USER).startswith("uid=1000(hep)")
    # the last name: the image, and the four layers only it used, with their files
    rmi(capsys, hpc.squash_dir, WHITEOUT_USER)
    assert listed(hpc) == {DEMO: True}
    layers = {str(r["id"]) for r in records(hpc.squash_dir, "layers")}
    assert len(layers) == 5
    on_disk = {p.name for p in (hpc.squash_dir / "overlay").iterdir() if p.name != "l"}
    assert on_disk == layers
    assert {
        p.name.split(".")[0] for p in (hpc.squash_dir / "overlay-layers").glob("*.tar-split.gz")
    } == layers
    assert len(list((hpc.squash_dir / "overlay/l").iterdir())) == 5 + 1  # links and the squash
    assert hpc.run(DEMO, "art").startswith("art v1_18_03")
    # by id; then the store holds nothing
    (demo,) = records(hpc.squash_dir, "images")
    assert rmi(capsys, hpc.squash_dir, str(demo["id"])[:12]) == f"deleted {demo['id']}\n"
    assert listed(hpc) == {}
    assert records(hpc.squash_dir, "layers") == [] and not list(
        (hpc.squash_dir / "overlay/l").iterdir()
    )
    assert sorted(p.name for p in (hpc.squash_dir / "overlay-images").iterdir()) == [
        "images.json",
        "images.lock",
    ]


def test_ocibuild_rmi_of_an_unknown_name_changes_nothing(
    capsys: pytest.CaptureFixture[str], phpc_store: Store, hpc: PodmanHPC
) -> None:
    export(capsys, phpc_store, DEMO, hpc.squash_dir)
    before = (hpc.squash_dir / "overlay-images/images.json").read_bytes()
    err = fail(capsys, "rmi", "--podman-hpc", str(hpc.squash_dir), DEMO, "localhost/nothing:1")
    assert (
        f"localhost/nothing:1: no image of the squash store {hpc.squash_dir} has that name or id"
        in err
    )
    assert (hpc.squash_dir / "overlay-images/images.json").read_bytes() == before
    assert listed(hpc) == {DEMO: True}
