"""The paper's tables from TimeTracker databases: Table 2 (median seconds per event of the worker
modules together and of the output module, per target, and speed relative to native) and a
per-module table, as Markdown and CSV.

A module is an output module when its type, without art >= 2.4's "(write)" suffix, ends in
"Output" (RootOutput, the study workload's ZlibOutput). art >= 2.4 records an output module twice
per event ("RootOutput" and "RootOutput(write)", overlapping in time): per event, a module label
counts once, with the longest of its rows.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ocibuild.study.timing import ModuleTime, TimingDb

WORKERS = "workers"
OUTPUT = "output"
FULL_EVENT = "Full event"


def is_output(module_type: str) -> bool:
    return module_type.removesuffix("(write)").endswith("Output")


@dataclass(frozen=True)
class TargetTimings:
    """Every database measured on one target (repeats and tasks are pooled)."""

    target: str
    dbs: tuple[TimingDb, ...]


@dataclass(frozen=True)
class EventSplit:
    """One event's time in the worker modules together and in the output module(s)."""

    workers: float
    output: float


@dataclass(frozen=True)
class Table2Row:
    target: str
    modules: str
    median: float
    relative: float | None
    events: int


@dataclass(frozen=True)
class ModuleRow:
    target: str
    module: str
    events: int
    median: float
    mean: float
    minimum: float
    maximum: float
    rms: float


def event_splits(db: TimingDb) -> list[EventSplit]:
    per_event: dict[tuple[int, int, int], dict[str, ModuleTime]] = defaultdict(dict)
    for row in db.modules:
        labels = per_event[row.event_id]
        if row.label not in labels or row.time > labels[row.label].time:
            labels[row.label] = row
    return [
        EventSplit(
            workers=sum(r.time for r in rows.values() if not is_output(r.type)),
            output=sum(r.time for r in rows.values() if is_output(r.type)),
        )
        for _, rows in sorted(per_event.items())
    ]


def target_splits(timings: TargetTimings) -> list[EventSplit]:
    return [split for db in timings.dbs for split in event_splits(db)]


def table2(targets: Sequence[TargetTimings], baseline: str = "native") -> list[Table2Row]:
    medians: dict[tuple[str, str], tuple[float, int]] = {}
    for t in targets:
        splits = target_splits(t)
        medians[t.target, WORKERS] = (statistics.median(s.workers for s in splits), len(splits))
        medians[t.target, OUTPUT] = (statistics.median(s.output for s in splits), len(splits))
    rows = []
    for modules in (WORKERS, OUTPUT):
        base = medians.get((baseline, modules))
        for t in targets:
            median, n = medians[t.target, modules]
            relative = base[0] / median if base and median > 0 else None
            rows.append(Table2Row(t.target, modules, median, relative, n))
    return rows


def module_table(targets: Sequence[TargetTimings]) -> list[ModuleRow]:
    rows = []
    for t in targets:
        by_module: dict[str, list[float]] = defaultdict(list)
        for db in t.dbs:
            by_module[FULL_EVENT].extend(db.event_times)
            for m in db.modules:
                by_module[m.id].append(m.time)
        for module, times in by_module.items():
            if times:
                rows.append(_module_row(t.target, module, times))
    return rows


def _module_row(target: str, module: str, times: list[float]) -> ModuleRow:
    mean = statistics.fmean(times)
    rms = statistics.fmean((x - mean) ** 2 for x in times) ** 0.5
    return ModuleRow(
        target, module, len(times), statistics.median(times), mean, min(times), max(times), rms
    )


def _relative(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def table2_markdown(rows: Iterable[Table2Row], baseline: str = "native") -> str:
    lines = [
        f"| test | modules | median time (sec/event) | speed relative to {baseline} (larger is faster) | events |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r.target} | {r.modules} | {r.median:.6g} | {_relative(r.relative) or '-'} | {r.events} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def table2_csv(rows: Iterable[Table2Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["test", "modules", "median_sec_per_event", "speed_relative", "events"])
    for r in rows:
        writer.writerow([r.target, r.modules, repr(r.median), _relative(r.relative), r.events])
    return out.getvalue()


_MODULE_FIELDS = ("median", "mean", "minimum", "maximum", "rms")


def module_markdown(rows: Iterable[ModuleRow]) -> str:
    lines = [
        "| test | module (path:label:type) | events | median (s) | mean (s) | min (s) | max (s) | RMS (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        values = " | ".join(f"{getattr(r, f):.6g}" for f in _MODULE_FIELDS)
        lines.append(f"| {r.target} | {r.module} | {r.events} | {values} |")
    return "\n".join(lines) + "\n"


def module_csv(rows: Iterable[ModuleRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["test", "module", "events", *_MODULE_FIELDS])
    for r in rows:
        writer.writerow(
            [r.target, r.module, r.events, *(repr(getattr(r, f)) for f in _MODULE_FIELDS)]
        )
    return out.getvalue()
