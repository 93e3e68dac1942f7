"""`ocibuild bench`: prepare the image, write the job script, run it here or submit it to Slurm,
follow it to the end, and collect what it made into `RESULTS/<run-id>/` with a metadata.json
(target, host, CPU model, image digest, job ids, command, per-task timings and overhead)."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocibuild.atomicfile import atomic_write_bytes
from ocibuild.errors import BenchError, OcibuildError
from ocibuild.jsonread import read_json
from ocibuild.progress import JobEvent, Message, Reporter, TaskEvent, silent
from ocibuild.store import Store
from ocibuild.study.fit import fit_runtime
from ocibuild.study.prepare import PreparedImage, plan_prepare, prepare_image, runtime_image
from ocibuild.study.scripts import OUT_FILE, RunLayout, job_script
from ocibuild.study.shifter import ROUTES
from ocibuild.study.slurm import JobState, follow, submit
from ocibuild.study.targets import Target, expand_scratch
from ocibuild.study.workload import StudySize, default_binary, ensure_workload, study_command

METADATA = "metadata.json"
HINTS = (None, "multithread", "nomultithread")
SCRIPT = "job.sh"
LOCAL_LOG = "job.log"
COLLECTED = ("*.db", OUT_FILE, "*.log")
_FIRST_EVENT = re.compile(rb"first event begins at ([0-9.]+)")
_HOST = re.compile(rb"art-study: host (\S+), cpu ([^\n]*)")
_EVENT = re.compile(rb"Begin processing the \d+\w\w record\. run: \d+ subRun: \d+ event: (\d+)")


@dataclass(frozen=True)
class BenchRequest:
    target: Target
    image: str | None = None
    archive: Path | None = None
    size: StudySize = field(default_factory=StudySize)
    command: str | None = None  # any workload writing a TimeTracker database; default: the study
    input_dir: Path | None = None  # copied into every task directory before the workload starts
    repeats: int = 1
    nodes: int = 1
    tasks_per_node: int = 1
    hint: str | None = None  # Slurm's --hint: multithread or nomultithread
    exclusive: bool = False  # Slurm's --exclusive: no other job on the nodes (scaling points)
    queue: str | None = None  # Slurm jobs of one queue name run one at a time (singleton)
    results_root: Path = Path("bench/results")
    argv: tuple[str, ...] = ()
    timeout: float | None = None
    via: str = "pull"  # Shifter: through a registry and the gateway's pull, or the gateway's import
    insecure: bool = False  # pushes for Shifter may use plain HTTP (a local registry)

    def __post_init__(self) -> None:
        if min(self.repeats, self.nodes, self.tasks_per_node) < 1:
            raise BenchError("--repeat, --nodes and --tasks-per-node must be at least 1")
        if self.via not in ROUTES:
            raise BenchError(f"unknown route --via {self.via} (one of {', '.join(ROUTES)})")
        if self.via != "pull" and self.target.runtime != "shifter":
            raise BenchError(
                f"--via {self.via} is a route of Shifter targets; {self.target.name} runs "
                f"{self.target.runtime}"
            )
        if self.hint not in HINTS:
            raise BenchError(f"--hint must be one of {', '.join(h for h in HINTS if h)}")
        if self.target.scheduler == "local" and self.nodes > 1:
            raise BenchError(f"target {self.target.name} runs here, on one node: --nodes must be 1")


@dataclass(frozen=True)
class RunPlan:
    run_id: str
    results_dir: Path
    host_workdir: Path  # the run directory as this host sees it
    layout: RunLayout
    command: str
    prepare: list[str]
    image: str | None = None  # as the job script names it

    def script(self, target: Target, image: str | None) -> str:
        return job_script(target, self.layout, image, self.command)


@dataclass(frozen=True)
class TaskResult:
    directory: str  # relative to the run directory
    databases: list[str]  # relative to the results directory
    events: int
    host: str | None = None
    cpu: str | None = None
    first_event_at: float | None = None


@dataclass(frozen=True)
class JobResult:
    job_id: str
    state: str
    exit_code: str | None
    submitted_at: float
    first_event_at: float | None
    log: str | None
    started: str | None = None  # Slurm's StartTime and EndTime
    ended: str | None = None

    @property
    def ok(self) -> bool:
        return self.state == "COMPLETED"

    @property
    def overhead(self) -> float | None:
        """Seconds from submission to the first event of the job."""
        return None if self.first_event_at is None else self.first_event_at - self.submitted_at


@dataclass(frozen=True)
class BenchRun:
    run_id: str
    results_dir: Path
    jobs: list[JobResult]
    tasks: list[TaskResult] = field(default_factory=list)

    @property
    def failed(self) -> list[JobResult]:
        return [j for j in self.jobs if not j.ok]


def new_run_id(target: Target) -> str:
    return f"{target.name}-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(2)}"


def workload_command(request: BenchRequest, build: bool = True) -> str:
    """The command each task runs; natively, the study runs from the host build (made if missing)."""
    if request.command:
        return request.command
    if request.target.runtime != "native":
        return study_command(request.size)
    return study_command(request.size, str(ensure_workload() if build else default_binary()))


def plan_run(
    request: BenchRequest,
    store: Store | None = None,
    run_id: str | None = None,
    dry_run: bool = False,
) -> RunPlan:
    target = request.target
    run_id = run_id or new_run_id(target)
    results_dir = (request.results_root / run_id).resolve()
    host_scratch = expand_scratch(target, results_dir.parent, required=not dry_run)
    host_workdir = host_scratch / run_id if target.scratch else results_dir / "work"
    script_workdir = f"{target.scratch}/{run_id}" if target.scratch else str(host_workdir)
    if any(c.isspace() for c in script_workdir):
        raise BenchError(f"the run directory {script_workdir!r} must not contain blanks")
    input_dir = str(request.input_dir.resolve()) if request.input_dir else None
    layout = RunLayout(
        run_id,
        script_workdir,
        request.repeats,
        request.nodes,
        request.tasks_per_node,
        request.hint,
        input_dir,
        request.exclusive,
        request.queue,
    )
    command = workload_command(request, build=not dry_run)
    required = not dry_run
    prepare = plan_prepare(
        target,
        request.image,
        request.archive,
        store,
        host_workdir,
        request.via,
        request.insecure,
        required,
    )
    image = runtime_image(target, request.image, host_workdir, store, request.via, required)
    return RunPlan(run_id, results_dir, host_workdir, layout, command, prepare, image)


def run_bench(
    request: BenchRequest,
    store: Store | None = None,
    report: Reporter = silent,
    run_id: str | None = None,
) -> BenchRun:
    (run,) = run_batch([request], store, report, [run_id])
    return run


def run_batch(
    requests: Sequence[BenchRequest],
    store: Store | None = None,
    report: Reporter = silent,
    run_ids: Sequence[str | None] | None = None,
    prepare_dir: Path | None = None,
) -> list[BenchRun]:
    """Run several requests of one target and image (a scaling grid): the image is prepared once
    (in `prepare_dir`, else the first run's directory); on Slurm every job is submitted before
    any is followed, so the jobs queue together; here, they run one after the other."""
    target = requests[0].target
    ids = list(run_ids) if run_ids is not None else [None] * len(requests)
    plans = [plan_run(r, store, i) for r, i in zip(requests, ids, strict=True)]
    env = {**os.environ, **target.env}
    for plan in plans:
        plan.results_dir.mkdir(parents=True, exist_ok=False)
        plan.host_workdir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    first = requests[0]
    image = PreparedImage(first.image, None)
    finished: list[BenchRun] = []
    try:
        image = prepare_image(
            target,
            first.image,
            env,
            prepare_dir or plans[0].host_workdir,
            first.archive,
            store,
            report,
            first.via,
            first.insecure,
        )
        if image.runtime_image:
            added = fit_runtime(target, image.runtime_image, env, report)
            image = dataclasses.replace(image, run_options=added)
        runs = dataclasses.replace(target, run_options=[*image.run_options, *target.run_options])
        scripts = []
        for plan in plans:
            report(Message(f"run {plan.run_id} on {target.name}: results in {plan.results_dir}"))
            script = plan.results_dir / SCRIPT
            atomic_write_bytes(script, plan.script(runs, image.runtime_image).encode(), mode=0o755)
            scripts.append(script)
        progress = [
            _Progress(plan, request, report) for plan, request in zip(plans, requests, strict=True)
        ]

        def poll() -> None:
            for p in progress:
                p.poll()

        timeout = first.timeout
        if target.scheduler == "slurm":
            jobs = _run_slurm(scripts, plans, env, poll, report, timeout)
        else:
            jobs = [
                _run_local(script, plan, env, progress[i].poll, report, timeout)
                for i, (script, plan) in enumerate(zip(scripts, plans, strict=True))
            ]
    except OcibuildError as e:
        # what was tried stays on record: the run directories, their metadata and the error
        for plan, request in zip(plans, requests, strict=True):
            write_metadata(
                BenchRun(plan.run_id, plan.results_dir, []), request, plan, image, started, str(e)
            )
        raise
    for plan, request, (job, submitted_at) in zip(plans, requests, jobs, strict=True):
        tasks = collect(plan)
        result = JobResult(
            job.job_id,
            job.state,
            job.exit_code,
            submitted_at,
            _first_event(tasks),
            job.stdout,
            job.start_time,
            job.end_time,
        )
        run = BenchRun(plan.run_id, plan.results_dir, [result], tasks)
        write_metadata(run, request, plan, image, started)
        finished.append(run)
    return finished


def _run_slurm(
    scripts: list[Path],
    plans: list[RunPlan],
    env: dict[str, str],
    poll: Callable[[], None],
    report: Reporter,
    timeout: float | None,
) -> list[tuple[JobState, float]]:
    submitted: list[tuple[str, float]] = []
    for script, plan in zip(scripts, plans, strict=True):
        submitted_at = time.time()
        job_id = submit(script, env, plan.results_dir)
        report(Message(f"submitted job {job_id} ({plan.run_id})"))
        submitted.append((job_id, submitted_at))

    def changed(job: JobState) -> None:
        report(JobEvent(job.job_id, job.state))

    final = follow([j for j, _ in submitted], env, changed, poll, timeout=timeout)
    results = []
    for (job_id, submitted_at), plan in zip(submitted, plans, strict=True):
        job = final[job_id]
        log = job.stdout or str(plan.results_dir / f"slurm-{job_id}.out")
        results.append((dataclasses.replace(job, stdout=log), submitted_at))
    return results


def _run_local(
    script: Path,
    plan: RunPlan,
    env: dict[str, str],
    poll: Callable[[], None],
    report: Reporter,
    timeout: float | None,
) -> tuple[JobState, float]:
    log = plan.results_dir / LOCAL_LOG
    submitted_at = time.time()
    deadline = None if timeout is None else time.monotonic() + timeout
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(script)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=plan.results_dir,
            start_new_session=True,
        )
    job_id = f"local-{proc.pid}"
    report(JobEvent(job_id, "RUNNING"))
    while proc.poll() is None:
        poll()
        if deadline is not None and time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
            raise BenchError(f"{script} did not finish in {timeout:.0f}s; see {log}")
        time.sleep(0.2)
    poll()
    state = "COMPLETED" if proc.returncode == 0 else "FAILED"
    report(JobEvent(job_id, state))
    return JobState(job_id, state, f"{proc.returncode}:0", stdout=str(log)), submitted_at


class _Progress:
    """Reports events done per task while jobs run, read from the tail of each task's out.txt."""

    def __init__(self, plan: RunPlan, request: BenchRequest, report: Reporter) -> None:
        self.plan = plan
        self.total = None if request.command else request.size.events
        self.report = report
        self.seen: dict[Path, int] = {}

    def poll(self) -> None:
        step = max(1, (self.total or 10) // 10)
        for out in sorted(self.plan.host_workdir.glob(f"r*/**/{OUT_FILE}")):
            done = _last_event(out)
            before = self.seen.get(out)
            self.seen[out] = done
            if done == before or (
                before is not None and done // step == before // step and done != self.total
            ):
                continue
            task = out.parent.relative_to(self.plan.host_workdir)
            self.report(TaskEvent(str(task), done, self.total))


def _tail(path: Path, size: int = 4096) -> bytes:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - size))
        return f.read()


def _last_event(out: Path) -> int:
    found = _EVENT.findall(_tail(out))
    return int(found[-1]) if found else 0


def _head(path: Path, size: int = 4096) -> bytes:
    with open(path, "rb") as f:
        return f.read(size)


def collect(plan: RunPlan) -> list[TaskResult]:
    """Per task directory: its timing databases, event count, host; copied into the results
    directory when the run directory is elsewhere (a site's scratch)."""
    tasks = []
    for out in sorted(plan.host_workdir.glob(f"r*/**/{OUT_FILE}")):
        task_dir = out.parent
        relative = task_dir.relative_to(plan.host_workdir)
        kept = plan.results_dir / "work" / relative
        if kept != task_dir:
            kept.mkdir(parents=True, exist_ok=True)
            for pattern in COLLECTED:
                for path in task_dir.glob(pattern):
                    shutil.copy2(path, kept / path.name)
        head = _head(out)
        first = _FIRST_EVENT.search(head)
        host = _HOST.search(head)
        tasks.append(
            TaskResult(
                directory=str(relative),
                databases=[str(p.relative_to(plan.results_dir)) for p in sorted(kept.glob("*.db"))],
                events=_last_event(out),
                host=host.group(1).decode(errors="replace") if host else None,
                cpu=host.group(2).decode(errors="replace").strip() if host else None,
                first_event_at=float(first.group(1)) if first else None,
            )
        )
    return tasks


def _first_event(tasks: list[TaskResult]) -> float | None:
    times = [t.first_event_at for t in tasks if t.first_event_at is not None]
    return min(times) if times else None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_metadata(
    run: BenchRun,
    request: BenchRequest,
    plan: RunPlan,
    image: PreparedImage,
    started: float,
    error: str | None = None,
) -> Path:
    target = request.target
    data: dict[str, Any] = {
        "run_id": run.run_id,
        "target": target.name,
        "target_file": target.file,
        "runtime": target.runtime,
        "scheduler": target.scheduler,
        "host": platform.node(),
        "cpu_model": cpu_model(),
        "image": {
            "ref": image.ref,
            "as_run": image.runtime_image,
            "digest": image.digest,
            "pushed_digest": image.pushed_digest,
            "runtime_id": image.image_id,
        },
        "via": request.via if target.runtime == "shifter" else None,
        "prepare": image.commands,
        "run_options_added": list(image.run_options),
        "job_ids": [j.job_id for j in run.jobs],
        "command": list(request.argv),
        "workload_command": plan.command,
        "size": None if request.command else dataclasses.asdict(request.size),
        "repeats": request.repeats,
        "nodes": request.nodes,
        "tasks_per_node": request.tasks_per_node,
        "hint": request.hint,
        "exclusive": request.exclusive,
        "one_at_a_time": request.queue is not None,
        "workdir": str(plan.host_workdir),
        "script": SCRIPT,
        "started_at": started,
        "finished_at": time.time(),
        "jobs": [{**dataclasses.asdict(j), "overhead_s": j.overhead} for j in run.jobs],
        "tasks": [dataclasses.asdict(t) for t in run.tasks],
        "error": error,
    }
    path = run.results_dir / METADATA
    atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())
    return path


def read_metadata(results_dir: Path) -> dict[str, Any]:
    path = results_dir / METADATA
    try:
        data = read_json(path.read_bytes(), str(path))
    except FileNotFoundError:
        raise BenchError(
            f"{results_dir} is not a bench results directory (no {METADATA})"
        ) from None
    except OSError as e:
        raise BenchError(f"{path}: cannot read: {e.strerror or e}") from None
    except ValueError as e:
        raise BenchError(f"cannot read: {e}") from None
    if not isinstance(data, dict) or "target" not in data:
        raise BenchError(f"{path}: not a bench metadata file (no 'target')")
    return data
