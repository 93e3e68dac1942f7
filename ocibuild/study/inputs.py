"""What `ocibuild bench report` tabulates: results directories of `ocibuild bench` runs, and
TimeTracker databases made by hand (as in the paper), each named by its target:

    bench/results/podman-20261125T101500-1a2b      a run: its target from metadata.json
    cori=timing_01.db                              a database, tabulated as target "cori"
    cori=bench/results/cori-2026...                a run, under another name
    timing.db                                      a database, named after its file

Everything given for the same target is pooled (repeats, tasks, several runs). A run whose jobs
wrote no database (they failed) is skipped with a warning when other inputs remain, so that
`bench/results/*` still tabulates the runs that worked.
"""

from __future__ import annotations

from pathlib import Path

from ocibuild.errors import BenchError
from ocibuild.progress import Message, Reporter, silent
from ocibuild.study.report import TargetTimings
from ocibuild.study.run import read_metadata
from ocibuild.study.timing import TimingDb, read_timing_db


def _databases(path: Path) -> tuple[str, list[Path]]:
    if path.is_dir():
        target = str(read_metadata(path)["target"])
        return target, sorted(path.glob("work/**/*.db"))
    if not path.exists():
        raise BenchError(f"{path}: no such results directory or TimeTracker database")
    return path.stem, [path]


def load_inputs(args: list[str], report: Reporter = silent) -> list[TargetTimings]:
    pooled: dict[str, list[TimingDb]] = {}
    failed: list[str] = []
    for arg in args:
        name, sep, rest = arg.partition("=")
        if sep and name and "/" not in name:
            path = Path(rest)
            _, dbs = _databases(path)
        else:
            path = Path(arg)
            name, dbs = _databases(path)
        if not dbs:
            failed.append(
                f"{path}: the run has no timing database (did its jobs fail? see metadata.json)"
            )
            continue
        pooled.setdefault(name, []).extend(read_timing_db(db) for db in dbs)
    if failed and not pooled:
        raise BenchError(failed[0])
    for message in failed:
        report(Message(f"skipped {message}", level="warning"))
    return [TargetTimings(name, tuple(dbs)) for name, dbs in pooled.items()]
