"""The podman-hpc targets for real: the study image written from the store into podman-hpc's
squash store and run by the real podman-hpc 1.2.2, here and inside real Slurm batch jobs; and
the podman targets as a newcomer meets them where rootful podman cannot set its rlimits."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocibuild.cli import main
from ocibuild.store import Store
from ocibuild.study.inputs import load_inputs
from ocibuild.study.localslurm import LocalSlurm
from ocibuild.study.prepare import plan_prepare, podman_hpc_squash_dir
from ocibuild.study.report import table2
from ocibuild.study.targets import find_target, load_target
from tests.study.conftest import STUDY_REF, write_target
from tests.study.test_charliecloud import bench_args, only_run
from testsupport.podman_hpc import PodmanHPC, missing_tools, podman_rlimit_problem, remove_tree


@pytest.fixture
def phpc(monkeypatch: pytest.MonkeyPatch) -> Iterator[PodmanHPC]:
    """podman-hpc's settings for this test in the environment the bench (and its jobs) see: its
    own graph root, site config and squash store ($SQUASH_DIR); no containers.conf, as on a
    machine nobody prepared for podman; no USER (the job script sets it)."""
    assert not missing_tools(), f"scripts/setup-test-env installs {missing_tools()}"
    hpc = PodmanHPC.create(Path(tempfile.mkdtemp(prefix="phpc-")))  # podman: runroot < 50 chars
    for name, value in hpc.env.items():
        if os.environ.get(name) != value:
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("CONTAINERS_CONF")
    monkeypatch.delenv("USER", raising=False)
    yield hpc
    remove_tree(hpc.root)


def expected_fit() -> bool:
    """Whether rootful podman's default rlimits fail on this machine (testsupport's detector,
    which reads the capabilities and hard limits, not podman)."""
    return podman_rlimit_problem() is not None


def test_the_squash_directory_is_podman_hpcs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    target = find_target("podman-hpc")
    assert podman_hpc_squash_dir(target, {"SQUASH_DIR": "/a", "SCRATCH": "/s"}) == Path("/a")
    assert podman_hpc_squash_dir(target, {"SCRATCH": "/s"}) == Path("/s/storage")
    assert podman_hpc_squash_dir(target, {}) == Path("/tmp/storage")
    site = write_target(
        tmp_path / "site.yaml",
        "name: site\nruntime: podman-hpc\ncommand: [podman-hpc, --squash-dir, /q]\n",
    )
    assert podman_hpc_squash_dir(load_target(site), {"SQUASH_DIR": "/a"}) == Path("/q")
    ref = "docker.io/me/study:1"
    monkeypatch.setenv("SQUASH_DIR", str(tmp_path / "sq"))
    assert plan_prepare(target, ref, tmp_path / "a.tar", None, tmp_path) == [
        f"podman-hpc load -i {tmp_path}/a.tar",
        f"podman-hpc migrate {ref}",
    ]


def test_podman_hpc_target_runs_the_study_here(
    study_store: Store, phpc: PodmanHPC, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The shipped target unchanged: the export into the squash store, the one-line fit where
    podman's defaults fail, runs from the squash (no image in podman-hpc's graph root)."""
    results = tmp_path / "results"
    assert main([*bench_args(study_store, "podman-hpc", results), "--repeat", "2"]) == 0, (
        capsys.readouterr().err
    )
    printed = capsys.readouterr()
    run = only_run(results)
    meta = json.loads((run / "metadata.json").read_text())
    assert (meta["target"], meta["runtime"], meta["scheduler"]) == (
        "podman-hpc",
        "podman-hpc",
        "local",
    )
    assert meta["prepare"] == [
        f"ocibuild export {STUDY_REF} --format podman-hpc -o {phpc.squash_dir}"
    ]
    image = study_store.image(STUDY_REF)
    assert meta["image"]["runtime_id"] == image.manifest.config.digest.hex
    assert meta["jobs"][0]["state"] == "COMPLETED"
    assert [t["directory"] for t in meta["tasks"]] == ["r01", "r02"]
    assert all(t["events"] == 20 and t["databases"] for t in meta["tasks"])
    added = meta["run_options_added"]
    assert bool(added) == expected_fit()
    if added:
        assert "--ulimit" in added
        assert printed.err.count("podman-hpc cannot start containers here with its defaults") == 1
    script = (run / "job.sh").read_text()
    assert 'export USER="${USER:-$(id -un)}"' in script
    assert f"podman-hpc run --rm {' '.join(added)} --network none -v " in script.replace("  ", " ")
    assert "| podman-hpc | workers |" in printed.out
    assert {i["Names"][0]: i["ReadOnly"] for i in phpc.images()} == {STUDY_REF: True}
    (timings,) = load_inputs([str(run)])
    assert table2([timings])[0].events == 40


def test_slurm_podman_hpc_runs_podman_hpc_in_batch_jobs(
    slurm_env: LocalSlurm,
    study_store: Store,
    phpc: PodmanHPC,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The jobs get the submit host's environment: podman-hpc's settings and, as the bench fits
    only targets that run here, the containers.conf a site would have."""
    monkeypatch.setenv("CONTAINERS_CONF", str(phpc.root / "containers.conf"))
    results = tmp_path / "results"
    args = [*bench_args(study_store, "slurm-podman-hpc", results), "--tasks-per-node", "2"]
    assert main(args) == 0, capsys.readouterr().err
    run = only_run(results)
    meta = json.loads((run / "metadata.json").read_text())
    (job,) = meta["jobs"]
    assert job["job_id"].isdigit() and job["state"] == "COMPLETED"
    assert meta["runtime"] == "podman-hpc" and meta["scheduler"] == "slurm"
    assert meta["run_options_added"] == []
    assert [t["directory"] for t in meta["tasks"]] == ["r01/t000", "r01/t001"]
    assert all(t["events"] == 20 and t["databases"] for t in meta["tasks"])
    script = (run / "job.sh").read_text()
    assert "srun --nodes=1 --ntasks-per-node=2" in script and "podman-hpc run --rm -v" in script
    assert "| slurm-podman-hpc | workers |" in capsys.readouterr().out


@pytest.fixture
def podman_elsewhere(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The machine's podman, its images kept in a directory of this test's (a storage.conf in
    CONTAINERS_STORAGE_CONF), and no containers.conf: podman as installed."""
    root = Path(tempfile.mkdtemp(prefix="podman-"))
    conf = root / "storage.conf"
    conf.write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{root}/graph"\nrunroot = "{root}/run"\n'
    )
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(conf))
    monkeypatch.delenv("CONTAINERS_CONF", raising=False)
    yield root
    remove_tree(root)


def test_the_podman_target_as_a_newcomer_meets_it(
    study_store: Store, podman_elsewhere: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    assert main(bench_args(study_store, "podman", results)) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    meta = json.loads((only_run(results) / "metadata.json").read_text())
    assert meta["jobs"][0]["state"] == "COMPLETED"
    assert bool(meta["run_options_added"]) == expected_fit()
    if expected_fit():
        (line,) = [line for line in err.splitlines() if "cannot start containers here" in line]
        assert line.startswith("warning: podman cannot start containers here with its defaults (")
        assert "default_ulimits = []" in line and "the runs use " in line


def test_a_podman_no_options_can_fix_is_refused_in_one_line(
    study_store: Store, podman_elsewhere: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A target asking for a limit above the hard one: the bench's options cannot help."""
    assert expected_fit(), "this machine's podman can raise its limits: nothing to refuse"
    target = write_target(
        tmp_path / "greedy.yaml",
        "name: greedy\nruntime: podman\nrun_options: [--ulimit, 'nofile=4000000:4000000']\n",
    )
    results = tmp_path / "results"
    assert main(bench_args(study_store, str(target), results)) == 1
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("error: greedy: podman cannot start containers here (") and "\n" not in err
    )
    assert 'default_ulimits = []` and `[engine] runtime = "runc"`' in err
