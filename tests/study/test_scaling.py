"""The scaling study: the grid, its report on TimeTracker databases with known medians per task,
the dry-run scripts of the paper's 4-node, 32-task plan, and a grid really submitted to a real
local Slurm of several slurmd daemons (one machine: its timings are not the point here)."""

from __future__ import annotations

import itertools
import json
import statistics
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocibuild.cli import main
from ocibuild.errors import BenchError
from ocibuild.study.localslurm import LocalSlurm, local_slurm
from ocibuild.study.scalereport import load_scaling, scaling_table, shared_host_note
from ocibuild.study.scaling import SCALING_FILE, GridPoint, grid, parse_counts, parse_hints
from tests.study.conftest import write_target
from tests.study.timingdbs import make_art1_db

WORKERS = ("p:w1:Worker", "p:w2:Worker")
OUTPUT = "p:out:ZlibOutput"


def task_db(path: Path, workers: list[float], output: list[float]) -> Path:
    """A database whose events take `workers[i]` in the two worker modules together (split
    evenly) and `output[i]` in the output module."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return make_art1_db(
        path,
        {
            event: {WORKERS[0]: w / 2, WORKERS[1]: w / 2, OUTPUT: o}
            for event, (w, o) in enumerate(zip(workers, output, strict=True), 1)
        },
    )


def fake_study(
    root: Path, per_point: dict[GridPoint, list[tuple[list[float], list[float]]]]
) -> Path:
    """A scaling directory as `bench scaling` leaves it, with hand-made task databases."""
    root.mkdir(parents=True)
    points = []
    for point, tasks in per_point.items():
        run = root / point.name
        meta_tasks = []
        for rank, (workers, output) in enumerate(tasks):
            directory = f"r01/t{rank:03d}"
            task_db(run / "work" / directory / "timing.db", workers, output)
            meta_tasks.append(
                {
                    "directory": directory,
                    "databases": [f"work/{directory}/timing.db"],
                    "host": "box",
                }
            )
        (run / "metadata.json").write_text(json.dumps({"target": "t", "tasks": meta_tasks}))
        points.append(
            {
                "nodes": point.nodes,
                "tasks_per_node": point.tasks_per_node,
                "hint": point.hint,
                "name": point.name,
            }
        )
    (root / SCALING_FILE).write_text(json.dumps({"points": points}))
    return root


def test_grid_parsing() -> None:
    assert parse_counts("1,2,4", "--nodes") == (1, 2, 4)
    assert parse_counts("2, 2,1", "--nodes") == (2, 1)
    with pytest.raises(BenchError, match="--tasks-per-node takes positive"):
        parse_counts("1,x", "--tasks-per-node")
    with pytest.raises(BenchError, match="--nodes takes positive"):
        parse_counts("0", "--nodes")
    assert parse_hints(None) == (None,)
    assert parse_hints("multithread,nomultithread") == ("multithread", "nomultithread")
    with pytest.raises(BenchError, match="'smt'"):
        parse_hints("smt")
    points = grid((1, 2), (1, 2), ("multithread", "nomultithread"))
    assert len(points) == 8
    assert points[0] == GridPoint(1, 1, "multithread")
    assert points[-1].name == "n2-t2-nomultithread"
    assert points[-1].tasks == 4


def test_report_numbers_on_known_databases(tmp_path: Path) -> None:
    # one task: workers median 1.0 (events 0.9, 1.0, 1.5), output median 0.1
    one = [([0.9, 1.0, 1.5], [0.1, 0.1, 0.3])]
    # two tasks on one node: per-task workers medians 1.2 and 1.4 -> 1.3; output 0.2 and 0.4 -> 0.3
    two = [([1.2, 1.2, 5.0], [0.2, 0.1, 0.2]), ([1.4, 0.1, 1.4], [0.4, 0.4, 0.0])]
    # two nodes x two tasks: workers 2.0 each; output 0.5, 0.5, 0.6, 0.6 -> 0.55
    four = [([2.0, 2.0, 2.0], [o, o, o]) for o in (0.5, 0.5, 0.6, 0.6)]
    root = fake_study(
        tmp_path / "study",
        {GridPoint(1, 1): one, GridPoint(1, 2): two, GridPoint(2, 2): four},
    )
    tasks = load_scaling(root)
    assert len(tasks) == 7  # every task's database kept apart
    rows = {r.point: r for r in scaling_table(tasks)}
    r1, r2, r4 = rows[GridPoint(1, 1)], rows[GridPoint(1, 2)], rows[GridPoint(2, 2)]
    assert r1.workers == pytest.approx(1.0)
    assert r1.speedup == pytest.approx(1.0) and r1.efficiency == pytest.approx(1.0)
    assert r2.workers == pytest.approx(1.3)
    assert (r2.workers_min, r2.workers_max) == (pytest.approx(1.2), pytest.approx(1.4))
    assert r2.output == pytest.approx(0.3)
    assert r2.speedup == pytest.approx(2 / 1.3)
    assert r2.efficiency == pytest.approx(1 / 1.3)
    assert r2.output_degradation == pytest.approx(3.0)
    assert r4.task_count == 4
    assert r4.workers == pytest.approx(2.0)
    assert r4.speedup == pytest.approx(2.0)
    assert r4.efficiency == pytest.approx(0.5)
    assert r4.workers_degradation == pytest.approx(2.0)
    assert r4.output == pytest.approx(statistics.median([0.5, 0.5, 0.6, 0.6]))
    assert r4.output_degradation == pytest.approx(5.5)
    note = shared_host_note(tasks, 2)
    assert note and "one machine (box, 2 cores)" in note and "up to 4 here" in note


def test_hint_is_its_own_baseline(tmp_path: Path) -> None:
    root = fake_study(
        tmp_path / "study",
        {
            GridPoint(1, 1, "multithread"): [([1.0], [0.1])],
            GridPoint(1, 2, "multithread"): [([2.0], [0.1]), ([2.0], [0.1])],
            GridPoint(1, 1, "nomultithread"): [([0.5], [0.1])],
            GridPoint(1, 2, "nomultithread"): [([0.5], [0.2]), ([0.5], [0.2])],
        },
    )
    rows = {r.point: r for r in scaling_table(load_scaling(root))}
    assert rows[GridPoint(1, 2, "multithread")].efficiency == pytest.approx(0.5)
    assert rows[GridPoint(1, 2, "nomultithread")].efficiency == pytest.approx(1.0)
    assert rows[GridPoint(1, 2, "nomultithread")].output_degradation == pytest.approx(2.0)


def test_report_command_writes_table_and_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = fake_study(
        tmp_path / "study",
        {GridPoint(1, 1): [([1.0], [0.1])], GridPoint(1, 2): [([1.0], [0.1]), ([2.0], [0.3])]},
    )
    out = tmp_path / "report"
    assert main(["bench", "report", str(root), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| 1 | 2 | - | 2 | 2 | 1.5 | 1..2 | 0.2 | 1.333 | 0.667 | 1.500 | 2.000 |" in text
    assert (out / "scaling-study.csv").read_text().splitlines()[0].startswith("nodes,")
    assert (out / "scaling-study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("target", ["cori", "perlmutter"])
def test_dry_run_writes_the_papers_4_node_32_task_plan(
    target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCRATCH", str(tmp_path / "scratch"))
    args = [
        "bench",
        "scaling",
        "--target",
        target,
        "--image",
        "docker.io/me/study:1",
        "--nodes",
        "4",
        "--tasks-per-node",
        "32",
        "--hint",
        "multithread,nomultithread",
        "--results",
        str(tmp_path / "results"),
        "--dry-run",
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    scripts = text.split("# grid point ")[1:]
    assert [s.splitlines()[0] for s in scripts] == [
        "n4-t32-multithread: 128 tasks",
        "n4-t32-nomultithread: 128 tasks",
    ]
    for script, hint in zip(scripts, ("multithread", "nomultithread"), strict=True):
        lines = script.splitlines()
        assert "#SBATCH --image=docker:docker.io/me/study:1" in lines
        assert "#SBATCH --nodes=4" in lines
        assert "#SBATCH --ntasks-per-node=32" in lines
        assert f"#SBATCH --hint={hint}" in lines
        assert "#SBATCH --exclusive" in lines  # whole nodes: no other job on them
        assert not any("singleton" in line for line in lines)  # a site's nodes run points at once
        (srun,) = [line for line in lines if line.startswith("srun ")]
        assert srun.startswith("srun --nodes=4 --ntasks-per-node=32 /bin/sh -c ")
        assert f'/n4-t32-{hint}/r01/t$(printf %03d "$SLURM_PROCID")' in srun
        assert "shifter --volume=$d:/mnt" in srun
    assert not (tmp_path / "results").exists()  # a dry run writes nothing


def test_one_at_a_time_gives_every_point_one_job_name_and_a_singleton_dependency(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCRATCH", str(tmp_path / "scratch"))
    args = ["bench", "scaling", "--target", "cori", "--image", "docker.io/me/study:1"]
    args += ["--nodes", "1,2", "--one-at-a-time", "--dry-run"]
    assert main([*args, "--results", str(tmp_path / "results")]) == 0
    scripts = capsys.readouterr().out.split("# grid point ")[1:]
    names = set()
    for script in scripts:
        lines = script.splitlines()
        assert "#SBATCH --dependency=singleton" in lines
        names |= {line for line in lines if line.startswith("#SBATCH --job-name=")}
    assert len(scripts) == 2 and len(names) == 1


@pytest.fixture(scope="module")
def two_node_slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSlurm]:
    with local_slurm(tmp_path_factory.mktemp("slurm2"), cpus=2, nodes=2) as cluster:
        yield cluster


def test_grid_submitted_and_collected_on_a_real_multi_node_slurm(
    two_node_slurm: LocalSlurm,
    workload: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SLURM_CONF", str(two_node_slurm.conf))
    target = write_target(
        tmp_path / "grid-native.yaml", "name: grid-native\nruntime: native\nscheduler: slurm\n"
    )
    results = tmp_path / "results"
    args = [
        "bench",
        "scaling",
        "--target",
        str(target),
        "--events",
        "15",
        "--ints",
        "20000",
        "--nodes",
        "1,2",
        "--tasks-per-node",
        "1,2",
        "--results",
        str(results),
        "--timeout",
        "240",
    ]
    assert main(args) == 0
    (root,) = results.iterdir()
    grid_file = json.loads((root / SCALING_FILE).read_text())
    assert [p["name"] for p in grid_file["points"]] == ["n1-t1", "n1-t2", "n2-t1", "n2-t2"]
    for point in grid_file["points"]:
        meta = json.loads((root / point["name"] / "metadata.json").read_text())
        assert meta["nodes"] == point["nodes"]
        assert meta["tasks_per_node"] == point["tasks_per_node"]
        assert [j["state"] for j in meta["jobs"]] == ["COMPLETED"]
        tasks = meta["tasks"]
        assert len(tasks) == point["nodes"] * point["tasks_per_node"]
        assert all(t["events"] == 15 and len(t["databases"]) == 1 for t in tasks)
    assert (
        len(
            {
                json.loads((root / p["name"] / "metadata.json").read_text())["job_ids"][0]
                for p in grid_file["points"]
            }
        )
        == 4
    )  # one job per point
    # the two nodes are this one machine: the points ran one at a time, never side by side
    jobs = [
        json.loads((root / p["name"] / "metadata.json").read_text())["jobs"][0]
        for p in grid_file["points"]
    ]
    spans = sorted((job["started"], job["ended"]) for job in jobs)  # Slurm's, to the second
    assert all(end <= start for (_, end), (start, _) in itertools.pairwise(spans))
    scripts = [(root / p["name"] / "job.sh").read_text().splitlines() for p in grid_file["points"]]
    assert all("#SBATCH --dependency=singleton" in lines for lines in scripts)
    assert len({line for lines in scripts for line in lines if "--job-name=" in line}) == 1
    rows = {r.point.name: r for r in scaling_table(load_scaling(root))}
    assert set(rows) == {"n1-t1", "n1-t2", "n2-t1", "n2-t2"}
    assert rows["n2-t2"].task_count == 4
    assert rows["n1-t1"].speedup == pytest.approx(1.0)
    out = capsys.readouterr().out
    assert "| 2 | 2 | - | 4 | 4 |" in out
    assert "ran on one machine" in out
