"""Fault tests: the real `ocibuild` command in a subprocess, stores on small tmpfs mounts
(disk full, read-only), kill -9 at points of each store-writing command, and the store
checked afterwards, every blob re-hashed."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ocibuild.cli import main
from tests.registry.conftest import Registry, start_registry

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


def ocibuild(
    store: Path,
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    isolated: bool = False,
    timeout: float = 60,
) -> Result:
    """`ocibuild --store STORE ARGS...` (`env` added to the environment): exit status, stdout,
    stderr. Run in this process, or with `isolated` in a subprocess (for what could hang)."""
    argv = ["--store", str(store), *args]
    if isolated:
        done = subprocess.run(
            [sys.executable, "-m", "ocibuild", *argv],
            check=False,
            cwd=cwd,
            env={**ENV, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Result(done.returncode, done.stdout, done.stderr)
    out, err = io.StringIO(), io.StringIO()
    saved = {name: os.environ.get(name) for name in env or {}}
    here = Path.cwd()
    try:
        os.environ.update(env or {})
        os.chdir(cwd or here)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    finally:
        os.chdir(here)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return Result(code, out.getvalue(), err.getvalue())


def start(store: Path, *args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ocibuild", "--store", str(store), "-q", *args],
        cwd=cwd,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def one_error_line(result: Result, *expected: str) -> str:
    """The command failed with exit status 1 and one `error:` line holding `expected`."""
    assert result.code == 1, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.err
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def check_store(store: Path, state: bool = True) -> set[str]:
    """The store is consistent: every blob's sha256 is its name, index.json parses and every
    blob of every indexed image exists, and (with `state`) the state database is intact (this
    opens it for writing, which rolls back what a killed writer left). The indexed refs."""
    if not (store / "oci-layout").exists():
        return set()  # killed before the store was made: the next command makes it
    blobs = store / "blobs" / "sha256"
    for path in blobs.iterdir():
        if path.name.startswith(".tmp-"):
            continue  # a pending blob: never read under this name, removed by gc
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name, path
    index = json.loads((store / "index.json").read_bytes())
    refs = set()
    for descriptor in index["manifests"]:
        name = descriptor.get("annotations", {}).get("org.opencontainers.image.ref.name")
        if name:  # artifacts about an image (SBOM, provenance) are indexed without one
            refs.add(name)
        manifest = json.loads((blobs / descriptor["digest"][7:]).read_bytes())
        for blob in [manifest["config"], *manifest["layers"]]:
            assert (blobs / blob["digest"][7:]).is_file(), blob
    db = store / ".ocibuild" / "state.db"
    if state and db.exists():
        with sqlite3.connect(db) as conn:  # rolls back a journal left by a killed writer
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    return refs


def snapshot(store: Path) -> dict[str, str]:
    """Every file of the store but its lock files, re-hashed."""
    return {
        str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(store.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


@dataclass
class Tmpfs:
    """A small tmpfs mounted for one test: fill it, or remount it read-only."""

    path: Path

    def remount(self, *options: str) -> None:
        subprocess.run(["mount", "-o", ",".join(["remount", *options]), str(self.path)], check=True)

    def fill(self) -> None:
        """Take every free byte (a file written until ENOSPC)."""
        with open(self.path / "filler", "wb", buffering=0) as f:
            chunk = b"\0" * (64 << 10)
            try:
                while True:
                    f.write(chunk)
            except OSError:
                pass
            try:
                while True:
                    f.write(b"\0" * 512)
            except OSError:
                pass

    def unfill(self) -> None:
        (self.path / "filler").unlink(missing_ok=True)


def mounted_tmpfs(path: Path, size: str) -> Iterator[Tmpfs]:
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield Tmpfs(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Tmpfs]:
    """A 2 MiB tmpfs (the test needs root, as the suite does)."""
    yield from mounted_tmpfs(tmp_path / "tmpfs", "2m")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    running = start_registry(tmp_path_factory.mktemp("registry"))
    yield running
    running.stop()


def write_recipe(directory: Path, name: str, layers: dict[str, bytes]) -> Path:
    """A recipe building `name` from one `files` layer per item (file name -> content)."""
    lines = [f"images:\n  - name: {name}\n    layers:\n"]
    for file, data in layers.items():
        (directory / file).write_bytes(data)
        lines.append(f"      - files: [{{src: {file}, dest: /{file}}}]\n")
    recipe = directory / f"{name.replace('/', '_').replace(':', '_')}.yaml"
    recipe.write_text("".join(lines))
    return recipe
