"""Fixtures shared by every test area: a fresh store, podman, the host's static busybox."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ocibuild.store import Store
from tests.podman import Podman


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
