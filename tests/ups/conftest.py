"""Fixtures for the UPS tests: scisoft-format mirrors of synthetic products served over HTTP on
127.0.0.1 (the standard library's http.server in a thread), and recipe helpers."""

from __future__ import annotations

import hashlib
import http.server
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ocibuild.cli import main
from tests.loopback import LoopbackServer
from testsupport.synthetic_ups import art_bundle, nu_bundle, write_mirror


@dataclass
class Mirror:
    """A scisoft mirror directory served at `url`; `requests` lists the paths asked for (GET).
    A GET of a path ending with a key of `held` waits until that event is set (at most 30 s)."""

    root: Path
    url: str
    requests: list[str] = field(default_factory=list)
    held: dict[str, threading.Event] = field(default_factory=dict)
    head: bool = True  # False: HEAD is refused (405), as some servers do


def serve(root: Path) -> Iterator[Mirror]:
    mirror = Mirror(root, "")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def do_GET(self) -> None:
            mirror.requests.append(self.path)
            for suffix, event in list(mirror.held.items()):
                if self.path.endswith(suffix):
                    event.wait(timeout=30)
            super().do_GET()

        def do_HEAD(self) -> None:
            if not mirror.head:
                self.send_error(405)
                return
            super().do_HEAD()

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = LoopbackServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    mirror.url = f"http://127.0.0.1:{server.server_address[1]}/scisoft"
    # the mirror's files live under /scisoft/, like https://scisoft.fnal.gov/scisoft
    try:
        yield mirror
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="session")
def mirror_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The art-like and nu-like bundles, written once per session."""
    root = tmp_path_factory.mktemp("scisoft") / "site"
    write_mirror(root / "scisoft", [art_bundle(), nu_bundle()])
    return root


@pytest.fixture(scope="session")
def mirror(mirror_files: Path) -> Iterator[Mirror]:
    """The session's mirror over HTTP (read-only: tests that change files use `own_mirror`)."""
    yield from serve(mirror_files)


@pytest.fixture
def own_mirror(mirror_files: Path, tmp_path: Path) -> Iterator[Mirror]:
    """A private copy of the mirror over HTTP, for tests that break or replace files."""
    root = tmp_path / "site"
    shutil.copytree(mirror_files, root)
    yield from serve(root)


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("OCIBUILD_CACHE", str(cache))
    monkeypatch.delenv("OCIBUILD_SCISOFT", raising=False)
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    return cache


def ocibuild(*args: str) -> int:
    return main(list(args))


def store_snapshot(store: Path) -> dict[str, str]:
    """Every file of a store (but its state database), with its sha256."""
    if not store.exists():
        return {}
    return {
        str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(store.rglob("*"))
        if p.is_file() and ".ocibuild" not in p.parts
    }
