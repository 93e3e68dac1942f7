"""`ocibuild bench`: the timing study (run it on a target, tabulate and plot the results)."""

from __future__ import annotations

import os
import shlex
import signal
import threading
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

import click

from ocibuild.cli.display import CliState
from ocibuild.errors import BenchError, StoreError
from ocibuild.outpath import output_report_dir, write_output
from ocibuild.store import Store
from ocibuild.study import plots
from ocibuild.study.inputs import load_inputs
from ocibuild.study.localslurm import local_slurm
from ocibuild.study.report import (
    module_csv,
    module_markdown,
    module_table,
    table2,
    table2_csv,
    table2_markdown,
)
from ocibuild.study.run import BenchRequest, BenchRun, RunPlan, plan_run, run_bench
from ocibuild.study.scalereport import (
    load_scaling,
    scaling_csv,
    scaling_markdown,
    scaling_table,
    shared_host_note,
)
from ocibuild.study.scaling import (
    grid,
    is_scaling_dir,
    parse_counts,
    parse_hints,
    plan_scaling,
    point_request,
    run_scaling,
)
from ocibuild.study.shifter import ROUTES
from ocibuild.study.targets import find_target, target_dirs
from ocibuild.study.workload import StudySize, build_workload

LOG_TAIL = 3000
F = TypeVar("F", bound=Callable[..., Any])


_STUDY_OPTIONS = [
    click.option(
        "-t", "--target", help="Target name (bench/targets/NAME.yaml) or a target YAML file."
    ),
    click.option(
        "--image", help="Image reference; taken from the ocibuild store when it is there."
    ),
    click.option(
        "--archive",
        type=click.Path(path_type=Path, dir_okay=False, exists=True),
        help="docker-archive/oci-archive to load instead of pulling the image.",
    ),
    click.option(
        "--repeat",
        type=click.IntRange(1),
        default=1,
        show_default=True,
        help="Runs, one after the other.",
    ),
    click.option(
        "--events",
        type=click.IntRange(1),
        default=StudySize.events,
        show_default=True,
        help="Events per task.",
    ),
    click.option(
        "--ints",
        type=click.IntRange(1),
        default=StudySize.ints,
        show_default=True,
        help="Integers per event.",
    ),
    click.option(
        "--modules",
        type=click.IntRange(1),
        default=StudySize.modules,
        show_default=True,
        help="Worker modules.",
    ),
    click.option(
        "--command",
        "workload",
        help="Run this instead of the study (any command writing a TimeTracker .db, e.g. 'lar -c job.fcl').",
    ),
    click.option(
        "--input",
        "input_dir",
        type=click.Path(path_type=Path, file_okay=False, exists=True),
        help="Directory copied into every task directory first (e.g. .fcl files).",
    ),
    click.option(
        "--results",
        type=click.Path(path_type=Path, file_okay=False),
        default=Path("bench/results"),
        show_default=True,
        help="Where run directories go.",
    ),
    click.option(
        "--targets-dir",
        type=click.Path(path_type=Path, file_okay=False),
        multiple=True,
        help="More directories of target files.",
    ),
    click.option(
        "--via",
        type=click.Choice(ROUTES),
        default="pull",
        show_default=True,
        help="Shifter targets: pull (the image pushed in Docker form from the store, then "
        "`shifterimg pull docker:IMAGE`) or import (exported as a squashfs, imported through the "
        "gateway's doimport; jobs use --image=custom:NAME:TAG).",
    ),
    click.option(
        "--insecure",
        is_flag=True,
        help="Pushes for Shifter may use plain HTTP and unverified TLS with any registry "
        "(loopback, localhost and *.local ones need no flag).",
    ),
    click.option(
        "--timeout", type=float, help="Give up following the jobs after this many seconds."
    ),
    click.option(
        "--dry-run",
        is_flag=True,
        help="Print what would be prepared and the job script; run nothing.",
    ),
]


def study_options(command: F) -> F:
    """The options of a study run, shared by `bench` and `bench scaling`."""
    for option in reversed(_STUDY_OPTIONS):
        command = option(command)
    return command


@click.group("bench", invoke_without_command=True)
@study_options
@click.option(
    "--nodes", type=click.IntRange(1), default=1, show_default=True, help="Nodes of the job."
)
@click.option(
    "--tasks-per-node",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Workload copies per node, each in its own output directory.",
)
@click.option(
    "--hyperthreads",
    is_flag=True,
    help="Let tasks use hyperthreads (#SBATCH --hint=multithread; same as --hint multithread).",
)
@click.option(
    "--hint",
    type=click.Choice(["multithread", "nomultithread"]),
    help="Slurm's --hint for the job's tasks.",
)
@click.pass_context
def bench(
    ctx: click.Context,
    nodes: int,
    tasks_per_node: int,
    hyperthreads: bool,
    hint: str | None,
    **study: Any,
) -> None:
    """The timing study of "Docker use case for HEP": run the workload on TARGET (natively, in
    podman, docker or Charliecloud, or as a Slurm job with Shifter, podman-hpc, apptainer or
    podman), follow the jobs, and collect timings into RESULTS/<run-id>/.

    \b
      ocibuild bench --target native
      ocibuild bench --target podman --image localhost/ocibuild/bench-study:latest --repeat 3
      ocibuild bench --target cori --image docker.io/me/bench-study:latest --nodes 4 --tasks-per-node 32
      ocibuild bench --target perlmutter --image docker.io/me/bench-study:latest --via import
      ocibuild bench scaling --target slurm --image IMG --nodes 1,2,4 --tasks-per-node 1,2
      ocibuild bench report bench/results/*
    """
    if ctx.invoked_subcommand is not None:
        return
    if hyperthreads and hint == "nomultithread":
        raise click.UsageError("--hyperthreads and --hint nomultithread contradict each other")
    request = _request(
        ctx, study, nodes, tasks_per_node, hint or ("multithread" if hyperthreads else None)
    )
    state: CliState = ctx.obj
    store = _store(state)
    if study["dry_run"]:
        plan = plan_run(request, store, dry_run=True)
        _print_plan(request, plan)
        return
    run = run_bench(request, store, state.reporter())
    _summary(run)


def _request(
    ctx: click.Context, study: dict[str, Any], nodes: int, tasks_per_node: int, hint: str | None
) -> BenchRequest:
    if not study["target"]:
        raise click.UsageError(
            "give --target (or a subcommand: scaling, report, targets, build-workload, local-slurm)"
        )
    return BenchRequest(
        target=find_target(study["target"], list(study["targets_dir"])),
        image=study["image"],
        archive=study["archive"],
        size=StudySize(study["events"], study["ints"], study["modules"]),
        command=study["workload"],
        input_dir=study["input_dir"],
        repeats=study["repeat"],
        nodes=nodes,
        tasks_per_node=tasks_per_node,
        hint=hint,
        results_root=study["results"],
        argv=_command_line(ctx),
        timeout=study["timeout"],
        via=study["via"],
        insecure=study["insecure"],
    )


def _print_plan(request: BenchRequest, plan: RunPlan) -> None:
    for step in plan.prepare:
        click.echo(f"# prepare: {step}")
    click.echo(f"# script: {plan.results_dir / 'job.sh'}")
    click.echo(plan.script(request.target, plan.image), nl=False)


@bench.command("scaling")
@study_options
@click.option(
    "--nodes",
    default="1",
    show_default=True,
    help="Node counts of the grid, comma-separated (e.g. 1,2,4).",
)
@click.option(
    "--tasks-per-node",
    default="1",
    show_default=True,
    help="Tasks per node of the grid, comma-separated (e.g. 1,2,16,32).",
)
@click.option(
    "--hint",
    "hints",
    help="Hyperthreads as one more axis: multithread, nomultithread or both, comma-separated "
    "(Slurm's --hint).",
)
@click.option(
    "--one-at-a-time",
    is_flag=True,
    help="Run the points' jobs one after another (--dependency=singleton), e.g. to keep them "
    "off a shared file system at the same time. Automatic when the nodes are one machine.",
)
@click.pass_context
def scaling_command(
    ctx: click.Context,
    nodes: str,
    tasks_per_node: str,
    hints: str | None,
    one_at_a_time: bool,
    **study: Any,
) -> None:
    """The scaling study (the paper's section 5.1): one job per point of the grid NODES x
    TASKS-PER-NODE (x HINT), submitted together, followed to the end, collected into
    RESULTS/<scaling-id>/<point>/; then the scaling table (`bench report` redraws it). Each job
    asks for whole nodes (--exclusive).

    \b
      ocibuild bench scaling --target slurm --image IMG --nodes 1,2,4 --tasks-per-node 1,2
      ocibuild bench scaling --target cori --image IMG --nodes 4 --tasks-per-node 32 \\
          --hint multithread,nomultithread --dry-run
    """
    points = grid(
        parse_counts(nodes, "--nodes"),
        parse_counts(tasks_per_node, "--tasks-per-node"),
        parse_hints(hints),
    )
    request = _request(ctx, study, 1, 1, None)
    state: CliState = ctx.obj
    store = _store(state)
    if study["dry_run"]:
        planned = plan_scaling(request, points, store, dry_run=True, one_at_a_time=one_at_a_time)
        for point, plan in planned:
            click.echo(f"# grid point {point.name}: {point.tasks} tasks")
            _print_plan(point_request(request, point), plan)
        return
    study_run = run_scaling(request, points, store, state.reporter(), one_at_a_time=one_at_a_time)
    for run in study_run.runs:
        _jobs_summary(run)
    _scaling_report(study_run.results_dir, None, draw_plots=False)
    click.echo(f"results: {study_run.results_dir}")
    failed = [run for run in study_run.runs if run.failed]
    if failed:
        raise BenchError(
            "jobs failed: "
            + ", ".join(
                f"{j.job_id} ({run.run_id}) {j.state}" for run in failed for j in run.failed
            )
        )


def _scaling_report(root: Path, output: Path | None, draw_plots: bool) -> list[str]:
    tasks = load_scaling(root)
    rows = scaling_table(tasks)
    note = shared_host_note(tasks, os.cpu_count())
    click.echo(f"scaling study {root.name}:")
    click.echo(scaling_markdown(rows, note), nl=False)
    if output is None:
        return []
    # studies made by `bench scaling` are named scaling-...; a renamed one gets the prefix
    prefix = root.name if root.name.startswith("scaling-") else f"scaling-{root.name}"
    write_output(output / f"{prefix}.md", scaling_markdown(rows, note).encode())
    write_output(output / f"{prefix}.csv", scaling_csv(rows).encode())
    written = [f"{prefix}.md", f"{prefix}.csv"]
    if draw_plots:
        written.append(plots.scaling_figure(rows, output / f"{prefix}.png").name)
    return written


def _command_line(ctx: click.Context) -> tuple[str, ...]:
    """The bench command as given (its options that differ from the defaults), for the metadata."""
    args = ctx.command_path.split()
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if (
            value in (None, False, ())
            or value == param.default
            or not isinstance(param, click.Option)
        ):
            continue
        option = max(param.opts, key=len)
        if param.is_flag:
            args.append(option)
        else:
            args += [a for v in (value if param.multiple else [value]) for a in (option, str(v))]
    return tuple(args)


def _store(state: CliState) -> Store | None:
    try:
        return state.store(create=False)
    except StoreError:
        return None


def _tail(path: Path) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        return f"({path}: {e.strerror})"
    return text[-LOG_TAIL:].rstrip() or "(empty)"


def _jobs_summary(run: BenchRun) -> None:
    for job in run.jobs:
        overhead = (
            f", {job.overhead:.2f}s from submission to first event"
            if job.overhead is not None
            else ""
        )
        click.echo(f"job {job.job_id}: {job.state} (exit {job.exit_code}){overhead}")


def _summary(run: BenchRun) -> None:
    _jobs_summary(run)
    try:
        timings = load_inputs([str(run.results_dir)])
    except BenchError as e:
        timings = []
        click.echo(f"no timings: {e}", err=True)
    if timings:
        click.echo(table2_markdown(table2(timings)), nl=False)
    click.echo(f"results: {run.results_dir}")
    if run.failed:
        logs = []
        for job in run.failed:
            if job.log:
                logs.append(f"--- {job.log}\n{_tail(Path(job.log))}")
            for out in sorted(run.results_dir.glob("work/**/out.txt")):
                logs.append(f"--- {out}\n{_tail(out)}")
        states = ", ".join(f"job {j.job_id} {j.state} (exit {j.exit_code})" for j in run.failed)
        raise BenchError(f"{states}\n" + "\n".join(logs))


@bench.command("report")
@click.argument("runs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write table2.md/.csv, modules.md/.csv and the plots here.",
)
@click.option(
    "--baseline", default="native", show_default=True, help="The target speeds are relative to."
)
@click.option(
    "--plots/--no-plots",
    "draw_plots",
    default=True,
    show_default=True,
    help="Draw Figure 2 and Figure 3 (needs matplotlib: pip install 'ocibuild[plots]').",
)
@click.pass_obj
def report_command(
    state: CliState, runs: tuple[str, ...], output: Path | None, baseline: str, draw_plots: bool
) -> None:
    """Tabulate RUNS: results directories, scaling studies, or TimeTracker databases as
    TARGET=FILE.db.

    Prints the paper's Table 2 (median seconds per event of the worker modules together and of
    the output module, and speed relative to the baseline); with -o, writes it and the per-module
    table as Markdown and CSV, and Figure 2 and Figure 3 as PNG. A scaling study's directory
    (`bench scaling`) gets its own table instead: per grid point, the median of each task's
    per-event medians, speedup and efficiency relative to one task, and how the workers and the
    output module slow down with concurrency (and, with -o, scaling-ID.md/.csv/.png).
    """
    if output is not None:
        output = output_report_dir(output)
    studies = [Path(r) for r in runs if is_scaling_dir(Path(r))]
    for root in studies:
        written = _scaling_report(root, output, draw_plots)
        if written:
            click.echo(f"wrote {', '.join(written)} to {output}")
    runs = tuple(r for r in runs if Path(r) not in studies)
    if not runs:
        return
    timings = load_inputs(list(runs), state.reporter())
    rows = table2(timings, baseline)
    click.echo(table2_markdown(rows, baseline), nl=False)
    if output is None:
        return
    modules = module_table(timings)
    for name, text in (
        ("table2.md", table2_markdown(rows, baseline)),
        ("table2.csv", table2_csv(rows)),
        ("modules.md", module_markdown(modules)),
        ("modules.csv", module_csv(modules)),
    ):
        write_output(output / name, text.encode())
    written = ["table2.md", "table2.csv", "modules.md", "modules.csv"]
    if draw_plots:
        written += [
            plots.figure2(timings, output / "figure2.png").name,
            plots.figure3(timings, output / "figure3.png").name,
        ]
    click.echo(f"wrote {', '.join(written)} to {output}")


@bench.command("targets")
@click.option(
    "--targets-dir",
    type=click.Path(path_type=Path, file_okay=False),
    multiple=True,
    help="More directories of target files (before $OCIBUILD_BENCH_TARGETS and ./bench/targets).",
)
def targets_command(targets_dir: tuple[Path, ...]) -> None:
    """List the targets found by name, and where they come from."""
    seen = set()
    for directory in target_dirs(list(targets_dir)):
        for path in sorted(directory.glob("*.yaml")) if directory.is_dir() else []:
            if path.stem in seen:
                continue
            seen.add(path.stem)
            t = find_target(str(path))
            click.echo(f"{t.name:24} {t.runtime:10} {t.scheduler:6} {t.description}  [{path}]")


@bench.command("build-workload")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write it [default: bench/workloads/build/art-study of the checkout, where "
    "recipes/bench-study.yaml takes it from; outside a checkout, the cache].",
)
@click.option("--cc", default="gcc", show_default=True, help="C compiler.")
def build_workload_command(output: Path | None, cc: str) -> None:
    """Compile the study workload (art_study.c, shipped with ocibuild) as one static binary."""
    click.echo(build_workload(output, cc=cc))


@bench.command("local-slurm")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option("--cpus", type=click.IntRange(1), help="CPUs of the node [default: this machine's].")
@click.option(
    "--spank",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    multiple=True,
    help="A SPANK plugin to load (e.g. a site's Shifter plugin).",
)
@click.option(
    "--feature", multiple=True, help="A node feature, for targets with a constraint (e.g. haswell)."
)
@click.option(
    "--nodes",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Nodes, each a slurmd of its own on this machine (they share its cores).",
)
def local_slurm_command(
    directory: Path, cpus: int | None, spank: tuple[Path, ...], feature: tuple[str, ...], nodes: int
) -> None:
    """Run a Slurm (munged, slurmctld, one slurmd per node) under DIRECTORY until interrupted."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with local_slurm(directory, cpus, spank, feature, nodes=nodes) as cluster:
        click.echo(
            f"Slurm is up: export SLURM_CONF={shlex.quote(str(cluster.conf))}  (Ctrl-C stops it)"
        )
        with suppress(KeyboardInterrupt):
            stop.wait()
    click.echo("Slurm stopped")


COMMANDS = [bench]
