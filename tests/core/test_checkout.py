"""Reproducible from any checkout: git clones made under umask 022 and 077 (0644/0755 files
against 0600/0700) give one image digest, since `files` takes modes as git records them."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from ocibuild.store import Store
from tests.core.conftest import ocibuild

RECIPE = """\
source_date_epoch: 1451606400
images:
  - name: example.org/hep/checkout:1.0
    layers:
      - files:
          - {{src: study, dest: /study{extra}}}
          - {{src: run.sh, dest: /usr/bin/run.sh{extra}}}
"""


def git(*args: str, cwd: Path, umask: int = 0o022) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }
    subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
        preexec_fn=lambda: os.umask(umask),
    )


def make_repo(root: Path, extra: str) -> Path:
    repo = root / "repo"
    (repo / "study" / "sub").mkdir(parents=True)
    (repo / "study" / "sub" / "job.fcl").write_text("process_name: Study\n")
    (repo / "study" / "README").write_text("the study\n")
    (repo / "run.sh").write_text("#!/bin/sh\necho run\n")
    (repo / "run.sh").chmod(0o755)
    (repo / "recipe.yaml").write_text(RECIPE.format(extra=extra))
    git("init", "-q", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "study", cwd=repo)
    return repo


def build_clone(repo: Path, clone: Path, umask: int, store: Path) -> str:
    git("clone", "-q", str(repo), str(clone), cwd=repo.parent, umask=umask)
    proc_code = ocibuild("--store", str(store), "-q", "recipe", str(clone / "recipe.yaml"))
    assert proc_code == 0
    return Store.open(store).image("example.org/hep/checkout:1.0").descriptor.digest


def test_clones_under_any_umask_give_one_digest(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, "")
    open_digest = build_clone(repo, tmp_path / "c022", 0o022, tmp_path / "s1")
    private = tmp_path / "c077"
    private_digest = build_clone(repo, private, 0o077, tmp_path / "s2")
    # the clones really differ on disk
    assert stat.S_IMODE((tmp_path / "c022" / "study" / "README").stat().st_mode) == 0o644
    assert stat.S_IMODE((private / "study" / "README").stat().st_mode) == 0o600
    assert stat.S_IMODE((private / "run.sh").stat().st_mode) == 0o700
    assert stat.S_IMODE((private / "study").stat().st_mode) == 0o700
    assert open_digest == private_digest


def test_preserve_modes_takes_the_hosts(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, ", preserve_modes: true")
    open_digest = build_clone(repo, tmp_path / "c022", 0o022, tmp_path / "s1")
    private_digest = build_clone(repo, tmp_path / "c077", 0o077, tmp_path / "s2")
    assert open_digest != private_digest
