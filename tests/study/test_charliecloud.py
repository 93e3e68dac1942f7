"""The Charliecloud targets: the study image exported from the store as a squashfs and run with
the real ch-run (through squashfuse), here and inside real Slurm batch jobs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocibuild.cli import main
from ocibuild.errors import BenchError
from ocibuild.store import Store
from ocibuild.study.inputs import load_inputs
from ocibuild.study.localslurm import LocalSlurm
from ocibuild.study.report import table2
from ocibuild.study.run import BenchRequest, run_bench
from ocibuild.study.scripts import RunLayout, job_script
from ocibuild.study.targets import find_target
from tests.study.conftest import STUDY_REF

SMALL = ["--events", "20", "--ints", "20000"]


def only_run(results: Path) -> Path:
    (run,) = results.iterdir()
    return run


def test_job_script_runs_ch_run_with_the_image_env() -> None:
    target = find_target("slurm-charliecloud")
    script = job_script(
        target, RunLayout("r1", "/scratch/r1"), "/scratch/r1/image.sqfs", "art-study"
    )
    lines = script.splitlines()
    assert 'export USER="${USER:-$(id -un)}"  # ch-run refuses to start without it' in lines
    assert lines[-1] == (
        "ch-run --set-env -b /scratch/r1/r01:/mnt /scratch/r1/image.sqfs -- "
        '/bin/sh -c "cd /mnt; art-study >out.txt 2>&1"'
    )
    assert "#SBATCH --time=01:00:00" in lines


def bench_args(store: Store, target: str, results: Path) -> list[str]:
    return [
        "--store",
        str(store.root),
        "bench",
        "--target",
        target,
        "--image",
        STUDY_REF,
        *SMALL,
        "--results",
        str(results),
    ]


def test_charliecloud_target_runs_the_study_here(
    study_store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("USER", raising=False)  # the job script sets it: ch-run needs it
    results = tmp_path / "results"
    assert main([*bench_args(study_store, "charliecloud", results), "--repeat", "2"]) == 0, (
        capsys.readouterr().err
    )
    run = only_run(results)
    meta = json.loads((run / "metadata.json").read_text())
    assert (meta["target"], meta["runtime"], meta["scheduler"]) == (
        "charliecloud",
        "charliecloud",
        "local",
    )
    squashfs = Path(meta["workdir"]) / "image.sqfs"
    assert meta["image"]["as_run"] == str(squashfs) and squashfs.stat().st_size > 0
    assert meta["image"]["digest"] == str(study_store.image(STUDY_REF).descriptor.digest)
    assert meta["prepare"] == [f"ocibuild export {STUDY_REF} --format squashfs -o {squashfs}"]
    assert meta["jobs"][0]["state"] == "COMPLETED"
    assert [t["directory"] for t in meta["tasks"]] == ["r01", "r02"]
    assert all(t["events"] == 20 and t["databases"] for t in meta["tasks"])
    assert "| charliecloud | workers |" in capsys.readouterr().out
    (timings,) = load_inputs([str(run)])
    assert table2([timings])[0].events == 40


def test_slurm_charliecloud_runs_ch_run_in_batch_jobs(
    slurm_env: LocalSlurm, study_store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    args = [*bench_args(study_store, "slurm-charliecloud", results), "--tasks-per-node", "2"]
    assert main(args) == 0, capsys.readouterr().err
    run = only_run(results)
    meta = json.loads((run / "metadata.json").read_text())
    (job,) = meta["jobs"]
    assert job["job_id"].isdigit() and job["state"] == "COMPLETED"
    assert meta["runtime"] == "charliecloud" and meta["scheduler"] == "slurm"
    assert [t["directory"] for t in meta["tasks"]] == ["r01/t000", "r01/t001"]
    assert all(t["events"] == 20 and t["databases"] for t in meta["tasks"])
    script = (run / "job.sh").read_text()
    assert "srun --nodes=1 --ntasks-per-node=2" in script and "ch-run --set-env -b" in script
    assert "| slurm-charliecloud | workers |" in capsys.readouterr().out


def test_charliecloud_needs_the_image_in_the_store(study_store: Store, tmp_path: Path) -> None:
    request = BenchRequest(
        find_target("charliecloud"), image="localhost/nothing:1", results_root=tmp_path / "r"
    )
    with pytest.raises(BenchError, match=r"ocibuild store, which has no localhost/nothing:1"):
        run_bench(request, study_store)
    request = BenchRequest(
        find_target("charliecloud"),
        image=STUDY_REF,
        archive=tmp_path / "x.tar",
        results_root=tmp_path / "r2",
    )
    with pytest.raises(BenchError, match=r"give --image REF, not --archive"):
        run_bench(request, study_store)
