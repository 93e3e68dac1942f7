"""`ocibuild bench`: the timing study (run it on a target, tabulate and plot the results)."""

from __future__ import annotations

import shlex
import signal
import threading
from contextlib import suppress
from pathlib import Path

import click

from ocibuild.atomicfile import atomic_write_bytes
from ocibuild.bench import plots
from ocibuild.bench.inputs import load_inputs
from ocibuild.bench.localslurm import local_slurm
from ocibuild.bench.report import (
    module_csv,
    module_markdown,
    module_table,
    table2,
    table2_csv,
    table2_markdown,
)
from ocibuild.bench.run import BenchRequest, BenchRun, plan_run, run_bench
from ocibuild.bench.shifter import ROUTES
from ocibuild.bench.targets import find_target, target_dirs
from ocibuild.bench.workload import StudySize, build_workload
from ocibuild.cli.display import CliState
from ocibuild.errors import BenchError, StoreError
from ocibuild.store import Store

LOG_TAIL = 3000


@click.group("bench", invoke_without_command=True)
@click.option("-t", "--target", help="Target name (bench/targets/NAME.yaml) or a target YAML file.")
@click.option("--image", help="Image reference; taken from the ocibuild store when it is there.")
@click.option(
    "--archive",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="docker-archive/oci-archive to load instead of pulling the image.",
)
@click.option(
    "--repeat",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Runs, one after the other.",
)
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
    "--hyperthreads", is_flag=True, help="Let tasks use hyperthreads (#SBATCH --hint=multithread)."
)
@click.option("--events", type=click.IntRange(1), default=StudySize.events, show_default=True)
@click.option(
    "--ints",
    type=click.IntRange(1),
    default=StudySize.ints,
    show_default=True,
    help="Integers per event.",
)
@click.option(
    "--modules",
    type=click.IntRange(1),
    default=StudySize.modules,
    show_default=True,
    help="Worker modules.",
)
@click.option(
    "--command",
    "workload",
    help="Run this instead of the study (any command writing a TimeTracker .db, e.g. 'lar -c job.fcl').",
)
@click.option(
    "--input",
    "input_dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Directory copied into every task directory first (e.g. .fcl files).",
)
@click.option(
    "--results",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("bench/results"),
    show_default=True,
    help="Where run directories go.",
)
@click.option(
    "--targets-dir",
    type=click.Path(path_type=Path, file_okay=False),
    multiple=True,
    help="More directories of target files.",
)
@click.option(
    "--via",
    type=click.Choice(ROUTES),
    default="pull",
    show_default=True,
    help="Shifter targets: pull (the image pushed in Docker form from the store, then "
    "`shifterimg pull docker:IMAGE`) or import (exported as a squashfs, imported through the "
    "gateway's doimport; jobs use --image=custom:NAME:TAG).",
)
@click.option(
    "--insecure", is_flag=True, help="Pushes for Shifter may use plain HTTP (a local registry)."
)
@click.option("--timeout", type=float, help="Give up following the jobs after this many seconds.")
@click.option(
    "--dry-run", is_flag=True, help="Print what would be prepared and the job script; run nothing."
)
@click.pass_context
def bench(
    ctx: click.Context,
    target: str | None,
    image: str | None,
    archive: Path | None,
    repeat: int,
    nodes: int,
    tasks_per_node: int,
    hyperthreads: bool,
    events: int,
    ints: int,
    modules: int,
    workload: str | None,
    input_dir: Path | None,
    results: Path,
    targets_dir: tuple[Path, ...],
    via: str,
    insecure: bool,
    timeout: float | None,
    dry_run: bool,
) -> None:
    """The timing study of "Docker use case for HEP": run the workload on TARGET (natively, in
    podman or docker, or as a Slurm job with Shifter, podman-hpc, apptainer or podman), follow the
    jobs, and collect timings into RESULTS/<run-id>/.

    \b
      ocibuild bench --target native
      ocibuild bench --target podman --image localhost/ocibuild/bench-study:latest --repeat 3
      ocibuild bench --target cori --image docker.io/me/bench-study:latest --nodes 4 --tasks-per-node 32
      ocibuild bench --target perlmutter --image docker.io/me/bench-study:latest --via import
      ocibuild bench report bench/results/*
    """
    if ctx.invoked_subcommand is not None:
        return
    if not target:
        raise click.UsageError(
            "give --target (or a subcommand: report, targets, build-workload, local-slurm)"
        )
    state: CliState = ctx.obj
    request = BenchRequest(
        target=find_target(target, list(targets_dir)),
        image=image,
        archive=archive,
        size=StudySize(events, ints, modules),
        command=workload,
        input_dir=input_dir,
        repeats=repeat,
        nodes=nodes,
        tasks_per_node=tasks_per_node,
        hyperthreads=hyperthreads,
        results_root=results,
        argv=_command_line(ctx),
        timeout=timeout,
        via=via,
        insecure=insecure,
    )
    store = _store(state)
    if dry_run:
        plan = plan_run(request, store, dry_run=True)
        for step in plan.prepare:
            click.echo(f"# prepare: {step}")
        click.echo(f"# script: {plan.results_dir / 'job.sh'}")
        click.echo(plan.script(request.target, plan.image), nl=False)
        return
    run = run_bench(request, store, state.reporter())
    _summary(run)


def _command_line(ctx: click.Context) -> tuple[str, ...]:
    """The bench command as given (its options that differ from the defaults), for the metadata."""
    args = ["ocibuild", "bench"]
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


def _summary(run: BenchRun) -> None:
    for job in run.jobs:
        overhead = (
            f", {job.overhead:.2f}s from submission to first event"
            if job.overhead is not None
            else ""
        )
        click.echo(f"job {job.job_id}: {job.state} (exit {job.exit_code}){overhead}")
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
def report_command(
    runs: tuple[str, ...], output: Path | None, baseline: str, draw_plots: bool
) -> None:
    """Tabulate RUNS: results directories, or TimeTracker databases as TARGET=FILE.db.

    Prints the paper's Table 2 (median seconds per event of the worker modules together and of
    the output module, and speed relative to the baseline); with -o, writes it and the per-module
    table as Markdown and CSV, and Figure 2 and Figure 3 as PNG.
    """
    timings = load_inputs(list(runs))
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
        atomic_write_bytes(output / name, text.encode())
    written = ["table2.md", "table2.csv", "modules.md", "modules.csv"]
    if draw_plots:
        written += [
            plots.figure2(timings, output / "figure2.png").name,
            plots.figure3(timings, output / "figure3.png").name,
        ]
    click.echo(f"wrote {', '.join(written)} to {output}")


@bench.command("targets")
@click.option("--targets-dir", type=click.Path(path_type=Path, file_okay=False), multiple=True)
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
def local_slurm_command(
    directory: Path, cpus: int | None, spank: tuple[Path, ...], feature: tuple[str, ...]
) -> None:
    """Run a single-node Slurm (munged, slurmctld, slurmd) under DIRECTORY until interrupted."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with local_slurm(directory, cpus, spank, feature) as cluster:
        click.echo(
            f"Slurm is up: export SLURM_CONF={shlex.quote(str(cluster.conf))}  (Ctrl-C stops it)"
        )
        with suppress(KeyboardInterrupt):
            stop.wait()
    click.echo("Slurm stopped")


COMMANDS = [bench]
