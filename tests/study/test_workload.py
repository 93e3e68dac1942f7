"""The study workload: built static by the bench, it writes zlib level-1 events and an art 1.x
TimeTracker database."""

from __future__ import annotations

import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from ocibuild.cli import main
from ocibuild.errors import BenchError
from ocibuild.study.report import TargetTimings, table2
from ocibuild.study.timing import ART1, read_timing_db
from ocibuild.study.workload import build_workload, is_static
from tests.study.conftest import REPO


def run_study(workload: Path, out: Path, *args: str) -> str:
    out.mkdir(exist_ok=True)
    proc = subprocess.run(
        [str(workload), "--output-dir", str(out), *args], capture_output=True, text=True, check=True
    )
    return proc.stdout


def test_built_static(workload: Path, tmp_path: Path) -> None:
    assert is_static(workload)
    assert not is_static(Path("/usr/bin/env"))  # a dynamic executable, for contrast
    out = tmp_path / "art-study"
    assert main(["bench", "build-workload", "-o", str(out)]) == 0
    assert is_static(out)
    assert out.stat().st_mode & 0o111
    assert not list(tmp_path.glob(".art-study.*"))  # no temporary left behind


def test_build_failure_is_clear(tmp_path: Path) -> None:
    source = tmp_path / "broken.c"
    source.write_text("int main(void) { return nope; }\n")
    with pytest.raises(
        BenchError, match=r"(?s)building .*broken.c failed .*libsqlite3-dev and zlib1g-dev:\n.*nope"
    ):
        build_workload(tmp_path / "out", source)
    assert not (tmp_path / "out").exists()


def test_timetracker_database(workload: Path, tmp_path: Path) -> None:
    stdout = run_study(
        workload, tmp_path / "out", "--events", "6", "--ints", "5000", "--modules", "4"
    )
    assert "Begin processing the 6th record. run: 1 subRun: 0 event: 6" in stdout
    assert "first event begins at" in stdout
    conn = sqlite3.connect(tmp_path / "out" / "timing.db")
    ids = [
        r[0] for r in conn.execute("SELECT DISTINCT PathModuleId FROM TimeModule ORDER BY rowid")
    ]
    assert ids == [
        "study:makeInts:IntVectorProducer",
        "study:work01:IntVectorQuantiles",
        "study:work02:IntVectorHistogrammer",
        "study:work03:IntVectorSmoother",
        "stream1:out1:ZlibOutput",
    ]
    assert conn.execute("SELECT count(*), count(DISTINCT Event) FROM TimeModule").fetchone() == (
        30,
        6,
    )
    assert conn.execute("SELECT count(*) FROM TimeEvent").fetchone() == (6,)
    report = {r[0]: r[1:] for r in conn.execute("SELECT * FROM TimeReport")}
    assert list(report) == ["Full event", *ids]
    times = sorted(r[0] for r in conn.execute("SELECT Time FROM TimeEvent"))
    minimum, mean, maximum, median, rms, n = report["Full event"]
    assert (minimum, maximum, n) == (times[0], times[-1], 6)
    assert median == pytest.approx((times[2] + times[3]) / 2)
    assert mean == pytest.approx(sum(times) / 6)
    assert rms == pytest.approx((sum((t - mean) ** 2 for t in times) / 6) ** 0.5)
    # each event's time covers its modules
    for event, total, modules in conn.execute(
        "SELECT e.Event, e.Time, sum(m.Time) FROM TimeEvent e JOIN TimeModule m USING (Event) GROUP BY e.Event"
    ):
        assert modules <= total, event
    db = read_timing_db(tmp_path / "out" / "timing.db")
    assert db.schema == ART1
    rows = table2([TargetTimings("native", (db,))])
    assert rows[0].events == 6
    assert rows[0].median > 0 and rows[1].median > 0


def test_events_file_is_one_zlib_stream(workload: Path, tmp_path: Path) -> None:
    run_study(
        workload,
        tmp_path / "out",
        "--events",
        "3",
        "--ints",
        "1000",
        "--modules",
        "2",
        "--run",
        "7",
    )
    data = zlib.decompress((tmp_path / "out" / "events.dat").read_bytes())
    offset, events = 0, []
    while offset < len(data):
        magic = data[offset : offset + 4]
        run, subrun, event, products = struct.unpack_from("<4I", data, offset + 4)
        offset += 20
        labels = []
        for _ in range(products):
            (length,) = struct.unpack_from("<I", data, offset)
            label = data[offset + 4 : offset + 4 + length].decode()
            (count,) = struct.unpack_from("<I", data, offset + 4 + length)
            offset += 8 + length + 4 * count
            labels.append((label, count))
        events.append((magic, run, subrun, event, labels))
    assert [e[:4] for e in events] == [(b"EVT1", 7, 0, 1), (b"EVT1", 7, 0, 2), (b"EVT1", 7, 0, 3)]
    assert events[0][4] == [("makeInts", 1000), ("work01", 11)]


def test_workload_refuses_bad_arguments(workload: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(workload), "--events", "x"], check=False, capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert "bad value for --events" in proc.stderr
    proc = subprocess.run(
        [str(workload), "--output-dir", str(tmp_path / "nope")],
        check=False,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert "output directory" in proc.stderr and "does not exist" in proc.stderr


def installed_copy(tmp_path: Path) -> Path:
    """ocibuild as a non-editable install lays it out: setuptools' build_py (what a wheel
    holds) of the package and its package data, outside any checkout."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src)
    shutil.copytree(
        REPO / "ocibuild", src / "ocibuild", ignore=shutil.ignore_patterns("__pycache__")
    )
    lib = tmp_path / "site-packages"
    subprocess.run(
        [sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "build_py",
         "--build-lib", str(lib)],
        cwd=src, check=True, capture_output=True,
    )  # fmt: skip
    shutil.rmtree(src)
    return lib


def run_installed(lib: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(lib), "OCIBUILD_CACHE": str(cwd / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "ocibuild", *args],
        cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip


def test_build_workload_works_from_a_non_editable_install(tmp_path: Path) -> None:
    lib = installed_copy(tmp_path)
    assert (lib / "ocibuild" / "study" / "art_study.c").is_file()
    # in a checkout (after `pip install .` there): where recipes/bench-study.yaml takes it from
    checkout = tmp_path / "checkout"
    (checkout / "recipes").mkdir(parents=True)
    shutil.copy(REPO / "recipes" / "bench-study.yaml", checkout / "recipes")
    shutil.copytree(
        REPO / "recipes" / "demo-shell", checkout / "recipes" / "demo-shell", symlinks=True
    )
    shutil.copytree(
        REPO / "bench" / "workloads" / "image",
        checkout / "bench" / "workloads" / "image",
        symlinks=True,
    )
    proc = run_installed(lib, checkout, "--store", "s", "recipe", "recipes/bench-study.yaml")
    assert proc.returncode == 1
    assert proc.stderr == (
        "error: recipes/bench-study.yaml:25:13: src '../bench/workloads/build/art-study' does not "
        f"exist ({checkout}/recipes/../bench/workloads/build/art-study): "
        "build it first: ocibuild bench build-workload\n"
    )
    proc = run_installed(lib, checkout, "bench", "build-workload")
    assert proc.returncode == 0, proc.stderr
    built = checkout / "bench" / "workloads" / "build" / "art-study"
    assert proc.stdout == f"{built}\n" and is_static(built)
    proc = run_installed(lib, checkout, "--store", "s", "recipe", "recipes/bench-study.yaml")
    assert proc.returncode == 0, proc.stderr
    # outside a checkout: into the cache
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = run_installed(lib, elsewhere, "bench", "build-workload")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{elsewhere / 'cache' / 'bench' / 'art-study'}\n"
