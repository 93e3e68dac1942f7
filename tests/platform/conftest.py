"""The platform image (recipes/platform.yaml: Debian 12's compiler, Python and boost from this
machine's Debian archive, the scientific stack from the real test wheels served on 127.0.0.1),
built once for the session; and a small two-platform image (amd64 and arm64: python3 and
numpy)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from ocibuild.builder import BuildSettings, Built, build_recipe
from ocibuild.store import Store
from tests.events import Events
from tests.ospkg.aptsources import apt_sources, debian_mirror_environment
from tests.python.pyindex import IndexServer, serve_index

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
WHEELS = Path(os.environ.get("OCIBUILD_TEST_WHEELS", "/var/cache/ocibuild/test-wheels"))


@dataclass(frozen=True)
class Platform:
    store: Store
    built: Built
    recipe: Path
    locked: dict[str, str]  # wheel distributions the lock pins: name -> version
    settings: BuildSettings


@pytest.fixture(scope="session")
def build_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServer]:
    """This machine's Debian mirror, no pip configuration of the host, the test wheels' index."""
    assert sorted(WHEELS.glob("numpy-*.whl")), f"no test wheels in {WHEELS}: scripts/setup-test-env"
    with pytest.MonkeyPatch.context() as patch, serve_index(WHEELS) as index:
        for name, value in debian_mirror_environment(apt_sources()).items():
            patch.setenv(name, value)
        patch.setenv("PIP_CONFIG_FILE", os.devnull)
        for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX"):
            patch.delenv(name, raising=False)
        yield index


@pytest.fixture(scope="session")
def platform_image(
    tmp_path_factory: pytest.TempPathFactory, build_env: IndexServer
) -> Iterator[Platform]:
    work = tmp_path_factory.mktemp("platform")
    recipe = work / "platform.yaml"
    shutil.copy(RECIPES / "platform.yaml", recipe)
    settings = BuildSettings(cache_dir=work / "cache", index_url=build_env.simple)
    (built,) = build_recipe(recipe, Store.open(work / "store"), settings, Events())
    lock = json.loads((work / "platform.yaml.lock").read_text())
    locked = {
        canonicalize_name(p["name"]): p["version"]
        for resolution in lock["resolved"].values()
        for p in resolution
        if p.get("filename", "").endswith(".whl")
    }
    yield Platform(Store.open(work / "store"), built, recipe, locked, settings)
    shutil.rmtree(work)  # 2 GB: not left for pytest's three kept runs
