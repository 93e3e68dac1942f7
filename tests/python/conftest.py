"""Fixtures of the wheels source's tests: the real wheels `scripts/fetch-test-wheels` put in
the cache directory (CI set-up), served as a package index on 127.0.0.1, and an environment
where the host's own pip configuration does not leak in."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ocibuild.errors import Origin
from ocibuild.fetch import LockFile
from ocibuild.sources.session import LayerContext
from tests.contexts import layer_context
from tests.events import Events
from tests.ospkg.conftest import LowerStandIn
from tests.python.pyindex import IndexServer, serve_index

WHEELS = Path(os.environ.get("OCIBUILD_TEST_WHEELS", "/var/cache/ocibuild/test-wheels"))
PIP_VARIABLES = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX")

# Debian 12's libc6 and python3, as dpkg's status of a bookworm image lists them
BOOKWORM_STATUS = b"""Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9+deb12u10

Package: python3
Status: install ok installed
Architecture: amd64
Version: 3.11.2-1+b1
"""


@pytest.fixture(scope="session")
def wheel_dir() -> Path:
    found = sorted(WHEELS.glob("numpy-*.whl"))
    assert found, f"no test wheels in {WHEELS}: scripts/setup-test-env fetches them"
    return WHEELS


@pytest.fixture(scope="session")
def pyindex(wheel_dir: Path) -> Iterator[IndexServer]:
    with serve_index(wheel_dir) as index:
        yield index


@pytest.fixture(autouse=True)
def no_host_pip_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests name their index; this machine's pip.conf and PIP_* must not add any."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for name in PIP_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def make_ctx(tmp_path: Path) -> Callable[..., LayerContext]:
    """A layer context over a Debian 12 stand-in (dpkg status with libc6 and python3)."""

    def make(
        lower: dict[str, bytes] | None = None,
        lock: LockFile | None = None,
        events: Events | None = None,
        **changes: object,
    ) -> LayerContext:
        files = {"var/lib/dpkg/status": BOOKWORM_STATUS} if lower is None else lower
        return layer_context(
            tmp_path,
            origin=Origin(str(tmp_path / "recipe.yaml"), 3, 7),
            source_date_epoch=1451606400,
            lower=LowerStandIn(files),
            lock=lock if lock is not None else LockFile(tmp_path / "recipe.yaml.lock"),
            report=events if events is not None else Events(),
            **changes,  # type: ignore[arg-type]
        )

    return make
