"""The paper's Figure 2 (per-module time per event, per target) and Figure 3 (worker modules
together vs the output module, per target) as PNG files. matplotlib is an optional extra
(`pip install 'ocibuild[plots]'`): it is imported only here, only when a plot is drawn."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ocibuild.errors import BenchError
from ocibuild.outpath import output_file
from ocibuild.study.report import TargetTimings, target_splits
from ocibuild.study.scalereport import ScalingRow


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise BenchError(
            "plots need matplotlib, which is not installed: pip install 'ocibuild[plots]' "
            "(or ask for the tables only)"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _grouped_boxes(
    ax: Any, groups: list[str], targets: Sequence[str], data: dict[tuple[str, str], list[float]]
) -> None:
    width = 0.8 / max(len(targets), 1)
    for i, target in enumerate(targets):
        positions = [g + (i - (len(targets) - 1) / 2) * width for g in range(len(groups))]
        values = [data.get((group, target), []) or [float("nan")] for group in groups]
        boxes = ax.boxplot(
            values,
            positions=positions,
            widths=width * 0.9,
            patch_artist=True,
            showfliers=True,
            flierprops={"markersize": 2},
        )
        color = f"C{i}"
        for box in boxes["boxes"]:
            box.set_facecolor(color)
            box.set_alpha(0.6)
        ax.plot([], [], color=color, linewidth=6, alpha=0.6, label=target)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, rotation=30, ha="right")
    ax.legend()


def figure2(targets: Sequence[TargetTimings], out: Path) -> Path:
    """Time per event of each module (named by its type, as in the paper), per target."""
    plt = _pyplot()
    data: dict[tuple[str, str], list[float]] = defaultdict(list)
    groups: list[str] = []
    for t in targets:
        for db in t.dbs:
            for m in db.modules:
                name = f"{m.label}:{m.type}"
                if name not in groups:
                    groups.append(name)
                data[name, t.target].append(m.time)
    width = min(24.0, max(8.0, 0.35 * len(groups) * max(len(targets), 1)))
    fig, ax = plt.subplots(figsize=(width, 5))
    _grouped_boxes(ax, groups, [t.target for t in targets], data)
    ax.set_yscale("log")  # module times span orders of magnitude
    ax.set_ylabel("time per event (s)")
    ax.set_title("Module timing per event, per platform")
    return _save(plt, fig, out)


def figure3(targets: Sequence[TargetTimings], out: Path) -> Path:
    """Worker modules together vs the output module, time per event, per target."""
    plt = _pyplot()
    data: dict[tuple[str, str], list[float]] = {}
    for t in targets:
        splits = target_splits(t)
        data["workers", t.target] = [s.workers for s in splits]
        data["output", t.target] = [s.output for s in splits]
    fig, ax = plt.subplots(figsize=(8, 5))
    _grouped_boxes(ax, ["workers", "output"], [t.target for t in targets], data)
    ax.set_ylabel("time per event (s)")
    ax.set_title("Worker modules vs output module, per platform")
    return _save(plt, fig, out)


def _save(plt: Any, fig: Any, out: Path) -> Path:
    fig.tight_layout()
    with output_file(out) as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    return out


def scaling_figure(rows: Sequence[ScalingRow], out: Path) -> Path:
    """Against concurrency (tasks in all): the speedup (with the ideal line), the efficiency, and
    the per-event medians of the worker modules and of the output module; one line per node
    count and hint."""
    plt = _pyplot()
    series: dict[str, list[ScalingRow]] = defaultdict(list)
    for r in rows:
        hint = f", {r.point.hint}" if r.point.hint else ""
        series[f"{r.point.nodes} node{'s' if r.point.nodes > 1 else ''}{hint}"].append(r)
    fig, (ax_speed, ax_eff, ax_time) = plt.subplots(1, 3, figsize=(15, 4.5))
    most = max(r.point.tasks for r in rows)
    ax_speed.plot([1, most], [1, most], color="grey", linestyle=":", label="ideal")
    for i, (label, points) in enumerate(series.items()):
        points = sorted(points, key=lambda r: r.point.tasks)
        tasks = [r.point.tasks for r in points]
        color = f"C{i}"
        ax_speed.plot(tasks, [r.speedup for r in points], "o-", color=color, label=label)
        ax_eff.plot(tasks, [r.efficiency for r in points], "o-", color=color, label=label)
        ax_time.plot(
            tasks, [r.workers for r in points], "o-", color=color, label=f"workers, {label}"
        )
        ax_time.plot(
            tasks, [r.output for r in points], "s--", color=color, label=f"output, {label}"
        )
    ax_speed.set_title("Speedup (events/s relative to one task)")
    ax_eff.set_title("Efficiency (speedup / tasks)")
    ax_eff.set_ylim(bottom=0)
    ax_time.set_title("Median time per event")
    ax_time.set_ylabel("s/event")
    for ax in (ax_speed, ax_eff, ax_time):
        ax.set_xlabel("concurrent tasks")
        ax.legend(fontsize="small")
    return _save(plt, fig, out)
