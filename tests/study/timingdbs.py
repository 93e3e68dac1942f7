"""TimeTracker databases with known values, in both art schemas."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def make_art1_db(path: Path, events: dict[int, dict[str, float]]) -> Path:
    """An art 1.x TimeTracker database: event number -> {"path:label:type": seconds}."""
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE TimeEvent (Run integer, Subrun integer, Event integer, Time numeric);"
        "CREATE TABLE TimeModule (Run integer, Subrun integer, Event integer, PathModuleId text, Time numeric);"
        "CREATE TABLE TimeReport (ReportType text, Min numeric, Mean numeric, Max numeric, Median numeric,"
        " RMS numeric, nEvts integer);"
    )
    for event, modules in events.items():
        conn.execute("INSERT INTO TimeEvent VALUES (1, 0, ?, ?)", (event, sum(modules.values())))
        for module, seconds in modules.items():
            conn.execute("INSERT INTO TimeModule VALUES (1, 0, ?, ?, ?)", (event, module, seconds))
    conn.commit()
    conn.close()
    return path


def make_art2_db(path: Path, events: dict[int, dict[str, float]]) -> Path:
    """An art >= 2.4 TimeTracker database (Path, ModuleLabel, ModuleType columns; TimeSource)."""
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE TimeSource (Run integer, SubRun integer, Event integer, Source text, Time numeric);"
        "CREATE TABLE TimeEvent (Run integer, SubRun integer, Event integer, Time numeric);"
        "CREATE TABLE TimeModule (Run integer, SubRun integer, Event integer, Path text, ModuleLabel text,"
        " ModuleType text, Time numeric);"
    )
    for event, modules in events.items():
        conn.execute("INSERT INTO TimeSource VALUES (1, 0, ?, 'EmptyEvent', 0.001)", (event,))
        conn.execute("INSERT INTO TimeEvent VALUES (1, 0, ?, ?)", (event, sum(modules.values())))
        for module, seconds in modules.items():
            path_, label, type_ = module.split(":", 2)
            conn.execute(
                "INSERT INTO TimeModule VALUES (1, 0, ?, ?, ?, ?, ?)",
                (event, path_, label, type_, seconds),
            )
    conn.commit()
    conn.close()
    return path
