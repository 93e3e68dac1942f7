"""Job scripts: one per bench run, running the workload once per repeat, in N nodes x M tasks.

For a Charliecloud target each run is `ch-run --set-env -b DIR:/mnt IMAGE.sqfs -- /bin/sh -c
"cd /mnt; CMD >out.txt 2>&1"`, the image's Env coming from its /ch/environment.

For a Shifter target the script has the paper's form (listing 3.8):

    #!/bin/bash -l

    #SBATCH --image=docker:IMAGE
    #SBATCH --partition=debug
    #SBATCH --nodes=1
    #SBATCH --time=00:09:30

    shifter --volume=$SCRATCH/test_out:/mnt /bin/bash -cl "cd /mnt; CMD >out.txt 2>&1"

(`--image=custom:NAME:TAG` for an image imported into Shifter's gateway.)

Each repeat (and task) runs in a directory of its own: WORKDIR/rNN (WORKDIR/rNN/tMMM with more
than one task, MMM being Slurm's task rank). The workload's output goes to out.txt there.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from ocibuild.study.targets import Target

OUT_FILE = "out.txt"
# Runtimes that need $USER, which a batch job's environment may lack, and why.
NEEDS_USER = {
    "charliecloud": "ch-run refuses to start without it",
    "podman-hpc": "podman-hpc exits without it when it has no terminal",
}


@dataclass(frozen=True)
class RunLayout:
    run_id: str
    workdir: str  # as the script writes it; may hold $VARIABLES the job's shell expands
    repeats: int = 1
    nodes: int = 1
    tasks_per_node: int = 1
    hint: str | None = None  # Slurm's --hint (multithread: tasks may use hyperthreads)
    input_dir: str | None = None  # copied into every task directory before the workload starts
    exclusive: bool = False  # whole nodes: no other job beside the tasks
    # jobs of the same `queue` name run one after another (Slurm's --dependency=singleton)
    queue: str | None = None

    @property
    def tasks(self) -> int:
        return self.nodes * self.tasks_per_node

    def repeat_dir(self, repeat: int) -> str:
        return f"{self.workdir}/r{repeat:02d}"

    def task_dirs(self, repeat: int) -> list[str]:
        base = self.repeat_dir(repeat)
        return [base] if self.tasks == 1 else [f"{base}/t{t:03d}" for t in range(self.tasks)]

    def make_dir(self, directory: str) -> str:
        line = f"mkdir -p {directory}"
        return (
            f"{line} && cp -R {shlex.quote(self.input_dir)}/. {directory}/"
            if self.input_dir
            else line
        )


def double_quoted(text: str) -> str:
    """`text` inside double quotes, taken literally by the shell that reads the script."""
    return '"' + re.sub(r'([\\"$`])', r"\\\1", text) + '"'


def redirected(command: str) -> str:
    """`command >out.txt 2>&1`, as the paper writes it; a list of commands is grouped first."""
    if re.search(r"[;&|\n]", command):
        command = f"{{ {command}; }}"
    return f"{command} >{OUT_FILE} 2>&1"


def run_line(target: Target, image: str | None, host_dir: str, command: str) -> str:
    """The shell line running `command` once, in `host_dir` (mounted at the target's mount)."""
    inner = f"cd {target.mount}; {redirected(command)}"
    runtime = shlex.join(target.runtime_command)
    shell = shlex.join(target.inner_shell)
    options = "".join(f"{shlex.quote(o)} " for o in target.run_options)
    volume = f"{host_dir}:{target.mount}"
    if target.runtime == "native":
        return f"(cd {host_dir} && {redirected(command)})"
    assert image, f"runtime {target.runtime} needs an image"
    if target.runtime == "shifter":
        return f"{runtime} {options}--volume={volume} {shell} {double_quoted(inner)}"
    if target.runtime == "apptainer":
        return f"{runtime} exec {options}--bind {volume} {shlex.quote(image)} {shell} {double_quoted(inner)}"
    if target.runtime == "charliecloud":
        return f"{runtime} {options}--set-env -b {volume} {shlex.quote(image)} -- {shell} {double_quoted(inner)}"
    return f"{runtime} run --rm {options}-v {volume} {shlex.quote(image)} {shell} {double_quoted(inner)}"


def sbatch_directives(target: Target, layout: RunLayout, image: str | None) -> list[str]:
    slurm = target.batch
    options = []
    if target.runtime == "shifter":
        options.append(f"--image={image}")  # docker:NAME or custom:NAME, as Shifter takes it
    if slurm.partition:
        options.append(f"--partition={slurm.partition}")
    options.append(f"--nodes={layout.nodes}")
    if layout.tasks_per_node > 1:
        options.append(f"--ntasks-per-node={layout.tasks_per_node}")
    options.append(f"--time={slurm.time}")
    for name in ("constraint", "account", "qos"):
        value = getattr(slurm, name)
        if value:
            options.append(f"--{name}={value}")
    if layout.hint:
        options.append(f"--hint={layout.hint}")
    if layout.exclusive:
        options.append("--exclusive")
    if layout.queue:
        options.append(f"--job-name=ocibench-{layout.queue}")
        options.append("--dependency=singleton")
    else:
        options.append(f"--job-name=ocibench-{layout.run_id.replace('/', '-')}")
    options += slurm.directives
    return [f"#SBATCH {o}" for o in options]


def job_script(target: Target, layout: RunLayout, image: str | None, command: str) -> str:
    lines = [f"#!{target.shell}", ""]
    if target.scheduler == "slurm":
        lines += [*sbatch_directives(target, layout, image), ""]
    lines.append("set -e")
    if target.runtime in NEEDS_USER:
        lines.append(f'export USER="${{USER:-$(id -un)}}"  # {NEEDS_USER[target.runtime]}')
    lines += target.batch.setup
    for repeat in range(1, layout.repeats + 1):
        lines += _repeat_lines(target, layout, image, command, repeat)
    return "\n".join(lines) + "\n"


def _repeat_lines(
    target: Target, layout: RunLayout, image: str | None, command: str, repeat: int
) -> list[str]:
    if layout.tasks == 1:
        (directory,) = layout.task_dirs(repeat)
        return [layout.make_dir(directory), run_line(target, image, directory, command)]
    if target.scheduler == "slurm":
        per_task = (
            f'd={layout.repeat_dir(repeat)}/t$(printf %03d "$SLURM_PROCID"); {layout.make_dir("$d")}; '
            + run_line(target, image, "$d", command)
        )
        return [
            f"srun --nodes={layout.nodes} --ntasks-per-node={layout.tasks_per_node} "
            f"/bin/sh -c {shlex.quote(per_task)}"
        ]
    lines = ["pids="]
    for directory in layout.task_dirs(repeat):
        lines += [
            layout.make_dir(directory),
            run_line(target, image, directory, command) + " &",
            'pids="$pids $!"',
        ]
    lines.append('for p in $pids; do wait "$p"; done')
    return lines
