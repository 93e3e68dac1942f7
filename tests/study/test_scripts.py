"""Job scripts, line by line: the Cori target against the paper's listing 3.8, and the others."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import pytest

from ocibuild.cli import main
from ocibuild.study.prepare import plan_prepare, runtime_image
from ocibuild.study.run import BenchRequest, plan_run
from ocibuild.study.scripts import RunLayout, double_quoted, job_script, run_line
from ocibuild.study.targets import find_target
from ocibuild.study.workload import StudySize, study_command

IMAGE = "paterno/centos-uboone_v04_31_00-e9-prof:latest"
LAR = "lar -c prodsingle_uboone_mfp_01.fcl"


def test_cori_script_has_the_form_of_listing_3_8() -> None:
    """Listing 3.8 of the paper, with the bench's run directory in place of test_out:

    #!/bin/bash -l

    #SBATCH --image=docker:paterno/centos-uboone_v04_31_00-e9-prof:latest
    #SBATCH --partition=debug
    #SBATCH --nodes=1
    #SBATCH --time=00:09:30

    shifter --volume=$SCRATCH/test_out:/mnt /bin/bash -cl "cd /mnt; lar -c prodsingle_uboone_mfp_01.fcl >out01.txt 2>&1"
    """
    cori = dataclasses.replace(
        find_target("cori"), slurm=dataclasses.replace(find_target("cori").batch, time="00:09:30")
    )
    layout = RunLayout("run1", "$SCRATCH/ocibuild-bench/run1", repeats=3)
    lines = job_script(cori, layout, f"docker:{IMAGE}", LAR).splitlines()
    assert lines[0] == "#!/bin/bash -l"
    assert lines[1] == ""
    assert lines[2] == f"#SBATCH --image=docker:{IMAGE}"
    assert lines[3] == "#SBATCH --partition=debug"
    assert lines[4] == "#SBATCH --nodes=1"
    assert lines[5] == "#SBATCH --time=00:09:30"
    assert lines[6] == "#SBATCH --constraint=haswell"
    assert lines[7] == "#SBATCH --job-name=ocibench-run1"
    assert lines[8] == ""
    assert lines[9] == "set -e"
    runs = lines[10:]
    assert len(runs) == 6
    for repeat in (1, 2, 3):
        directory = f"$SCRATCH/ocibuild-bench/run1/r{repeat:02d}"
        assert runs[2 * repeat - 2] == f"mkdir -p {directory}"
        assert runs[2 * repeat - 1] == (
            f'shifter --volume={directory}:/mnt /bin/bash -cl "cd /mnt; {LAR} >out.txt 2>&1"'
        )
    paper = re.compile(
        r'^shifter --volume=\$SCRATCH/\S+:/mnt /bin/bash -cl "cd /mnt; (.*) >(\S+) 2>&1"$'
    )
    assert all(paper.match(line) for line in runs[1::2])
    # every #SBATCH line comes before the first command, or sbatch ignores it
    assert max(i for i, line in enumerate(lines) if line.startswith("#SBATCH")) < lines.index(
        "set -e"
    )


def test_cori_scaling_job_runs_one_directory_per_task() -> None:
    cori = find_target("cori")
    layout = RunLayout(
        "run2", "$SCRATCH/ocibuild-bench/run2", nodes=4, tasks_per_node=32, hint="multithread"
    )
    lines = job_script(cori, layout, f"docker:{IMAGE}", LAR).splitlines()
    assert "#SBATCH --nodes=4" in lines
    assert "#SBATCH --ntasks-per-node=32" in lines
    assert "#SBATCH --hint=multithread" in lines
    assert lines[-1] == (
        "srun --nodes=4 --ntasks-per-node=32 /bin/sh -c "
        '\'d=$SCRATCH/ocibuild-bench/run2/r01/t$(printf %03d "$SLURM_PROCID"); mkdir -p $d; '
        f'shifter --volume=$d:/mnt /bin/bash -cl "cd /mnt; {LAR} >out.txt 2>&1"\''
    )


def test_task_directories_follow_slurm_task_rank(tmp_path: Path) -> None:
    """The srun line, run by a real shell with the ranks Slurm would give, makes one directory per task."""
    target = dataclasses.replace(find_target("native"), scheduler="slurm")
    layout = RunLayout("r", str(tmp_path / "run"), nodes=1, tasks_per_node=3)
    (line,) = [
        x
        for x in job_script(target, layout, None, "echo hello").splitlines()
        if x.startswith("srun")
    ]
    per_task = line.split(" /bin/sh -c ", 1)[1]
    for rank in range(3):
        subprocess.run(
            f"sh -c {per_task}",
            shell=True,
            check=True,
            env={"SLURM_PROCID": str(rank), "PATH": "/bin"},
        )
    assert sorted(p.name for p in (tmp_path / "run" / "r01").iterdir()) == ["t000", "t001", "t002"]
    assert (tmp_path / "run" / "r01" / "t002" / "out.txt").read_text() == "hello\n"


def test_podman_docker_podman_hpc_and_apptainer_lines() -> None:
    podman = find_target("podman")
    assert run_line(podman, "img:1", "/out/r01", "art-study") == (
        'podman run --rm --network none -v /out/r01:/mnt img:1 /bin/sh -c "cd /mnt; art-study >out.txt 2>&1"'
    )
    assert run_line(find_target("docker"), "img:1", "/o", "x").startswith(
        "docker run --rm --network none -v /o:/mnt img:1 "
    )
    assert run_line(find_target("perlmutter-podman-hpc"), "img:1", "$SCRATCH/o", "x") == (
        'podman-hpc run --rm -v $SCRATCH/o:/mnt img:1 /bin/sh -c "cd /mnt; x >out.txt 2>&1"'
    )
    assert run_line(find_target("slurm"), "/runs/image.sif", "/o", "x") == (
        'apptainer exec --bind /o:/mnt /runs/image.sif /bin/sh -c "cd /mnt; x >out.txt 2>&1"'
    )
    assert (
        run_line(find_target("native"), None, "/o", "/bin/art-study")
        == "(cd /o && /bin/art-study >out.txt 2>&1)"
    )


def test_local_tasks_run_in_parallel_and_all_are_waited_for() -> None:
    layout = RunLayout("r", "/o", tasks_per_node=2)
    lines = job_script(find_target("podman"), layout, "img", "x").splitlines()
    assert lines[0] == "#!/bin/bash"
    assert not any(line.startswith("#SBATCH") for line in lines)
    assert sum(line.endswith(" &") for line in lines) == 2
    assert lines[-1] == 'for p in $pids; do wait "$p"; done'


def test_double_quoted_keeps_the_command_literal() -> None:
    text = 'echo "$HOME" `id` \\ done'
    out = subprocess.run(
        f"printf %s {double_quoted(text)}", shell=True, capture_output=True, text=True, check=True
    )
    assert out.stdout == text


def test_input_directory_is_copied_into_each_task_directory() -> None:
    layout = RunLayout("r", "$SCRATCH/x", input_dir="/home/me/fcl")
    lines = job_script(find_target("cori"), layout, f"docker:{IMAGE}", LAR).splitlines()
    assert "mkdir -p $SCRATCH/x/r01 && cp -R /home/me/fcl/. $SCRATCH/x/r01/" in lines


def test_plan_puts_the_run_under_scratch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SCRATCH", str(tmp_path / "scratch"))
    request = BenchRequest(find_target("cori"), image=IMAGE, results_root=tmp_path / "results")
    plan = plan_run(request, run_id="cori-1")
    assert plan.host_workdir == tmp_path / "scratch" / "ocibuild-bench" / "cori-1"
    assert plan.layout.workdir == "$SCRATCH/ocibuild-bench/cori-1"
    assert plan.results_dir == (tmp_path / "results" / "cori-1").resolve()
    assert plan.command == study_command(StudySize())
    assert plan.prepare == [f"shifterimg -v pull docker:{IMAGE}"]


def test_dry_run_prints_the_script(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCRATCH", raising=False)
    args = [
        "bench",
        "--target",
        "cori",
        "--image",
        IMAGE,
        "--repeat",
        "2",
        "--events",
        "7",
        "--results",
        str(tmp_path / "results"),
        "--dry-run",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"# prepare: shifterimg -v pull docker:{IMAGE}"
    assert out[2] == "#!/bin/bash -l"
    assert (
        sum(
            "art-study --events 7 --ints 250000 --modules 10 --output-dir ." in line for line in out
        )
        == 2
    )
    assert not (tmp_path / "results").exists()


def test_a_list_of_commands_is_redirected_whole() -> None:
    line = run_line(find_target("podman"), "img", "/o", "cp a.fcl b.fcl; lar -c b.fcl")
    assert line.endswith('/bin/sh -c "cd /mnt; { cp a.fcl b.fcl; lar -c b.fcl; } >out.txt 2>&1"')
    assert (
        run_line(find_target("native"), None, "/o", "a && b")
        == "(cd /o && { a && b; } >out.txt 2>&1)"
    )


def test_preparation_per_runtime(tmp_path: Path) -> None:
    ref = "docker.io/me/bench-study:1"
    assert plan_prepare(find_target("native"), None, None, None, tmp_path) == []
    assert plan_prepare(find_target("perlmutter"), ref, None, None, tmp_path) == [
        f"shifterimg -v pull docker:{ref}"
    ]
    assert plan_prepare(find_target("perlmutter-podman-hpc"), ref, None, None, tmp_path) == [
        f"podman-hpc image inspect {ref} || podman-hpc pull {ref}"
    ]
    assert plan_prepare(find_target("slurm"), ref, None, None, tmp_path) == [
        f"apptainer build --force {tmp_path}/image.sif docker://{ref}"
    ]
    archive = tmp_path / "img.tar"
    assert plan_prepare(find_target("podman"), ref, archive, None, tmp_path) == [
        f"podman load -i {archive}"
    ]
    assert runtime_image(find_target("slurm"), ref, tmp_path) == str(tmp_path / "image.sif")


def test_perlmutter_podman_hpc_job() -> None:
    layout = RunLayout("p1", "$SCRATCH/ocibuild-bench/p1", nodes=2, tasks_per_node=4)
    lines = job_script(
        find_target("perlmutter-podman-hpc"), layout, "me/img:1", "art-study"
    ).splitlines()
    assert lines[:7] == [
        "#!/bin/bash -l",
        "",
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=4",
        "#SBATCH --time=00:30:00",
        "#SBATCH --constraint=cpu",
        "#SBATCH --qos=debug",
    ]
    assert "podman-hpc run --rm -v $d:/mnt me/img:1 /bin/sh -c" in lines[-1]
