"""The scaling study (the paper's section 5.1): the same workload on a grid of node counts, tasks
per node and hyperthread hints, one job per grid point, submitted together and followed to the end.
Each job asks for whole nodes (`--exclusive`): Slurm runs points that need the same nodes one
after another, so no point's tasks share cores with another point's (or another user's). When
the nodes are one machine (a local multi-node Slurm), or with `one_at_a_time`, the jobs share a
name and `--dependency=singleton`: Slurm runs them one at a time, in the order submitted.

    RESULTS/<scaling-id>/scaling.json        the grid, the target, the command
    RESULTS/<scaling-id>/n2-t1-multithread/  one bench run per point (metadata.json, work/...)
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocibuild.atomicfile import atomic_write_bytes
from ocibuild.errors import BenchError
from ocibuild.jsonread import json_list, json_object, read_json_object
from ocibuild.progress import Message, Reporter, silent
from ocibuild.store import Store
from ocibuild.study.run import HINTS, BenchRequest, BenchRun, RunPlan, plan_run, run_batch
from ocibuild.study.slurm import nodes_share_a_machine

SCALING_FILE = "scaling.json"


@dataclass(frozen=True)
class GridPoint:
    nodes: int
    tasks_per_node: int
    hint: str | None = None

    @property
    def tasks(self) -> int:
        return self.nodes * self.tasks_per_node

    @property
    def name(self) -> str:
        return f"n{self.nodes}-t{self.tasks_per_node}" + (f"-{self.hint}" if self.hint else "")


@dataclass(frozen=True)
class ScalingRun:
    scaling_id: str
    results_dir: Path
    points: tuple[GridPoint, ...]
    runs: tuple[BenchRun, ...]


def parse_counts(text: str, option: str) -> tuple[int, ...]:
    """`1,2,4` -> (1, 2, 4): positive, without repeats, in the order given."""
    counts: list[int] = []
    for word in text.split(","):
        word = word.strip()
        if not word.isdigit() or int(word) < 1:
            raise BenchError(f"{option} takes positive whole numbers separated by commas: {text!r}")
        if int(word) not in counts:
            counts.append(int(word))
    return tuple(counts)


def parse_hints(text: str | None) -> tuple[str | None, ...]:
    if not text:
        return (None,)
    hints = tuple(h.strip() for h in text.split(","))
    unknown = [h for h in hints if h not in HINTS]
    if unknown:
        raise BenchError(
            f"--hint {unknown[0]!r}: takes {', '.join(h for h in HINTS if h)} (comma-separated)"
        )
    return tuple(dict.fromkeys(hints))


def grid(
    nodes: tuple[int, ...], tasks_per_node: tuple[int, ...], hints: tuple[str | None, ...] = (None,)
) -> list[GridPoint]:
    return [GridPoint(n, t, h) for h in hints for n in nodes for t in tasks_per_node]


def new_scaling_id(request: BenchRequest) -> str:
    return f"scaling-{request.target.name}-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(2)}"


def point_request(
    request: BenchRequest, point: GridPoint, queue: str | None = None
) -> BenchRequest:
    # whole nodes: a point's tasks must not share cores with another point's (or anyone's)
    return dataclasses.replace(
        request,
        nodes=point.nodes,
        tasks_per_node=point.tasks_per_node,
        hint=point.hint,
        exclusive=True,
        queue=queue,
    )


def plan_scaling(
    request: BenchRequest,
    points: list[GridPoint],
    store: Store | None = None,
    scaling_id: str | None = None,
    dry_run: bool = False,
    one_at_a_time: bool = False,
) -> list[tuple[GridPoint, RunPlan]]:
    """Each point's run plan: run id `<scaling-id>/<point>`, so its results and its scratch
    directory are apart from every other point's and every other study's."""
    scaling_id = scaling_id or new_scaling_id(request)
    queue = scaling_id if one_at_a_time else None
    return [
        (
            p,
            plan_run(
                point_request(request, p, queue),
                store,
                f"{scaling_id}/{p.name}",
                dry_run=dry_run,
            ),
        )
        for p in points
    ]


def run_scaling(
    request: BenchRequest,
    points: list[GridPoint],
    store: Store | None = None,
    report: Reporter = silent,
    scaling_id: str | None = None,
    one_at_a_time: bool = False,
) -> ScalingRun:
    """Run the grid. On Slurm every point's job is submitted at once; they run one at a time
    with `one_at_a_time`, or when the cluster's nodes are one machine (then concurrent points
    would share its cores and spoil each other's timings)."""
    if not points:
        raise BenchError("the scaling grid is empty")
    if request.target.scheduler != "slurm" and any(p.nodes > 1 for p in points):
        raise BenchError(f"target {request.target.name} runs here, on one node: --nodes must be 1")
    scaling_id = scaling_id or new_scaling_id(request)
    root = (request.results_root / scaling_id).resolve()
    root.mkdir(parents=True, exist_ok=False)
    _write_grid(root, scaling_id, request, points)
    report(
        Message(f"scaling study {scaling_id}: {len(points)} grid points on {request.target.name}")
    )
    if request.target.scheduler == "slurm" and not one_at_a_time:
        env = {**os.environ, **request.target.env}
        if nodes_share_a_machine(env):
            one_at_a_time = True
            report(
                Message(
                    "the cluster's nodes are one machine: the grid points run one at a time "
                    "(--dependency=singleton), so that no point shares its cores with another"
                )
            )
    queue = scaling_id if one_at_a_time else None
    runs = run_batch(
        [point_request(request, p, queue) for p in points],
        store,
        report,
        [f"{scaling_id}/{p.name}" for p in points],
        prepare_dir=root,
    )
    return ScalingRun(scaling_id, root, tuple(points), tuple(runs))


def _write_grid(
    root: Path, scaling_id: str, request: BenchRequest, points: list[GridPoint]
) -> None:
    data: dict[str, Any] = {
        "scaling_id": scaling_id,
        "target": request.target.name,
        "command": list(request.argv),
        "points": [{**dataclasses.asdict(p), "name": p.name} for p in points],
        "created_at": time.time(),
    }
    atomic_write_bytes(root / SCALING_FILE, (json.dumps(data, indent=2) + "\n").encode())


def is_scaling_dir(path: Path) -> bool:
    return (path / SCALING_FILE).is_file()


def read_grid(root: Path) -> list[tuple[GridPoint, Path]]:
    """The points of a scaling study and each one's results directory."""
    try:
        data = read_json_object((root / SCALING_FILE).read_bytes(), str(root / SCALING_FILE))
        points = []
        for item in json_list(data["points"], "points"):
            p = json_object(item, "a point")
            nodes, tasks, hint = p["nodes"], p["tasks_per_node"], p.get("hint")
            if not isinstance(nodes, int) or not isinstance(tasks, int):
                raise ValueError("nodes and tasks_per_node must be integers")
            point = GridPoint(nodes, tasks, hint if isinstance(hint, str) else None)
            points.append((point, root / str(p["name"])))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BenchError(f"{root / SCALING_FILE}: not a scaling study file: {e}") from None
    return points
