"""Fixtures of the bench tests: the study workload built static, its image built with ocibuild and
loaded into podman, a real single-node Slurm, a real registry, and the Shifter stand-ins (test
doubles: Shifter cannot run here) on PATH, with the stand-in image gateway."""

from __future__ import annotations

import getpass
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocibuild.builder import build_recipe
from ocibuild.store import Store
from ocibuild.store.export import export_image
from ocibuild.study.localslurm import LocalSlurm, local_slurm
from ocibuild.study.workload import ensure_workload
from tests.podman import Podman
from tests.registry.conftest import Registry, start_registry

REPO = Path(__file__).resolve().parents[2]
STANDINS = Path(__file__).parent / "standins"
RECIPE = REPO / "recipes" / "bench-study.yaml"
STUDY_REF = "localhost/ocibuild/bench-study:latest"


@pytest.fixture(scope="session")
def workload() -> Path:
    """The study workload, built by the bench's own build step where the recipe takes it from."""
    return ensure_workload()


@pytest.fixture(scope="session")
def study_store(tmp_path_factory: pytest.TempPathFactory, workload: Path) -> Store:
    store = Store.open(tmp_path_factory.mktemp("bench-store") / "store")
    build_recipe(RECIPE, store)
    return store


@pytest.fixture(scope="session")
def study_image(
    study_store: Store, podman: Podman, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """The study image, loaded into the session's podman (as a site's image gateway would have it)."""
    archive = tmp_path_factory.mktemp("bench-archive") / "bench-study.tar"
    export_image(study_store, STUDY_REF, "docker-archive", archive)
    podman("load", "-i", str(archive))
    return STUDY_REF


@pytest.fixture(scope="session")
def registry_study_ref(study_store: Store, bench_registry: Registry) -> str:
    """The study image under a name in the real registry (the store holds it; the bench pushes)."""
    ref = f"{bench_registry.host}/ocibuild/bench-study:latest"
    study_store.tag([ref], study_store.resolve(STUDY_REF))
    return ref


def write_target(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def podman_target(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The podman target with the options podman needs on these machines (DESIGN.md)."""
    return write_target(
        tmp_path_factory.mktemp("targets") / "podman-here.yaml",
        f"name: podman-here\n"
        f"runtime: podman\n"
        f"command: {podman.base_args}\n"
        f"run_options: [--network, none]\n"
        f"env: {{CONTAINERS_CONF: {podman.root / 'containers.conf'}}}\n",
    )


@pytest.fixture(scope="session")
def spank_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("spank") / "shifter_spank.so"
    subprocess.run(
        [
            "gcc",
            "-Wall",
            "-Werror",
            "-shared",
            "-fPIC",
            str(STANDINS / "shifter_spank.c"),
            "-o",
            str(out),
        ],
        check=True,
    )
    return out


@pytest.fixture(scope="session")
def slurm(tmp_path_factory: pytest.TempPathFactory, spank_plugin: Path) -> Iterator[LocalSlurm]:
    """A real Slurm whose node has Cori's "haswell" feature, and the Shifter SPANK stand-in."""
    with local_slurm(
        tmp_path_factory.mktemp("slurm"),
        cpus=2,
        spank_plugins=(spank_plugin,),
        features=("haswell",),
    ) as cluster:
        yield cluster


@pytest.fixture
def slurm_env(slurm: LocalSlurm, monkeypatch: pytest.MonkeyPatch) -> LocalSlurm:
    monkeypatch.setenv("SLURM_CONF", str(slurm.conf))
    return slurm


@pytest.fixture(scope="session")
def bench_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A real registry (docker-registry on 127.0.0.1) for the images Shifter's gateway pulls."""
    running = start_registry(tmp_path_factory.mktemp("bench-registry"))
    yield running
    running.stop()


@pytest.fixture
def shifter_standins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """`shifter` and `shifterimg` test doubles first on PATH, over the stand-in gateway's image
    store ($SHIFTER_STANDIN_IMAGES); $SCRATCH for the Cori target's run directories. Batch scripts
    of the paper's form start a login shell (`#!/bin/bash -l`), which resets PATH from
    /etc/profile: the login profile of the job's $HOME puts the stand-ins back, as a site's
    profile or `module load shifter` would."""
    path = f"{STANDINS}:{os.environ['PATH']}"
    monkeypatch.setenv("PATH", path)
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bash_profile").write_text(f"export PATH={shlex.quote(str(STANDINS))}:$PATH\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SHIFTER_STANDIN_IMAGES", str(tmp_path / "shifter-images"))
    monkeypatch.setenv("USER", getpass.getuser())  # ch-run, under the stand-in shifter, wants it
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("SCRATCH", str(scratch))
    return scratch


@pytest.fixture
def shifter_gateway(shifter_standins: Path, slurm: LocalSlurm, tmp_path: Path) -> Iterator[str]:
    """The stand-in image gateway's HTTP server (its import API) on 127.0.0.1, over the same
    image store as the stand-in shifter, checking credentials with the local Slurm's munged."""
    argv = [sys.executable, str(STANDINS / "shifter_gateway.py")]
    argv += ["--images", os.environ["SHIFTER_STANDIN_IMAGES"], "--system", "cori"]
    argv += ["--munge-socket", str(slurm.munge_socket)]
    with open(tmp_path / "gateway.log", "w") as log:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True)
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:"), (tmp_path / "gateway.log").read_text()
    yield url
    process.terminate()
    process.wait(timeout=20)
