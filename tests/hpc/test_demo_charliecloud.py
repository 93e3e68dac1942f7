"""The demo image (recipes/demo.yaml), exported as a squashfs, runs `art` under the real ch-run
with the frozen UPS environment and no login shell.

The demo's `art` is a /bin/sh script and the demo image has no /bin/sh yet: another branch adds
busybox to it. Until that lands this test fails, which the strict xfail turns into a pass; once
the shell is there it passes, and the strict xfail fails the suite so the marker gets removed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.hpc.conftest import run, user_env

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
DEMO_REF = "localhost/ocibuild/demo-art_1_18_03_e9-prof:latest"


@pytest.mark.xfail(strict=True, reason="the demo image has no /bin/sh until busybox is added")
def test_the_demo_runs_art_under_ch_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCIBUILD_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    project = tmp_path / "recipes"
    project.mkdir()
    shutil.copy(RECIPES / "demo.yaml", project)
    shutil.copytree(RECIPES / "demo-mirror", project / "demo-mirror")
    store = tmp_path / "store"
    ocibuild = shutil.which("ocibuild") or "ocibuild"
    built = run([ocibuild, "--store", str(store), "-q", "recipe", str(project / "demo.yaml")])
    assert built.returncode == 0, built.stderr
    image = tmp_path / "demo.sqfs"
    exported = run(
        [
            ocibuild,
            "--store",
            str(store),
            "export",
            DEMO_REF,
            "--format",
            "squashfs",
            "--all-root",
            "-o",
            str(image),
        ]
    )
    assert exported.returncode == 0, exported.stderr
    proc = subprocess.run(
        ["ch-run", "--set-env", str(image), "--", "art"],
        env=user_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[:2] == [
        "art v1_18_03 e9:prof",
        "ART_DIR=/products/art/v1_18_03",
    ]
