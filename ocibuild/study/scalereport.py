"""The scaling study's report: every task's database kept apart, then per grid point the median
over tasks of each task's per-event medians (worker modules together, and the output module: the
paper's Figure 3 split), the aggregate speed relative to one task, the efficiency, and how much
slower each part gets with concurrency.

    speedup     = tasks x T(1 task) / T(point)      event throughput relative to one task
    efficiency  = speedup / tasks                    1.0: no loss from running side by side
    degradation = T(point) / T(1 task)               > 1: slower per event under concurrency

T is the workers' median; the baseline is the 1-node, 1-task point of the same hint (else the
point with the fewest tasks).
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ocibuild.errors import BenchError
from ocibuild.study.report import event_splits
from ocibuild.study.run import read_metadata
from ocibuild.study.scaling import GridPoint, read_grid
from ocibuild.study.timing import read_timing_db


@dataclass(frozen=True)
class TaskTiming:
    """One task's database: its per-event medians."""

    point: GridPoint
    task: str  # rNN/tMMM: repeat and Slurm task rank
    host: str | None
    workers: float
    output: float
    events: int


@dataclass(frozen=True)
class ScalingRow:
    point: GridPoint
    task_count: int  # databases measured at this point
    workers: float  # median over tasks of per-task medians, s/event
    workers_min: float
    workers_max: float
    output: float
    speedup: float
    efficiency: float
    workers_degradation: float
    output_degradation: float


def load_scaling(root: Path) -> list[TaskTiming]:
    tasks: list[TaskTiming] = []
    for point, run_dir in read_grid(root):
        meta = read_metadata(run_dir)
        for task in meta.get("tasks", []):
            for db_path in task.get("databases", []):
                splits = event_splits(read_timing_db(run_dir / db_path))
                if not splits:
                    continue
                tasks.append(
                    TaskTiming(
                        point,
                        str(task.get("directory")),
                        task.get("host"),
                        statistics.median(s.workers for s in splits),
                        statistics.median(s.output for s in splits),
                        len(splits),
                    )
                )
    if not tasks:
        raise BenchError(f"{root}: no grid point has a timing database (did the jobs fail?)")
    return tasks


def _baseline(points: Iterable[GridPoint], hint: str | None) -> GridPoint:
    same = [p for p in points if p.hint == hint] or list(points)
    return min(same, key=lambda p: (p.tasks, p.nodes))


def scaling_table(tasks: Sequence[TaskTiming]) -> list[ScalingRow]:
    by_point: dict[GridPoint, list[TaskTiming]] = defaultdict(list)
    for t in tasks:
        by_point[t.point].append(t)
    medians = {
        p: (
            statistics.median(t.workers for t in ts),
            statistics.median(t.output for t in ts),
        )
        for p, ts in by_point.items()
    }
    rows = []
    for point, ts in by_point.items():
        base = _baseline(by_point, point.hint)
        base_workers, base_output = medians[base]
        workers, output = medians[point]
        relative = base_workers / workers if workers > 0 else float("nan")
        speedup = point.tasks / base.tasks * relative
        rows.append(
            ScalingRow(
                point,
                len(ts),
                workers,
                min(t.workers for t in ts),
                max(t.workers for t in ts),
                output,
                speedup,
                speedup / (point.tasks / base.tasks),
                workers / base_workers if base_workers > 0 else float("nan"),
                output / base_output if base_output > 0 else float("nan"),
            )
        )
    return sorted(rows, key=lambda r: (r.point.hint or "", r.point.tasks, r.point.nodes))


def shared_host_note(tasks: Sequence[TaskTiming], cores: int | None) -> str | None:
    """When the nodes of a multi-node point all ran on one machine (a local multi-slurmd Slurm),
    the timings say something only up to that machine's cores."""
    multi = [t for t in tasks if t.point.nodes > 1 and t.host]
    hosts = {t.host for t in multi}
    if not multi or len(hosts) != 1:
        return None
    (host,) = hosts
    most = max(t.point.tasks for t in tasks)
    cores_text = f"{cores} cores" if cores else "its cores"
    return (
        f"All nodes of the multi-node points ran on one machine ({host}, {cores_text}): timings "
        f"mean something only up to {cores or 'its core count'} concurrent tasks; "
        f"beyond that (up to {most} here) they measure the oversubscription of that machine."
    )


_COLUMNS = (
    "nodes",
    "tasks/node",
    "hint",
    "tasks",
    "dbs",
    "workers s/event",
    "workers min..max",
    "output s/event",
    "speedup",
    "efficiency",
    "workers slowdown",
    "output slowdown",
)


def _cells(r: ScalingRow) -> list[str]:
    p = r.point
    return [
        str(p.nodes),
        str(p.tasks_per_node),
        p.hint or "-",
        str(p.tasks),
        str(r.task_count),
        f"{r.workers:.6g}",
        f"{r.workers_min:.4g}..{r.workers_max:.4g}",
        f"{r.output:.6g}",
        f"{r.speedup:.3f}",
        f"{r.efficiency:.3f}",
        f"{r.workers_degradation:.3f}",
        f"{r.output_degradation:.3f}",
    ]


def scaling_markdown(rows: Sequence[ScalingRow], note: str | None = None) -> str:
    lines = [f"> {note}", ""] if note else []
    lines += [
        "| " + " | ".join(_COLUMNS) + " |",
        "|" + "---:|" * len(_COLUMNS),
    ]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def scaling_csv(rows: Sequence[ScalingRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "nodes",
            "tasks_per_node",
            "hint",
            "tasks",
            "databases",
            "workers_median",
            "workers_min",
            "workers_max",
            "output_median",
            "speedup",
            "efficiency",
            "workers_degradation",
            "output_degradation",
        ]
    )
    for r in rows:
        p = r.point
        writer.writerow(
            [
                p.nodes,
                p.tasks_per_node,
                p.hint or "",
                p.tasks,
                r.task_count,
                *(
                    repr(v)
                    for v in (
                        r.workers,
                        r.workers_min,
                        r.workers_max,
                        r.output,
                        r.speedup,
                        r.efficiency,
                        r.workers_degradation,
                        r.output_degradation,
                    )
                ),
            ]
        )
    return out.getvalue()
