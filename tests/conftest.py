"""Fixtures shared by every test area: a fresh store and download cache, podman, the host's static
busybox."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ocibuild.store import Store
from tests.podman import Podman


@pytest.fixture(autouse=True)
def own_download_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test downloads into a cache of its own. The user's cache is keyed by URL, and a
    loopback server's port comes back in a later test or CI run: a shared cache once answered a
    test from an earlier run's download and the server saw no request."""
    monkeypatch.setenv("OCIBUILD_CACHE", str(tmp_path_factory.mktemp("download-cache")))


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "store")


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    assert shutil.which("podman"), "podman is not installed: .ci/run installs it"
    return Podman.create(tmp_path_factory.mktemp("podman"))


@pytest.fixture(scope="session")
def busybox() -> Path:
    path = Path("/bin/busybox")
    assert path.exists(), "busybox-static is not installed: .ci/run installs it"
    return path
