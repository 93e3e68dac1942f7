"""Helpers of the wheels tests: a layer's files as (mode, sha256), a tree's the same way, and
running the real installers (pip, uv) against the same wheels."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from ocibuild.layer.entry import Kind
from ocibuild.sources.base import LayerPlan

SITE = "usr/local/lib/python3.11/dist-packages/"
HEADERS = "usr/local/include/python3.11/"


def layer_files(plan: LayerPlan) -> dict[str, tuple[int, str]]:
    """Every file of the plan's layer: image path -> (mode, sha256 of content), streamed."""
    out = {}
    for entry in plan.entries():
        if entry.kind is not Kind.FILE:
            continue
        h = hashlib.sha256()
        assert entry.open is not None
        with entry.open() as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        out[entry.path] = (entry.mode, h.hexdigest())
    return out


def tree_files(root: Path) -> dict[str, tuple[int, str]]:
    out = {}
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            out[str(path.relative_to(root))] = (path.stat().st_mode & 0o7777, digest)
    return out


def as_target_tree(path: str) -> str:
    """Where `pip install --target T` puts what the layer has at image path `path`: the site
    directory is T, `.data` headers go to T/include/python/<name>, everything else of the
    /usr/local scheme (scripts in bin/, data) to T."""
    if path.startswith(SITE):
        return path[len(SITE) :]
    if path.startswith(HEADERS):
        return "include/python/" + path[len(HEADERS) :]
    return path.removeprefix("usr/local/")


def pip_target(wheels: Path, target: Path, requirements: list[str]) -> None:
    """Debian's pip (the host's /usr/bin/python3, as in the image) from the wheel directory."""
    run_installer(
        ["/usr/bin/python3", "-m", "pip", "install", "-q", "--no-index", "--no-compile"],
        wheels,
        target,
        requirements,
    )


def uv_target(wheels: Path, target: Path, requirements: list[str]) -> None:
    uv = shutil.which("uv")
    assert uv, "uv is not installed: scripts/setup-test-env installs it (.ci/constraints.txt)"
    run_installer(
        [uv, "pip", "install", "-q", "--python", "/usr/bin/python3", "--no-index"],
        wheels,
        target,
        requirements,
    )


def run_installer(command: list[str], wheels: Path, target: Path, requirements: list[str]) -> None:
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "UV_NO_CONFIG": "1"}
    for name in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        env.pop(name, None)
    args = [*command, "--find-links", str(wheels), "--target", str(target), *requirements]
    subprocess.run(
        ["sh", "-c", 'umask 022 && exec "$@"', "sh", *args],
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
