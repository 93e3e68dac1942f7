"""A Debian 12 image with python3 and pip from Debian's archive and the scientific Python stack
from wheels (served on 127.0.0.1), built twice with different cache states, then run in podman:
imports, pip's view of what is installed, an entry point, uproot writing and reading a ROOT
file, and nothing compiled at import."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from ocibuild.builder import BuildSettings, build_recipe
from ocibuild.store import Store
from ocibuild.store.export import export_image
from tests.events import Events
from tests.ospkg.aptsources import apt_sources, debian_mirror_environment
from tests.podman import Podman
from tests.python.pyindex import IndexServer

RECIPE = """\
source_date_epoch: 1451606400
images:
  - name: localhost/ocibuild/test-wheels:1
    from: scratch
    layers:
      - deb:
          repos:
            - {{url: "${{DEBIAN_MIRROR:-http://deb.debian.org/debian}}", suite: "${{DEBIAN_SUITE:-bookworm}}"}}
            - {{url: "${{DEBIAN_MIRROR:-http://deb.debian.org/debian}}", suite: "${{DEBIAN_SUITE:-bookworm}}-updates"}}
            - {{url: "${{DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}}", suite: "${{DEBIAN_SUITE:-bookworm}}-security"}}
          packages: [base-files, base-passwd, bash, coreutils, dash, dpkg, findutils, grep, sed, libstdc++6, python3, python3-pip]
      - wheels:
          requirements: [numpy, awkward, uproot, hist, coffea, tqdm]
          index_url: {index}
    env: {{LANG: C.UTF-8}}
    cmd: ["/bin/bash"]
"""
SITE = "/usr/local/lib/python3.11/dist-packages"
COUNT_PYCS = f"find {SITE} -name '*.pyc' | wc -l"
IMPORTS = "import numpy, awkward, uproot, hist, coffea, tqdm"
ROOT_FILE = (
    "import numpy, uproot\n"
    "with uproot.recreate('/tmp/t.root') as f:\n"
    "    f['t'] = {'x': numpy.arange(5, dtype='i4')}\n"
    "print(uproot.open('/tmp/t.root')['t']['x'].array(library='np').tolist())\n"
)


@pytest.mark.slow
def test_scientific_stack_in_podman(
    tmp_path: Path, podman: Podman, pyindex: IndexServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in debian_mirror_environment(apt_sources()).items():
        monkeypatch.setenv(name, value)
    recipe = tmp_path / "stack.yaml"
    recipe.write_text(RECIPE.format(index=pyindex.simple))
    settings = BuildSettings(cache_dir=tmp_path / "cache")
    (first,) = build_recipe(recipe, Store.open(tmp_path / "store1"), settings, Events())
    lock = json.loads((tmp_path / "stack.yaml.lock").read_text())
    locked = {
        canonicalize_name(p["name"]): p["version"]
        for resolution in lock["resolved"].values()
        for p in resolution
        if p["filename"].endswith(".whl")
    }
    assert {"numpy", "awkward", "uproot", "hist", "coffea", "tqdm"} <= set(locked)

    # again: an empty download cache and store, the lock file kept: the same image
    shutil.rmtree(tmp_path / "cache")
    (second,) = build_recipe(recipe, Store.open(tmp_path / "store2"), settings, Events())
    assert second.descriptor.digest == first.descriptor.digest

    export_image(Store.open(tmp_path / "store1"), first.ref, "docker-archive", tmp_path / "i.tar")
    podman("load", "-i", str(tmp_path / "i.tar"))
    try:
        script = (
            f"{COUNT_PYCS}; python3 -c '{IMPORTS}; print(numpy.__version__)'; {COUNT_PYCS}; "
            "python3 -m pip check; python3 -m pip list --format json; tqdm --version"
        )
        lines = podman.run(first.ref, "bash", "-c", script).splitlines()
        before, version, after, check, listed, tqdm_version = lines
        assert int(before) > 5000 and after == before  # nothing compiled at import
        assert version == locked["numpy"]
        assert check == "No broken requirements found."
        pip_list = {canonicalize_name(p["name"]): p["version"] for p in json.loads(listed)}
        assert len(locked) == 83 and locked.items() <= pip_list.items()
        assert tqdm_version == locked["tqdm"]
        # a read-only image: importing still works and writes nothing
        out = podman.run(
            first.ref, "python3", "-c", ROOT_FILE, extra=("--read-only", "--tmpfs", "/tmp")
        )
        assert out == "[0, 1, 2, 3, 4]\n"
    finally:
        podman("rmi", first.ref, check=False)
