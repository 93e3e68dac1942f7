"""Fixtures of the Spack tests: the build caches the real Spack wrote (tests/spack/fixtures),
served over HTTP on 127.0.0.1, recipes that install from them, and the oracle's outputs."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ocibuild.cli import main
from tests.loopback import LoopbackServer
from testsupport.spack_synthetic import write_synthetic_cache

FIXTURES = Path(__file__).parent / "fixtures"
ORACLE = FIXTURES / "oracle"
SIGNED = FIXTURES / "buildcache" / "signed"
UNSIGNED = FIXTURES / "buildcache" / "unsigned"
KEY = FIXTURES / "keys" / "ocibuild-fixtures.pub"
UNKNOWN_KEY = FIXTURES / "keys" / "unknown-signer.pub"
ROOTS = ["zlib@1.2.13", "bzip2@1.0.8", "xz@5.4.1", "gmake@4.3", "ocibuild-zpipe@1.0"]
PADDED_ROOT = (ORACLE / "padded-root.txt").read_text().strip()
TREE_LISTING = (
    Path(__file__).resolve().parents[2] / "scripts" / "spack-fixtures" / "tree_listing.py"
)
REF = "localhost/ocibuild-spack/test:1"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None


@dataclass(frozen=True)
class Served:
    root: Path
    url: str


def serve(root: Path) -> Iterator[Served]:
    server = LoopbackServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(root, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def own_cache(tmp_path: Path) -> Iterator[Served]:
    """A private copy of the signed and unsigned caches over HTTP, for tests that break them."""
    root = tmp_path / "site"
    shutil.copytree(FIXTURES / "buildcache", root)
    yield from serve(root)


@pytest.fixture(scope="session")
def caches() -> Iterator[Served]:
    """The committed caches over HTTP: `{url}/signed`, `{url}/unsigned` (read-only)."""
    yield from serve(FIXTURES / "buildcache")


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic cache with its tarballs made (testsupport/spack_synthetic.py)."""
    dest = tmp_path_factory.mktemp("synthetic") / "cache"
    return write_synthetic_cache(FIXTURES / "synthetic" / "buildcache", dest)


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("OCIBUILD_CACHE", str(cache))
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    return cache


BASE_REF = "localhost/ocibuild-spack/base:1"
# what the external glibc (prefix /usr) shows `spack load` on the machine that made the oracle
USR_DIRS = ("usr/share/man", "usr/share/aclocal", "usr/share/pkgconfig", "usr/lib/pkgconfig")
USR_FILES = "".join(f'          - {{dest: /{d}/.keep, content: ""}}\n' for d in USR_DIRS)


def recipe(path: Path, spack: str, ref: str = REF, base_files: str = USR_FILES) -> Path:
    """A recipe of a base image (Env PATH=/usr/bin:/bin as Spack's oracle ran, `base_files`
    as `files:` items) and, on it, an image of the `spack:` entry."""
    path.write_text(
        "source_date_epoch: 1451606400\n"
        "images:\n"
        f"  - name: {BASE_REF}\n"
        "    from: scratch\n"
        "    env: {PATH: /usr/bin:/bin}\n"
        "    layers:\n"
        "      - files:\n"
        f"{base_files}"
        f"  - name: {ref}\n"
        f"    from: {BASE_REF}\n"
        "    layers:\n"
        f"      - spack: {spack}\n"
    )
    return path


def layers_apart(mp: pytest.MonkeyPatch) -> list[object]:
    """Make the builder write every Spack package layer in a process of its own (as it does
    for heavy ones); the jobs written that way, as they come."""
    from ocibuild.builder import scheduler
    from ocibuild.layer import apart

    jobs: list[object] = []
    write_apart = apart.write_apart

    def counted(job: Any, *args: Any) -> Any:
        jobs.append(job)
        return write_apart(job, *args)

    mp.setattr(scheduler, "APART_WEIGHT", 0)
    mp.setattr(apart, "write_apart", counted)
    return jobs


def build(capsys: pytest.CaptureFixture[str], recipe_file: Path, store: Path) -> None:
    code = main(["--store", str(store), "-q", "recipe", str(recipe_file)])
    _out, err = capsys.readouterr()
    assert code == 0, err


def fail(capsys: pytest.CaptureFixture[str], recipe_file: Path, store: Path) -> str:
    code = main(["--store", str(store), "-q", "recipe", str(recipe_file)])
    out, err = capsys.readouterr()
    assert code == 1, out + err
    return err


def export_dir(capsys: pytest.CaptureFixture[str], store: Path, ref: str, out: Path) -> Path:
    """The image's tree as it is (Spack installs sbang set-gid: the modes are compared)."""
    argv = ["--store", str(store), "export", ref, "--format", "dir", "--keep-setid", "-o", str(out)]
    code = main(argv)
    _, err = capsys.readouterr()
    assert code == 0, err
    return out


def listing(root: Path) -> dict[str, dict[str, str]]:
    """`tree_listing.py` (the script that listed the oracle's tree) of `root`, by path."""
    done = subprocess.run(
        [sys.executable, str(TREE_LISTING), str(root)], capture_output=True, text=True, check=True
    )
    return {e["path"]: e for e in json.loads(done.stdout)["entries"]}


def oracle_listing(name: str) -> dict[str, dict[str, str]]:
    return {e["path"]: e for e in json.loads((ORACLE / name).read_text())["entries"]}


def shell_exports(path: Path) -> dict[str, str]:
    """The `export NAME=VALUE;` lines Spack printed."""
    out = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").rstrip(";").partition("=")
            out[name] = value
    return out
