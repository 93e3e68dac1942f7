"""Bench jobs really submitted to a real single-node Slurm (slurm-wlm + munge, started by the
`slurm` fixture) and followed to the end: natively, with podman in the job, and on the Cori
target through the Shifter stand-ins (test doubles translating to podman)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from ocibuild.cli import main
from ocibuild.errors import BenchError
from ocibuild.store import Store
from ocibuild.study.localslurm import LocalSlurm
from ocibuild.study.run import BenchRequest, run_bench
from ocibuild.study.shifter import Gateway, ShifterRoute, request_import
from ocibuild.study.slurm import follow, show_job, submit
from ocibuild.study.targets import BUILTIN_DIR, find_target
from tests.podman import Podman
from tests.study.conftest import STUDY_REF, write_target

SMALL = ["--events", "20", "--ints", "20000"]


def only_run(results: Path) -> Path:
    (run,) = results.iterdir()
    return run


def test_local_slurm_runs_jobs(slurm_env: LocalSlurm, tmp_path: Path) -> None:
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/sh\necho hello from $SLURM_JOB_ID\n")
    job_id = submit(script, slurm_env.env, tmp_path)
    seen: list[str] = []
    states = follow([job_id], slurm_env.env, lambda job: seen.append(job.state), timeout=60)
    assert states[job_id].ok
    assert seen[-1] == "COMPLETED"
    assert (tmp_path / f"slurm-{job_id}.out").read_text() == f"hello from {job_id}\n"
    assert show_job("999999", slurm_env.env).state == "UNKNOWN"


def test_native_job_with_tasks(slurm_env: LocalSlurm, workload: Path, tmp_path: Path) -> None:
    target = write_target(
        tmp_path / "batch-native.yaml", "name: batch-native\nruntime: native\nscheduler: slurm\n"
    )
    results = tmp_path / "results"
    args = [
        "bench",
        "--target",
        str(target),
        *SMALL,
        "--tasks-per-node",
        "2",
        "--results",
        str(results),
    ]
    assert main(args) == 0
    run = only_run(results)
    meta = json.loads((run / "metadata.json").read_text())
    (job,) = meta["jobs"]
    assert job["job_id"].isdigit() and job["state"] == "COMPLETED" and job["exit_code"] == "0:0"
    assert job["log"] == str(run / f"slurm-{job['job_id']}.out")
    assert [t["directory"] for t in meta["tasks"]] == ["r01/t000", "r01/t001"]
    assert all(t["events"] == 20 and t["databases"] for t in meta["tasks"])
    assert 0 < job["overhead_s"] < 60
    script = (run / "job.sh").read_text()
    assert (
        "#SBATCH --ntasks-per-node=2" in script and "srun --nodes=1 --ntasks-per-node=2" in script
    )


def test_failed_job_is_reported_failed_with_its_log(
    slurm_env: LocalSlurm, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = write_target(
        tmp_path / "batch.yaml", "name: batch\nruntime: native\nscheduler: slurm\n"
    )
    results = tmp_path / "results"
    args = [
        "bench",
        "--target",
        str(target),
        "--command",
        "echo no such fcl file >&2; exit 3",
        "--results",
        str(results),
    ]
    assert main(args) == 1
    err = capsys.readouterr().err
    run = only_run(results)
    meta = json.loads((run / "metadata.json").read_text())
    (job,) = meta["jobs"]
    assert (job["state"], job["exit_code"]) == ("FAILED", "3:0")
    assert f"job {job['job_id']} FAILED (exit 3:0)" in err
    assert f"--- {run / 'work' / 'r01' / 'out.txt'}\nno such fcl file" in err
    log = run / f"slurm-{job['job_id']}.out"
    assert f"--- {log}" in err


def test_podman_in_batch_jobs(
    slurm_env: LocalSlurm, study_image: str, podman: Podman, podman_target: Path, tmp_path: Path
) -> None:
    """The generic Slurm target with podman as its runtime (this machine's podman options)."""
    target = write_target(
        tmp_path / "slurm-podman.yaml",
        podman_target.read_text().replace("name: podman-here", "name: slurm-podman")
        + "scheduler: slurm\n",
    )
    results = tmp_path / "results"
    assert (
        main(
            [
                "bench",
                "--target",
                str(target),
                "--image",
                study_image,
                *SMALL,
                "--results",
                str(results),
            ]
        )
        == 0
    )
    meta = json.loads((only_run(results) / "metadata.json").read_text())
    assert meta["scheduler"] == "slurm" and meta["jobs"][0]["state"] == "COMPLETED"
    assert meta["tasks"][0]["events"] == 20


def test_cori_target_with_shifter_standins(
    slurm_env: LocalSlurm,
    registry_study_ref: str,
    study_store: Store,
    shifter_standins: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The shipped cori target, unchanged: the image pushed from the store to a real registry in
    Docker form, `shifterimg -v pull` (the stand-in fetching it the gateway's way: no Accept
    header, schema 1), #SBATCH --image (accepted by the stand-in SPANK plugin),
    shifter --volume=$SCRATCH/...:/mnt /bin/bash -cl "cd /mnt; ..." (ch-run on what it pulled)."""
    ref = registry_study_ref
    results = tmp_path / "results"
    args = [
        "--store",
        str(study_store.root),
        "-v",
        "bench",
        "--target",
        "cori",
        "--image",
        ref,
        "--insecure",
        *SMALL,
        "--repeat",
        "2",
        "--results",
        str(results),
    ]
    assert main(args) == 0, capsys.readouterr().err
    out = capsys.readouterr()
    assert f"pushing {ref} (Docker v2 schema 2)" in out.err
    assert f"shifterimg -v pull docker:{ref}" in out.err
    run = only_run(results)
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["target"] == "cori" and meta["runtime"] == "shifter" and meta["via"] == "pull"
    assert meta["image"]["digest"] == str(study_store.image(STUDY_REF).descriptor.digest)
    assert meta["image"]["as_run"] == f"docker:{ref}"
    assert meta["prepare"] == [
        f"ocibuild push {ref} --format docker --insecure",
        f"shifterimg -v pull docker:{ref}",
    ]
    # what the gateway took from the schema 1 manifest: every layer, the image's Env and workdir
    pulled = json.loads(
        next((shifter_standins.parent / "shifter-images" / "docker").glob("*.json")).read_text()
    )
    assert (
        pulled["tag"] == ref
        and pulled["id"]
        == subprocess.run(
            ["shifterimg", "lookup", f"docker:{ref}"], check=True, capture_output=True, text=True
        ).stdout.strip()
    )
    assert len(pulled["layers"]) == len(study_store.image(STUDY_REF).manifest.layers)
    assert (pulled["ENV"], pulled["WORKDIR"]) == (["PATH=/usr/local/bin:/bin"], "/mnt")
    assert meta["image"]["pushed_digest"] == meta["image"]["digest"]  # one digest
    assert meta["workdir"] == str(shifter_standins / "ocibuild-bench" / meta["run_id"])
    assert meta["jobs"][0]["state"] == "COMPLETED"
    assert [t["directory"] for t in meta["tasks"]] == ["r01", "r02"]
    for task in meta["tasks"]:
        # collected from $SCRATCH into the results directory; the event file stays on scratch
        assert sorted(p.name for p in (run / "work" / task["directory"]).iterdir()) == [
            "out.txt",
            "timing.db",
        ]
        assert (Path(meta["workdir"]) / task["directory"] / "events.dat").stat().st_size > 0
    script = (run / "job.sh").read_text().splitlines()
    assert script[:3] == ["#!/bin/bash -l", "", f"#SBATCH --image=docker:{ref}"]
    assert (
        f'shifter --volume=$SCRATCH/ocibuild-bench/{meta["run_id"]}/r01:/mnt /bin/bash -cl "cd /mnt; '
        in script[-3]
    )
    assert "| cori | workers |" in out.out
    assert main(["bench", "report", str(run)]) == 0


def test_shifter_standin_refuses_a_job_without_image(shifter_standins: Path) -> None:
    proc = subprocess.run(["shifter", "/bin/true"], check=False, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "no image" in proc.stderr


def test_refused_submission_is_an_error_on_record(slurm_env: LocalSlurm, tmp_path: Path) -> None:
    target = write_target(
        tmp_path / "wrong.yaml",
        "name: wrong\nruntime: native\nscheduler: slurm\nslurm: {partition: nosuchpartition}\n",
    )
    results = tmp_path / "results"
    with pytest.raises(BenchError, match=r"sbatch refused .*job\.sh \(1\):\n.*invalid partition"):
        run_bench(BenchRequest(find_target(str(target)), command="true", results_root=results))
    meta = json.loads((only_run(results) / "metadata.json").read_text())
    assert meta["jobs"] == [] and "invalid partition" in meta["error"]


def test_cori_import_route_with_shifter_standins(
    slurm_env: LocalSlurm,
    study_store: Store,
    shifter_gateway: str,
    shifter_standins: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--via import`: the squashfs exported by the CLI to the shared path, posted to the stand-in
    gateway's doimport with a real munge credential, and the job run as custom:NAME:TAG (the
    stand-in shifter: ch-run on the imported squashfs, its Env from /ch/environment)."""
    target = write_target(
        tmp_path / "cori.yaml",
        (BUILTIN_DIR / "cori.yaml").read_text()
        + f"shifter: {{gateway: {shifter_gateway}, system: cori, "
        f"munge: [munge, -n, '--socket={slurm_env.munge_socket}']}}\n",
    )
    results = tmp_path / "results"
    args = ["--store", str(study_store.root), "bench", "--target", str(target)]
    args += ["--image", STUDY_REF, "--via", "import", *SMALL, "--results", str(results)]

    assert main(args) == 0, capsys.readouterr().err

    run = only_run(results)
    meta = json.loads((run / "metadata.json").read_text())
    squashfs = shifter_standins / "ocibuild-bench" / "images" / "bench-study-latest.squashfs"
    assert meta["via"] == "import" and meta["image"]["as_run"] == "custom:bench-study:latest"
    assert meta["prepare"][0] == (
        f"ocibuild --store {study_store.root} export {STUDY_REF} "
        f"--format squashfs --all-root -o {squashfs}"
    )
    assert f"{shifter_gateway}/api/doimport/cori/custom/bench-study:latest/" in meta["prepare"][1]
    # the gateway answered PENDING, and the bench looked the image up until it was READY
    log = (tmp_path / "gateway.log").read_text()
    assert '"POST /api/doimport/cori/custom/bench-study:latest/ HTTP/1.1" 200' in log
    assert '"GET /api/lookup/cori/custom/bench-study:latest/ HTTP/1.1" 200' in log
    imported = shifter_standins.parent / "shifter-images" / "custom" / "bench-study_latest.squashfs"
    assert imported.read_bytes() == squashfs.read_bytes()
    assert meta["image"]["runtime_id"] == hashlib.sha256(imported.read_bytes()).hexdigest()
    listing = subprocess.run(
        ["unsquashfs", "-lls", str(squashfs)], check=True, capture_output=True, text=True
    ).stdout
    owners = {line.split()[1] for line in listing.splitlines() if line[:1] in "-dlcbps"}
    assert owners == {"root/root"}  # --all-root
    assert "squashfs-root/usr/local/bin/art-study" in listing
    script = (run / "job.sh").read_text().splitlines()
    assert script[2] == "#SBATCH --image=custom:bench-study:latest"
    assert meta["jobs"][0]["state"] == "COMPLETED"
    assert [t["events"] for t in meta["tasks"]] == [20]


def test_stand_in_gateway_refuses_bad_imports(
    slurm_env: LocalSlurm, shifter_gateway: str, tmp_path: Path
) -> None:
    not_squashfs = tmp_path / "image.squashfs"
    not_squashfs.write_bytes(b"not a squashfs")
    route = ShifterRoute(
        "import",
        STUDY_REF,
        "custom:bad:1",
        squashfs=not_squashfs,
        gateway=Gateway(shifter_gateway, "cori"),
    )
    with pytest.raises(
        BenchError, match=r"doimport/cori/custom/bad:1/: the gateway answered HTTP 401"
    ):
        request_import(route, "not a munge credential")
    credential = subprocess.run(
        ["munge", "-n", f"--socket={slurm_env.munge_socket}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    with pytest.raises(BenchError, match=r"HTTP 404 .*is not a squashfs image"):
        request_import(route, credential)
    elsewhere = dataclasses.replace(route, gateway=Gateway(shifter_gateway, "edison"))
    with pytest.raises(BenchError, match=r"HTTP 404 .*unknown system edison"):
        request_import(elsewhere, credential)
