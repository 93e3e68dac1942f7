"""The output-path policy, through every command that writes a path a user gave: files are
replaced atomically, symlinks followed, character devices and FIFOs written through, the rest
refused with one line; parent directories are never made. Device nodes are made here (mknod in
the test's directory), never the machine's own."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from ocibuild.errors import OutputError
from ocibuild.outpath import output_directory, output_target, write_output
from tests.faults.conftest import Registry, ocibuild, one_error_line

REF = "example.org/faults/out:1"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("out")
    (root / "r.yaml").write_text(
        f"images:\n  - name: {REF}\n    layers:\n      - files: [{{content: hello, dest: /x}}]\n"
    )
    assert ocibuild(root / "store", "-q", "recipe", str(root / "r.yaml")).code == 0
    return root / "store"


def device(path: Path, minor: int) -> Path:
    """A character device of the mem driver (1:3 null, 1:7 full) at `path`."""
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    return path


def export(store: Path, output: Path, *options: str) -> subprocess.CompletedProcess[str]:
    result = ocibuild(store, "export", REF, "-o", str(output), *options)
    return subprocess.CompletedProcess([], result.code, result.out, result.err)


@pytest.mark.parametrize("fmt", ["oci-archive", "squashfs"])
def test_a_full_device_fails_with_enospc_and_stays_a_device(
    fmt: str, store: Path, tmp_path: Path
) -> None:
    full = device(tmp_path / "full", 7)
    result = ocibuild(store, "export", REF, "--format", fmt, "-o", str(full))
    assert result.code == 1
    line = result.err.strip().splitlines()[-1]
    assert line.startswith("error: ") and str(full) in line
    assert "No space left on device" in line or "I/O error" in line  # tar2sqfs words it so
    assert stat.S_ISCHR(full.lstat().st_mode)
    assert full.lstat().st_rdev == os.makedev(1, 7)
    assert os.listdir(tmp_path) == ["full"]


@pytest.mark.parametrize("fmt", ["oci-archive", "docker-archive", "squashfs"])
def test_a_null_device_is_written_through(fmt: str, store: Path, tmp_path: Path) -> None:
    null = device(tmp_path / "null", 3)
    assert export(store, null, "--format", fmt).returncode == 0
    assert stat.S_ISCHR(null.lstat().st_mode)
    assert os.listdir(tmp_path) == ["null"]


def test_a_fifo_is_written_through(store: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    assert export(store, fifo).returncode == 0
    reader.join(timeout=30)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert received and received[0][257:262] == b"ustar"  # a tar came through


def test_a_symlink_is_followed_and_its_target_replaced(store: Path, tmp_path: Path) -> None:
    (tmp_path / "real.tar").write_text("old")
    (tmp_path / "link.tar").symlink_to("real.tar")
    (tmp_path / "dangling.tar").symlink_to("new.tar")
    assert export(store, tmp_path / "link.tar").returncode == 0
    assert export(store, tmp_path / "dangling.tar").returncode == 0
    assert os.readlink(tmp_path / "link.tar") == "real.tar"
    assert os.readlink(tmp_path / "dangling.tar") == "new.tar"
    assert (tmp_path / "real.tar").read_bytes()[257:262] == b"ustar"
    assert (tmp_path / "new.tar").read_bytes() == (tmp_path / "real.tar").read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["dangling.tar", "link.tar", "new.tar", "real.tar"]


def test_a_regular_file_is_replaced_whole(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "image.tar"
    out.write_bytes(b"x" * 1_000_000)
    assert export(store, out).returncode == 0
    assert out.stat().st_size < 1_000_000 and out.read_bytes()[257:262] == b"ustar"
    assert os.listdir(tmp_path) == ["image.tar"]


def refused(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    (tmp_path / "dir").mkdir()
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    sock.close()
    os.mknod(tmp_path / "blk", stat.S_IFBLK | 0o600, os.makedev(7, 0))
    (tmp_path / "loop").symlink_to("loop")
    return {
        "directory": (tmp_path / "dir", "is a directory"),
        "socket": (tmp_path / "sock", "is a socket"),
        "block device": (tmp_path / "blk", "is a block device"),
        "missing parent": (
            tmp_path / "no" / "such" / "x.tar",
            f"directory {tmp_path / 'no' / 'such'} does not exist",
        ),
        "parent is a file": (tmp_path / "sock" / "x.tar", "is not a directory"),
        "symlink loop": (tmp_path / "loop", "symbolic links"),
        "/proc/version": (Path("/proc/version"), "cannot create a file in /proc"),
    }


@pytest.mark.parametrize("fmt", ["oci-archive", "squashfs"])
def test_refused_targets_give_one_line_and_are_left_alone(
    fmt: str, store: Path, tmp_path: Path
) -> None:
    for name, (target, reason) in refused(tmp_path).items():
        before = sorted(os.listdir(tmp_path))
        result = ocibuild(store, "export", REF, "--format", fmt, "-o", str(target))
        one_error_line(result, f"cannot write {target}", reason)
        assert sorted(os.listdir(tmp_path)) == before, name
    assert not (tmp_path / "no").exists()
    assert stat.S_ISBLK((tmp_path / "blk").lstat().st_mode)


def test_dir_format_needs_an_empty_or_new_directory_in_an_existing_one(
    store: Path, tmp_path: Path
) -> None:
    one_error_line(
        ocibuild(store, "export", REF, "--format", "dir", "-o", str(tmp_path / "a" / "b")),
        "directory",
        "does not exist",
    )
    assert not (tmp_path / "a").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    one_error_line(
        ocibuild(store, "export", REF, "--format", "dir", "-o", str(tmp_path / "full")),
        "not empty",
    )
    (tmp_path / "empty").mkdir()
    (tmp_path / "link").symlink_to("empty")
    assert ocibuild(store, "export", REF, "--format", "dir", "-o", str(tmp_path / "link")).code == 0
    assert (tmp_path / "link").is_symlink() and (tmp_path / "empty" / "x").read_text() == "hello"


def test_the_policy_in_the_library(tmp_path: Path) -> None:
    null = device(tmp_path / "null", 3)
    assert output_target(null).through
    assert not output_target(tmp_path / "new").through
    write_output(tmp_path / "new", b"data", mode=0o600)
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o600
    with pytest.raises(OutputError, match="does not exist"):
        output_directory(tmp_path / "x" / "y")
    with pytest.raises(OutputError, match="No space left on device"):
        write_output(device(tmp_path / "full", 7), b"data")


def test_bench_report_makes_its_directory_but_not_its_parents(tmp_path: Path) -> None:
    result = ocibuild(
        tmp_path / "store", "bench", "report", "x=nothing.db", "-o", str(tmp_path / "a" / "b")
    )
    one_error_line(result, "does not exist", str(tmp_path / "a"))
    result = ocibuild(
        tmp_path / "store", "bench", "build-workload", "-o", str(tmp_path / "a" / "b")
    )
    one_error_line(result, f"cannot write {tmp_path}/a/b: directory {tmp_path}/a does not exist")
    assert not (tmp_path / "a").exists()


def test_a_lock_file_behind_a_symlink_is_updated_through_it(tmp_path: Path) -> None:
    from ocibuild.fetch.lockfile import LockFile

    (tmp_path / "locks").mkdir()
    (tmp_path / "locks" / "r.yaml.lock").write_text('{"version": 1, "files": {}}\n')
    (tmp_path / "r.yaml.lock").symlink_to("locks/r.yaml.lock")
    lock = LockFile.for_recipe(tmp_path / "r.yaml")
    lock.set_resolution("key", "value")
    lock.save()
    assert (tmp_path / "r.yaml.lock").is_symlink()
    assert json.loads((tmp_path / "locks" / "r.yaml.lock").read_text())["resolved"] == {
        "key": "value"
    }


def test_login_writes_through_a_symlinked_docker_config(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "docker"
    config.mkdir()
    (tmp_path / "dotfiles").mkdir()
    (tmp_path / "dotfiles" / "config.json").write_text('{"auths": {}, "keep": 1}\n')
    (config / "config.json").symlink_to(tmp_path / "dotfiles" / "config.json")
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    done = subprocess.run(
        ["ocibuild", "login", "-u", "u", "--password-stdin", registry.host],
        input="p\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (config / "config.json").is_symlink(), (done.stdout, os.listdir(config))
    saved = json.loads((tmp_path / "dotfiles" / "config.json").read_text())
    assert registry.host in saved["auths"] and saved["keep"] == 1


def test_login_into_a_missing_docker_config_directory_is_an_error(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no" / "such"))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    done = subprocess.run(
        ["ocibuild", "login", "-u", "u", "--password-stdin", registry.host],
        input="p\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: cannot write {tmp_path}/no/such/config.json: directory "
        f"{tmp_path}/no/such does not exist"
    ]
    assert not (tmp_path / "no").exists()
