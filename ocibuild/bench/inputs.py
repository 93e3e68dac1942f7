"""What `ocibuild bench report` tabulates: results directories of `ocibuild bench` runs, and
TimeTracker databases made by hand (as in the paper), each named by its target:

    bench/results/podman-20261125T101500-1a2b      a run: its target from metadata.json
    cori=timing_01.db                              a database, tabulated as target "cori"
    cori=bench/results/cori-2026...                a run, under another name
    timing.db                                      a database, named after its file

Everything given for the same target is pooled (repeats, tasks, several runs).
"""

from __future__ import annotations

from pathlib import Path

from ocibuild.bench.report import TargetTimings
from ocibuild.bench.run import read_metadata
from ocibuild.bench.timing import TimingDb, read_timing_db
from ocibuild.errors import BenchError


def _databases(path: Path) -> tuple[str, list[Path]]:
    if path.is_dir():
        target = str(read_metadata(path)["target"])
        dbs = sorted(path.glob("work/**/*.db"))
        if not dbs:
            raise BenchError(
                f"{path}: the run has no timing database (did its jobs fail? see metadata.json)"
            )
        return target, dbs
    if not path.exists():
        raise BenchError(f"{path}: no such results directory or TimeTracker database")
    return path.stem, [path]


def load_inputs(args: list[str]) -> list[TargetTimings]:
    pooled: dict[str, list[TimingDb]] = {}
    for arg in args:
        name, sep, rest = arg.partition("=")
        if sep and name and "/" not in name:
            _, dbs = _databases(Path(rest))
        else:
            name, dbs = _databases(Path(arg))
        pooled.setdefault(name, []).extend(read_timing_db(db) for db in dbs)
    return [TargetTimings(name, tuple(dbs)) for name, dbs in pooled.items()]
