"""The checkers and libraries CI runs with are pinned (.ci/constraints.txt), and this machine has
exactly those versions: lint, types and tests mean the same here as in CI."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def pins() -> dict[str, str]:
    out = {}
    for line in (REPO / ".ci" / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{line!r} is not pinned with =="
            out[canonical(name)] = version
    return out


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_dependency_and_test_tool_is_pinned() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    names = {canonical(re.split(r"[<>=!~;\[ ]", w, maxsplit=1)[0]) for w in wanted}
    assert names - set(pins()) == set()


def test_installed_versions_are_the_pinned_ones() -> None:
    installed = {}
    for name in pins():
        try:
            installed[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed[name] = "missing"
    assert installed == pins(), "run scripts/setup-test-env to install the pinned versions"
