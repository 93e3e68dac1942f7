"""`ocibuild bench` on targets that run here: native, and the study image in real podman."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocibuild.cli import main
from ocibuild.store import Store
from ocibuild.study.inputs import load_inputs
from ocibuild.study.report import table2
from tests.study.conftest import STUDY_REF

SMALL = ["--events", "20", "--ints", "20000"]


def only_run(results: Path) -> Path:
    (run,) = results.iterdir()
    return run


def test_native_run(workload: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results"
    assert (
        main(["bench", "--target", "native", *SMALL, "--repeat", "2", "--results", str(results)])
        == 0
    )
    run = only_run(results)
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["target"] == "native"
    assert meta["runtime"] == "native"
    assert meta["cpu_model"] and meta["host"]
    assert meta["image"]["ref"] is None
    assert meta["size"] == {"events": 20, "ints": 20000, "modules": 10}
    assert meta["command"] == [
        "ocibuild",
        "bench",
        "--target",
        "native",
        "--repeat",
        "2",
        "--events",
        "20",
        "--ints",
        "20000",
        "--results",
        str(results),
    ]
    (job,) = meta["jobs"]
    assert job["state"] == "COMPLETED"
    assert meta["job_ids"] == [job["job_id"]]
    assert 0 < job["overhead_s"] < 30
    assert [t["directory"] for t in meta["tasks"]] == ["r01", "r02"]
    assert all(
        t["events"] == 20 and t["databases"] == [f"work/{t['directory']}/timing.db"]
        for t in meta["tasks"]
    )
    assert meta["tasks"][0]["cpu"] == meta["cpu_model"]
    assert str(workload) in (run / "job.sh").read_text()
    printed = capsys.readouterr()
    assert "| native | workers |" in printed.out
    assert f"results: {run}" in printed.out
    (timings,) = load_inputs([str(run)])
    assert timings.target == "native" and len(timings.dbs) == 2
    assert table2([timings])[0].events == 40


def test_failed_local_run_is_reported_with_its_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    code = main(
        [
            "bench",
            "--target",
            "native",
            "--command",
            "echo broken workload; exit 3",
            "--results",
            str(results),
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    run = only_run(results)
    assert "FAILED (exit 2:0)" in err or "FAILED (exit 3:0)" in err
    assert f"--- {run / 'work' / 'r01' / 'out.txt'}\nbroken workload" in err
    assert f"--- {run / 'job.log'}" in err
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["jobs"][0]["state"] == "FAILED"


def test_podman_run_from_the_store(
    study_store: Store, podman_target: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The image is taken from the ocibuild store: exported as a docker-archive, loaded, run."""
    results = tmp_path / "results"
    args = [
        "--store",
        str(study_store.root),
        "bench",
        "--target",
        str(podman_target),
        "--image",
        STUDY_REF,
        *SMALL,
        "--tasks-per-node",
        "2",
        "--results",
        str(results),
    ]
    assert main(args) == 0, capsys.readouterr().err
    run = only_run(results)
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["target"] == "podman-here"
    assert meta["image"]["digest"] == str(study_store.image(STUDY_REF).descriptor.digest)
    assert meta["image"]["runtime_id"]
    assert meta["prepare"][0].startswith(f"ocibuild export {STUDY_REF} --format docker-archive")
    assert [t["directory"] for t in meta["tasks"]] == ["r01/t000", "r01/t001"]
    assert all(t["events"] == 20 for t in meta["tasks"])
    assert not (Path(meta["workdir"]) / "image.tar").exists()
    script = (run / "job.sh").read_text()
    assert f"--network none -v {run}/work/r01/t000:/mnt {STUDY_REF} /bin/sh -c" in script
    assert meta["jobs"][0]["overhead_s"] > 0


def test_podman_image_in_neither_the_store_nor_podman_says_where_it_looked(
    study_store: Store, podman_target: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = "localhost/ocibuild/absent:1"  # no registry on localhost:443: podman's pull fails
    args = ["--store", str(study_store.root), "bench", "--target", str(podman_target)]
    args += ["--image", ref, *SMALL, "--results", str(tmp_path / "results")]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert (
        f"error: preparing {ref} for podman-here (not in the store {study_store.root}; "
        "podman pulls it): podman " in err
    ), err
    assert f" pull {ref} failed (125):" in err
