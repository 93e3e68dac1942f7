"""Read art TimeTracker SQLite databases, in art 1.x's schema and in art >= 2.4's.

art 1.x:   TimeModule (Run, Subrun, Event, PathModuleId, Time), PathModuleId = "path:label:type"
art >= 2.4: TimeModule (Run, SubRun, Event, Path, ModuleLabel, ModuleType, Time), plus TimeSource
Both have TimeEvent (Run, Subrun|SubRun, Event, Time). Times are seconds.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ocibuild.errors import BenchError

ART1 = "art 1.x"
ART2 = "art >= 2.4"


@dataclass(frozen=True)
class ModuleTime:
    """One TimeModule row: a module's time on one event."""

    run: int
    subrun: int
    event: int
    path: str
    label: str
    type: str
    time: float

    @property
    def id(self) -> str:
        return f"{self.path}:{self.label}:{self.type}"

    @property
    def event_id(self) -> tuple[int, int, int]:
        return (self.run, self.subrun, self.event)


@dataclass(frozen=True)
class TimingDb:
    file: str
    schema: str
    modules: tuple[ModuleTime, ...]
    event_times: tuple[float, ...]


def read_timing_db(path: Path | str) -> TimingDb:
    file = str(path)
    if not Path(file).is_file():
        raise BenchError(f"{file}: no such TimeTracker database")
    try:
        conn = sqlite3.connect(f"{Path(file).resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as e:
        raise BenchError(f"{file}: cannot open as SQLite: {e}") from None
    try:
        return _read(conn, file)
    except sqlite3.DatabaseError as e:
        raise BenchError(f"{file}: not a readable TimeTracker database: {e}") from None
    finally:
        conn.close()


def _columns(conn: sqlite3.Connection, table: str) -> dict[str, str]:
    """Lower-case column name -> the name as written (art changed Subrun to SubRun)."""
    return {row[1].lower(): row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _read(conn: sqlite3.Connection, file: str) -> TimingDb:
    module_cols = _columns(conn, "TimeModule")
    event_cols = _columns(conn, "TimeEvent")
    if not module_cols or not event_cols:
        missing = " and ".join(
            t for t, c in (("TimeModule", module_cols), ("TimeEvent", event_cols)) if not c
        )
        raise BenchError(f"{file}: not a TimeTracker database: no {missing} table")
    if "pathmoduleid" in module_cols:
        schema = ART1
        wanted = ["run", "subrun", "event", "pathmoduleid", "time"]
    elif {"path", "modulelabel", "moduletype"} <= module_cols.keys():
        schema = ART2
        wanted = ["run", "subrun", "event", "path", "modulelabel", "moduletype", "time"]
    else:
        raise BenchError(
            f"{file}: TimeModule has columns {', '.join(module_cols.values())}: expected art 1.x's "
            "PathModuleId or art >= 2.4's Path, ModuleLabel, ModuleType"
        )
    _require(file, "TimeModule", module_cols, wanted)
    _require(file, "TimeEvent", event_cols, ["time"])
    select = ", ".join(module_cols[c] for c in wanted)
    modules = [
        _module_row(file, schema, row) for row in conn.execute(f"SELECT {select} FROM TimeModule")
    ]
    if not modules:
        raise BenchError(f"{file}: the TimeModule table is empty: no module was timed")
    event_times = [
        _seconds(file, "TimeEvent", row[0])
        for row in conn.execute(f"SELECT {event_cols['time']} FROM TimeEvent")
    ]
    return TimingDb(file, schema, tuple(modules), tuple(event_times))


def _require(file: str, table: str, columns: dict[str, str], wanted: list[str]) -> None:
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise BenchError(f"{file}: table {table} lacks column(s) {', '.join(missing)}")


def _seconds(file: str, table: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BenchError(f"{file}: {table} has a Time that is not a number: {value!r}")
    return float(value)


def _module_row(file: str, schema: str, row: tuple[object, ...]) -> ModuleTime:
    run, subrun, event = (_integer(file, v) for v in row[:3])
    if schema == ART1:
        parts = str(row[3]).split(":", 2)
        if len(parts) != 3:
            raise BenchError(f"{file}: PathModuleId {row[3]!r} is not of the form path:label:type")
        path, label, type_ = parts
    else:
        path, label, type_ = (str(v) for v in row[3:6])
    return ModuleTime(run, subrun, event, path, label, type_, _seconds(file, "TimeModule", row[-1]))


def _integer(file: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BenchError(
            f"{file}: TimeModule has a Run/Subrun/Event that is not an integer: {value!r}"
        )
    return value
