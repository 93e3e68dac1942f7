"""Fixtures for the core builder tests: a recipe directory with files of every kind."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from ocibuild.cli import main


def ocibuild(*args: str) -> int:
    return main(list(args))


def write_tree(root: Path) -> None:
    (root / "data" / "sub").mkdir(parents=True)
    (root / "data" / "hello.txt").write_text("hello\n")
    (root / "data" / "run.sh").write_text("#!/bin/sh\necho run\n")
    (root / "data" / "run.sh").chmod(0o755)
    (root / "data" / "sub" / "deep.txt").write_text("deep\n")
    (root / "data" / "skip.o").write_text("object\n")
    os.symlink("hello.txt", root / "data" / "link.txt")
    os.link(root / "data" / "hello.txt", root / "data" / "hard.txt")
    (root / "setup.sh").write_text("export FROM_SETUP=1\n")


RECIPE = """\
source_date_epoch: 1451606400
images:
  - name: example.org/hep/base:1.0
    tags: [latest]
    labels: {Vendor: FNAL, License: BSD}
    layers:
      - files:
          - {src: data, dest: /study, owner: "1000:1000", exclude: ["*.o"]}
          - {src: setup.sh, dest: /etc/build_base_setup.sh, mode: "0600"}
          - {content: "junk\\n", dest: /tmp/junk}
          - {content: "keep\\n", dest: /tmp/keep}
      - profile: source /etc/build_base_setup.sh
    env: {LANG: C, PATH: /usr/bin:/bin}
    cmd: ["/bin/sh", "-l"]
  - name: example.org/hep/study:1.0
    from: example.org/hep/base:1.0
    layers:
      - remove: [/tmp/junk]
      - files:
          - {content: "export FOO=1\\n", dest: /etc/foo.sh}
    env: {FOO: "1", STUDY_PATH: "${PATH}:/study"}
    workdir: /study
    user: "1000"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    write_tree(root)
    (root / "hep.yaml").write_text(RECIPE)
    return root


def copy_project(src: Path, dst: Path) -> Path:
    subprocess.run(["cp", "-a", str(src), str(dst)], check=True)  # keeps hardlinks
    # a copy with other mtimes must give the same image
    for path in dst.rglob("*"):
        if not path.is_symlink():
            os.utime(path, (1_000_000_000, 1_000_000_000))
    return dst


def dedent(text: str) -> str:
    return textwrap.dedent(text)
