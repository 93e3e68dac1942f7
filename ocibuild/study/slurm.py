"""Submit batch jobs with `sbatch --parsable` and follow them with `squeue` and `scontrol`
(no accounting database needed). `sbatch --wait` polls at 2, 8, 32 s; this polls squeue itself."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ocibuild.errors import BenchError
from ocibuild.study.prepare import run_command

ACTIVE_STATES = {
    "PENDING",
    "CONFIGURING",
    "RUNNING",
    "COMPLETING",
    "SUSPENDED",
    "REQUEUED",
    "RESIZING",
    "SIGNALING",
    "STAGE_OUT",
    "STOPPED",
    "RESV_DEL_HOLD",
    "REQUEUE_FED",
    "REQUEUE_HOLD",
}
UNKNOWN = "UNKNOWN"
MAX_POLL_FAILURES = 20


@dataclass(frozen=True)
class JobState:
    job_id: str
    state: str
    exit_code: str | None = None
    reason: str | None = None
    stdout: str | None = None
    start_time: str | None = None
    end_time: str | None = None

    @property
    def finished(self) -> bool:
        return self.state not in ACTIVE_STATES

    @property
    def ok(self) -> bool:
        return self.state == "COMPLETED"


def submit(script: Path, env: dict[str, str], cwd: Path) -> str:
    """Submit `script` from `cwd` (where Slurm writes slurm-JOBID.out); return the job id."""
    try:
        proc = subprocess.run(
            ["sbatch", "--parsable", str(script)],
            env=env,
            cwd=cwd,
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except FileNotFoundError:
        raise BenchError(
            "sbatch is not installed: Slurm targets need the Slurm client commands"
        ) from None
    if proc.returncode != 0:
        raise BenchError(f"sbatch refused {script} ({proc.returncode}):\n{proc.stderr.strip()}")
    job_id = proc.stdout.strip().split(";")[0]
    if not job_id.isdigit():
        raise BenchError(f"sbatch answered {proc.stdout.strip()!r} for {script}, not a job id")
    return job_id


def queued(job_ids: list[str], env: dict[str, str]) -> dict[str, str]:
    """Job id -> state, for the jobs squeue still shows."""
    out = run_command(
        ["squeue", "-h", "-o", "%i|%T", f"--jobs={','.join(job_ids)}"], env, "squeue", 60
    )
    states = {}
    for line in out.splitlines():
        job_id, _, state = line.strip().partition("|")
        if job_id in job_ids:
            states[job_id] = state
    return states


def _scontrol_show(what: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`scontrol show WHAT -o`: one record per line of KEY=VALUE words."""
    return subprocess.run(
        ["scontrol", "show", *what.split(), "-o"],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _fields(record: str) -> dict[str, str]:
    return dict(word.split("=", 1) for word in record.split() if "=" in word)


def show_job(job_id: str, env: dict[str, str]) -> JobState:
    """The job as `scontrol show job` describes it; UNKNOWN once Slurm has forgotten it."""
    proc = _scontrol_show(f"job {job_id}", env)
    if proc.returncode != 0:
        if "Invalid job id" in proc.stderr:
            return JobState(job_id, UNKNOWN, reason=proc.stderr.strip())
        raise BenchError(
            f"scontrol show job {job_id} failed ({proc.returncode}): {proc.stderr.strip()}"
        )
    fields = _fields(proc.stdout)
    return JobState(
        job_id,
        fields.get("JobState", UNKNOWN),
        exit_code=fields.get("ExitCode"),
        reason=fields.get("Reason"),
        stdout=fields.get("StdOut"),
        start_time=fields.get("StartTime"),
        end_time=fields.get("EndTime"),
    )


def nodes_share_a_machine(env: dict[str, str]) -> bool:
    """Whether the cluster's nodes are all one machine (several slurmd daemons on one host, as
    `bench local-slurm --nodes N` runs them), from `scontrol show node`."""
    proc = _scontrol_show("node", env)
    if proc.returncode != 0:
        return False  # sbatch reports what is wrong with the cluster
    nodes = [_fields(line) for line in proc.stdout.splitlines() if line.strip()]
    hosts = {n.get("NodeHostName") or n.get("NodeAddr") or n.get("NodeName") for n in nodes}
    return len(nodes) > 1 and len(hosts) == 1


def _poll(job_ids: list[str], env: dict[str, str]) -> list[JobState]:
    in_queue = queued(job_ids, env)
    return [
        JobState(job_id, in_queue[job_id])
        if in_queue.get(job_id) in ACTIVE_STATES
        else show_job(job_id, env)
        for job_id in job_ids
    ]


def follow(
    job_ids: list[str],
    env: dict[str, str],
    on_change: Callable[[JobState], None],
    on_poll: Callable[[], None] = lambda: None,
    interval: float = 0.5,
    timeout: float | None = None,
) -> dict[str, JobState]:
    """Poll until every job has finished; report each state change. Returns the final states."""
    last: dict[str, JobState] = {}
    pending = list(job_ids)
    deadline = None if timeout is None else time.monotonic() + timeout
    failures = 0
    while pending:
        try:
            polled = _poll(pending, env)
            failures = 0
        except BenchError:
            failures += 1  # slurmctld busy or restarting: try again, for a while
            if failures > MAX_POLL_FAILURES:
                raise
            polled = []
        for job in polled:
            job_id = job.job_id
            if job_id not in last or last[job_id].state != job.state:
                on_change(job)
            last[job_id] = job
            if job.finished:
                pending.remove(job_id)
        on_poll()
        if pending:
            if deadline is not None and time.monotonic() > deadline:
                raise BenchError(
                    f"jobs {', '.join(pending)} still not finished after {timeout:.0f}s"
                )
            time.sleep(interval)
    return last
