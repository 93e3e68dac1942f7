"""Store faults: a full disk and a read-only store (small tmpfs mounts), and kill -9 at points
of every command that writes the store. After each: one `error:` line (or, killed, nothing),
the store consistent (every blob re-hashed, every indexed image whole, the state database
intact), and the next command works."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ocibuild.errors import StoreError
from ocibuild.layer.blob import Layer
from ocibuild.oci.digest import Digest
from ocibuild.store import Store
from tests.faults.conftest import (
    Registry,
    Tmpfs,
    check_store,
    mounted_tmpfs,
    ocibuild,
    one_error_line,
    snapshot,
    start,
    write_recipe,
)

SMALL = "example.org/faults/small:1"
BIG = "example.org/faults/big:1"
MIB = 1 << 20


def temporaries(store: Path) -> list[Path]:
    return [*store.glob("blobs/sha256/.tmp-*"), *store.glob(".*.tmp")]


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory, registry: Registry) -> Iterator[Path]:
    """A store with SMALL (one tiny layer) and BIG (3 MiB incompressible: more than the 2 MiB
    tmpfs holds), BIG pushed to the registry and exported as an archive beside the store."""
    root = tmp_path_factory.mktemp("seed")
    small = write_recipe(root, SMALL, {"small.txt": b"small\n"})
    big = write_recipe(root, BIG, {"big.bin": os.urandom(3 * MIB)})
    store = root / "store"
    for recipe in (small, big):
        assert ocibuild(store, "-q", "recipe", str(recipe)).code == 0
    assert ocibuild(store, "-q", "push", BIG, "--to", f"{registry.host}/faults/big:1").code == 0
    assert ocibuild(store, "-q", "export", BIG, "-o", str(root / "big.tar")).code == 0
    yield store


@pytest.fixture
def small_store(tmp_path: Path) -> Iterator[tuple[Path, Tmpfs]]:
    """A store holding SMALL on a 2 MiB tmpfs."""
    for fs in mounted_tmpfs(tmp_path / "fs", "2m"):
        recipe = write_recipe(tmp_path, SMALL, {"small.txt": b"small\n"})
        assert ocibuild(fs.path / "store", "-q", "recipe", str(recipe)).code == 0
        yield fs.path / "store", fs


# -- disk full -------------------------------------------------------------------------------


def disk_full_commands(seed: Path, registry: Registry) -> dict[str, list[str]]:
    return {
        "recipe": ["recipe", str(seed.parent / "example.org_faults_big_1.yaml")],
        "pull": ["pull", f"{registry.host}/faults/big:1"],
        "load": ["load", str(seed.parent / "big.tar")],
    }


@pytest.mark.parametrize("command", ["recipe", "pull", "load"])
def test_disk_full_fails_cleanly_and_the_store_recovers(
    command: str, seed: Path, registry: Registry, small_store: tuple[Path, Tmpfs]
) -> None:
    store, fs = small_store
    argv = disk_full_commands(seed, registry)[command]
    before = snapshot(store)
    one_error_line(ocibuild(store, *argv), f"cannot write to the store {store}", "No space left")
    after = snapshot(store)
    kept = {name: after[name] for name in before}
    assert kept == before  # index, state and blobs as they were
    # pull keeps the blobs it verified in full (the next pull skips them; gc removes them)
    assert all(name.startswith("blobs/sha256/") for name in set(after) - set(before))
    assert not temporaries(store)
    assert check_store(store) == {SMALL}
    fs.remount("size=16m")  # room again: the same command now works
    assert ocibuild(store, "-q", *argv).code == 0
    assert BIG in check_store(store) or f"{registry.host}/faults/big:1" in check_store(store)


@pytest.mark.parametrize("command", [["rmi", SMALL], ["tag", SMALL, "x.org/y:1"], ["gc"]])
def test_a_full_disk_refuses_index_writes_and_keeps_the_index(
    command: list[str], small_store: tuple[Path, Tmpfs]
) -> None:
    store, fs = small_store
    (store / "blobs" / "sha256" / ".tmp-left-by-a-kill").write_bytes(b"x")
    fs.fill()
    index = (store / "index.json").read_bytes()
    result = ocibuild(store, *command)
    if command == ["gc"]:  # gc frees space; it needs none
        assert result.code == 0, result
    else:
        one_error_line(result, f"cannot write to the store {store}", "No space left")
    assert (store / "index.json").read_bytes() == index
    assert check_store(store) == {SMALL}
    fs.unfill()
    assert ocibuild(store, "-q", *command).code == 0


def test_gc_frees_a_full_disk_and_stale_cache_entries_are_not_used(
    small_store: tuple[Path, Tmpfs], tmp_path: Path
) -> None:
    store, fs = small_store
    assert ocibuild(store, "-q", "rmi", SMALL).code == 0
    fs.fill()
    result = ocibuild(store, "gc")
    assert result.code == 0 and result.out.startswith("removed 4 blobs"), result
    assert check_store(store) == set()
    fs.unfill()
    recipe = tmp_path / "example.org_faults_small_1.yaml"
    assert ocibuild(store, "-q", "recipe", str(recipe)).code == 0  # the layer is written again
    assert check_store(store) == {SMALL}


def test_a_full_disk_fails_the_state_database_with_a_store_error(
    small_store: tuple[Path, Tmpfs],
) -> None:
    store_path, fs = small_store
    store = Store.open(store_path)
    layer = Layer(Digest("sha256:" + "a" * 64), 1, Digest("sha256:" + "b" * 64), 1, "x", 1)
    fs.fill()
    with pytest.raises(StoreError, match=r"state\.db: database or disk is full"):
        for n in range(10_000):  # until the database needs a page the disk does not have
            store.state.remember_layers([(f"key-{n}-" + "k" * 200, layer)])
    fs.unfill()
    (store_path / ".ocibuild" / "state.db").unlink()
    fs.fill()
    with pytest.raises(StoreError, match="cannot update the store's state"):
        store.state.remember_layers([("key", layer)])
    fs.unfill()
    assert store.state.cached_layer("key") is None
    assert check_store(store_path) == {SMALL}


# -- read-only -------------------------------------------------------------------------------


@pytest.fixture
def read_only_store(
    small_store: tuple[Path, Tmpfs], seed: Path, registry: Registry
) -> Iterator[Path]:
    store, fs = small_store
    fs.remount("size=16m")
    assert ocibuild(store, "-q", "load", str(seed.parent / "big.tar")).code == 0
    assert ocibuild(store, "-q", "rmi", SMALL).code == 0  # garbage for gc --dry-run
    fs.remount("ro")
    yield store


def test_a_read_only_store_serves_the_commands_that_read(
    read_only_store: Path, registry: Registry, tmp_path: Path
) -> None:
    store = read_only_store
    before = snapshot(store)
    result = ocibuild(store, "gc", "--dry-run")
    assert result.code == 0 and result.out.startswith("would remove 9 blobs"), result
    assert BIG in ocibuild(store, "images").out
    assert ocibuild(store, "inspect", BIG).code == 0
    assert ocibuild(store, "-q", "export", BIG, "-o", str(tmp_path / "x.tar")).code == 0
    pushed = ocibuild(store, "push", BIG, "--to", f"{registry.host}/faults/ro:1")
    assert pushed.code == 0, pushed
    assert pushed.out.startswith(f"{registry.host}/faults/ro:1@sha256:")
    assert snapshot(store) == before


def test_a_read_only_store_refuses_writing_commands_with_one_line(
    read_only_store: Path, seed: Path, registry: Registry
) -> None:
    store = read_only_store
    before = snapshot(store)
    for argv in (
        ["recipe", str(seed.parent / "example.org_faults_small_1.yaml")],
        ["gc"],
        ["rmi", BIG],
        ["tag", BIG, "x.org/y:1"],
        ["pull", f"{registry.host}/faults/big:1"],
        ["load", str(seed.parent / "big.tar")],
    ):
        one_error_line(ocibuild(store, *argv), f"the store {store} is read-only")
    assert snapshot(store) == before
    assert check_store(store) == {BIG}


def test_a_read_only_store_without_ocibuild_state_is_read(
    tmp_path: Path, seed: Path, registry: Registry
) -> None:
    """A layout another tool wrote (no .ocibuild: no lock files, no state database)."""
    for fs in mounted_tmpfs(tmp_path / "fs", "16m"):
        store = fs.path / "store"
        shutil.copytree(seed, store, ignore=shutil.ignore_patterns(".ocibuild"))
        fs.remount("ro")
        assert ocibuild(store, "gc", "--dry-run").code == 0
        assert ocibuild(store, "push", BIG, "--to", f"{registry.host}/faults/ro2:1").code == 0
        one_error_line(ocibuild(store, "rmi", BIG), "is read-only")


# -- kill -9 ---------------------------------------------------------------------------------

RNG = random.Random(14)
Trigger = Callable[[float], bool]  # seconds since the start -> kill now?


def after(part: float) -> Callable[[float], Trigger]:
    """Kill after `part` of the time an uninterrupted run took."""
    return lambda took: lambda elapsed: elapsed >= part * took


def at_random() -> Callable[[float], Trigger]:
    return after(RNG.uniform(0.2, 0.95))


def when(condition: Callable[[], bool]) -> Callable[[float], Trigger]:
    """Kill as soon as `condition` holds (polled each millisecond)."""
    return lambda took: lambda elapsed: condition()


def pending_blob_over(store: Path, size: int) -> Callable[[], bool]:
    def check() -> bool:
        for path in store.glob("blobs/sha256/.tmp-*"):
            try:
                if path.stat().st_size > size:
                    return True
            except FileNotFoundError:
                pass
        return False

    return check


def killed(
    store: Path,
    argv: list[str],
    prepare: Callable[[], None],
    triggers: list[Callable[[float], Trigger]],
    then: list[str] | None = None,
) -> int:
    """Run `argv` to completion once (timing it), then once per trigger killed with SIGKILL
    when the trigger fires; after each kill the store must be consistent and the next command
    (`then`, else the same again) must work. Returns how many runs were killed before they
    ended."""
    prepare()
    began = time.monotonic()
    assert ocibuild(store, *argv, isolated=True).code == 0
    took = time.monotonic() - began
    interrupted = 0
    for make in triggers:
        trigger = make(took)
        prepare()
        process = start(store, *argv)
        began = time.monotonic()
        while process.poll() is None and not trigger(time.monotonic() - began):
            time.sleep(0.001)
        interrupted += process.poll() is None
        process.send_signal(signal.SIGKILL)
        process.wait()
        check_store(store, state=False)
        again = ocibuild(store, *(then or argv), isolated=True)
        assert again.code == 0, again
        check_store(store)
    assert ocibuild(store, "-q", "gc").code == 0
    assert not temporaries(store)
    check_store(store)
    return interrupted


def test_kill_during_recipe(tmp_path: Path) -> None:
    layers = {f"l{n}.bin": os.urandom(2 * MIB) for n in range(4)}
    recipe = write_recipe(tmp_path, "example.org/faults/kill:1", layers)
    store = tmp_path / "store"
    triggers = [at_random(), at_random(), when(pending_blob_over(store, MIB))]
    assert killed(store, ["recipe", str(recipe)], lambda: shutil.rmtree(store, True), triggers)
    assert check_store(store) == {"example.org/faults/kill:1"}


def test_kill_during_pull(tmp_path: Path, registry: Registry) -> None:
    store = tmp_path / "store"
    ref = f"{registry.host}/faults/big:1"
    triggers = [at_random(), at_random(), when(pending_blob_over(store, 0))]
    assert killed(store, ["pull", ref], lambda: shutil.rmtree(store, True), triggers)
    assert check_store(store) == {ref}


def test_kill_during_load(tmp_path: Path, seed: Path) -> None:
    store = tmp_path / "store"
    archive = str(seed.parent / "big.tar")
    triggers = [at_random(), at_random(), when(pending_blob_over(store, MIB))]
    assert killed(store, ["load", archive], lambda: shutil.rmtree(store, True), triggers)
    assert check_store(store) == {BIG}


def fresh_copy(seed: Path, store: Path, garbage: int = 0) -> Callable[[], None]:
    """The seed store copied to `store`, with `garbage` blobs no image refers to."""

    def prepare() -> None:
        shutil.rmtree(store, ignore_errors=True)
        shutil.copytree(seed, store)
        for n in range(garbage):
            data = b"garbage %d" % n
            (store / "blobs" / "sha256" / hashlib.sha256(data).hexdigest()).write_bytes(data)

    return prepare


def test_kill_during_gc(tmp_path: Path, seed: Path) -> None:
    store = tmp_path / "store"
    blobs = store / "blobs" / "sha256"
    half_done = when(lambda: len(os.listdir(blobs)) < 1500)
    killed(store, ["gc"], fresh_copy(seed, store, garbage=2000), [at_random(), half_done])
    assert check_store(store) == {SMALL, BIG}


def test_kill_during_rmi_and_tag(tmp_path: Path, seed: Path) -> None:
    store = tmp_path / "store"
    triggers = [at_random(), at_random()]
    killed(store, ["rmi", BIG], fresh_copy(seed, store), triggers, then=["tag", SMALL, BIG])
    assert check_store(store) == {SMALL, BIG}
    targets = [f"example.org/faults/t{n}:1" for n in range(50)]
    killed(store, ["tag", SMALL, *targets], fresh_copy(seed, store), [at_random(), at_random()])
    assert check_store(store) == {SMALL, BIG, *targets}


def test_a_full_download_cache_is_one_error(tmp_path: Path, tmpfs: Tmpfs) -> None:
    """The cache on a full disk: one line naming it, no partial download left in it."""
    from tests.hostile.debrepo import apt_repo, deb_bytes, deb_recipe

    name = "big_1.0_amd64.deb"
    deb = deb_bytes({"Package": "big"}, [], data=tarfile_of_random(3 * MIB))
    url = apt_repo(tmp_path / "apt", {name: deb}, {name: {"Package": "big"}})
    (tmp_path / "deb.yaml").write_text(deb_recipe(url, "big"))
    result = ocibuild(
        tmp_path / "store",
        "recipe",
        str(tmp_path / "deb.yaml"),
        env={"OCIBUILD_CACHE": str(tmpfs.path / "cache")},
    )
    one_error_line(result, f"cannot write to the download cache {tmpfs.path / 'cache'}", "No space")
    cache = tmpfs.path / "cache"
    assert [
        p for p in cache.rglob("*") if p.is_file() and p.relative_to(cache).parts[0] == "tmp"
    ] == []


def tarfile_of_random(size: int) -> bytes:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("./opt/random.bin")
        info.size = size
        tar.addfile(info, io.BytesIO(os.urandom(size)))
    return buffer.getvalue()
