"""Table 2, the per-module table and the plots, against databases with known values in both art
schemas; clear errors for missing and malformed databases."""

from __future__ import annotations

import csv
import io
import sqlite3
import sys
from pathlib import Path

import pytest

from ocibuild.cli import main
from ocibuild.errors import BenchError
from ocibuild.study import plots
from ocibuild.study.inputs import load_inputs
from ocibuild.study.report import (
    TargetTimings,
    event_splits,
    module_csv,
    module_table,
    table2,
    table2_csv,
    table2_markdown,
)
from ocibuild.study.timing import ART1, ART2, read_timing_db
from tests.study.timingdbs import make_art1_db, make_art2_db


def study_events(workers: list[float], output: list[float]) -> dict[int, dict[str, float]]:
    """Events whose two worker modules share `workers[i]` and whose output takes `output[i]`."""
    return {
        i + 1: {
            "p1:make:IntVectorProducer": w / 4,
            "p1:work:IntVectorSorter": 3 * w / 4,
            "stream1:out1:RootOutput": o,
        }
        for i, (w, o) in enumerate(zip(workers, output, strict=True))
    }


@pytest.fixture
def three_targets(tmp_path: Path) -> list[TargetTimings]:
    # medians: native workers 2.0 output 1.0; docker 2.5 / 0.8; cori (art >= 2.4 schema) 1.6 / 1.25
    native = make_art1_db(tmp_path / "native.db", study_events([1.0, 2.0, 9.0], [1.0, 0.5, 3.0]))
    docker = make_art1_db(tmp_path / "docker.db", study_events([2.5, 2.4, 2.6], [0.8, 0.7, 0.9]))
    cori_events = study_events([1.6, 1.5, 1.7, 1.6], [1.2, 1.3, 1.0, 1.4])
    for (
        modules
    ) in cori_events.values():  # art >= 2.4 also times the output's write, inside the module's time
        modules["stream1:out1:RootOutput(write)"] = modules["stream1:out1:RootOutput"] / 2
    cori = make_art2_db(tmp_path / "cori.db", cori_events)
    return load_inputs([f"native={native}", f"docker={docker}", f"cori={cori}"])


def test_reads_both_schemas(three_targets: list[TargetTimings]) -> None:
    native, _, cori = three_targets
    assert native.dbs[0].schema == ART1
    assert cori.dbs[0].schema == ART2
    row = next(m for m in cori.dbs[0].modules if m.type == "RootOutput(write)")
    assert (row.path, row.label, row.event) == ("stream1", "out1", 1)
    assert row.id == "stream1:out1:RootOutput(write)"


def test_table2_medians_and_speed_relative_to_native(three_targets: list[TargetTimings]) -> None:
    rows = {(r.target, r.modules): r for r in table2(three_targets)}
    assert rows["native", "workers"].median == pytest.approx(2.0)
    assert rows["native", "output"].median == pytest.approx(1.0)
    assert rows["docker", "workers"].median == pytest.approx(2.5)
    assert rows["docker", "workers"].relative == pytest.approx(2.0 / 2.5)
    assert rows["docker", "output"].relative == pytest.approx(1.0 / 0.8)
    # four events: the median is the mean of the middle two; the (write) row is not counted twice
    assert rows["cori", "workers"].median == pytest.approx(1.6)
    assert rows["cori", "output"].median == pytest.approx(1.25)
    assert rows["cori", "output"].relative == pytest.approx(0.8)
    assert rows["native", "workers"].relative == 1.0
    assert [r.modules for r in table2(three_targets)] == ["workers"] * 3 + ["output"] * 3


def test_table2_without_native_has_no_relative_speed(three_targets: list[TargetTimings]) -> None:
    rows = table2(three_targets[1:])
    assert all(r.relative is None for r in rows)
    assert "| docker | workers | 2.5 | - | 3 |" in table2_markdown(rows)
    assert table2(three_targets, baseline="docker")[1].relative == 1.0


def test_table2_markdown_and_csv(three_targets: list[TargetTimings]) -> None:
    rows = table2(three_targets)
    md = table2_markdown(rows).splitlines()
    assert md[0].startswith("| test | modules | median time (sec/event) | speed relative to native")
    assert "| docker | workers | 2.5 | 0.800 | 3 |" in md
    parsed = list(csv.DictReader(io.StringIO(table2_csv(rows))))
    docker_output = next(r for r in parsed if r["test"] == "docker" and r["modules"] == "output")
    assert float(docker_output["median_sec_per_event"]) == pytest.approx(0.8)
    assert float(docker_output["speed_relative"]) == pytest.approx(1.25)


def test_module_table(three_targets: list[TargetTimings]) -> None:
    rows = {(r.target, r.module): r for r in module_table(three_targets)}
    sorter = rows["native", "p1:work:IntVectorSorter"]
    assert sorter.events == 3
    assert sorter.median == pytest.approx(1.5)
    assert sorter.minimum == pytest.approx(0.75)
    assert sorter.maximum == pytest.approx(6.75)
    assert sorter.mean == pytest.approx(3.0)
    assert sorter.rms == pytest.approx(
        (((0.75 - 3) ** 2 + (1.5 - 3) ** 2 + (6.75 - 3) ** 2) / 3) ** 0.5
    )
    assert rows["native", "Full event"].median == pytest.approx(2.5)  # 2, 2.5, 12
    assert rows["cori", "stream1:out1:RootOutput(write)"].events == 4
    assert "docker,p1:make:IntVectorProducer,3," in module_csv(module_table(three_targets))


def test_same_target_pooled_across_inputs(tmp_path: Path) -> None:
    a = make_art1_db(tmp_path / "a.db", study_events([1.0], [1.0]))
    b = make_art1_db(tmp_path / "b.db", study_events([3.0, 5.0], [2.0, 2.0]))
    (timings,) = load_inputs([f"x={a}", f"x={b}"])
    assert len(timings.dbs) == 2
    assert table2([timings])[0].median == pytest.approx(3.0)


def test_event_splits_group_by_event(tmp_path: Path) -> None:
    db = read_timing_db(make_art1_db(tmp_path / "t.db", study_events([2.0, 4.0], [0.5, 0.25])))
    splits = event_splits(db)
    assert [(s.workers, s.output) for s in splits] == [(2.0, 0.5), (4.0, 0.25)]


def test_missing_database_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    with pytest.raises(BenchError, match=f"{missing}: no such"):
        read_timing_db(missing)
    with pytest.raises(
        BenchError, match=r"nope\.db: no such results directory or TimeTracker database"
    ):
        load_inputs([f"cori={missing}"])


def test_malformed_databases_name_the_file(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(BenchError, match=f"{garbage}: not a readable TimeTracker database"):
        read_timing_db(garbage)

    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE Something (x)").connection.commit()
    with pytest.raises(
        BenchError, match=f"{other}: not a TimeTracker database: no TimeModule and TimeEvent"
    ):
        read_timing_db(other)

    odd = tmp_path / "odd.db"
    conn = sqlite3.connect(odd)
    conn.executescript(
        "CREATE TABLE TimeEvent (Run, Subrun, Event, Time); CREATE TABLE TimeModule (Run, Who, Time);"
    )
    conn.close()
    with pytest.raises(BenchError, match=f"{odd}: TimeModule has columns Run, Who, Time"):
        read_timing_db(odd)

    bad_id = make_art1_db(tmp_path / "bad_id.db", {1: {"nocolons": 1.0}})
    with pytest.raises(
        BenchError, match=f"{bad_id}: PathModuleId 'nocolons' is not of the form path:label:type"
    ):
        read_timing_db(bad_id)

    bad_time = make_art1_db(tmp_path / "bad_time.db", {1: {"p:l:T": 1.0}})
    conn = sqlite3.connect(bad_time)
    conn.execute("UPDATE TimeModule SET Time = 'slow'")
    conn.commit()
    conn.close()
    with pytest.raises(
        BenchError, match=f"{bad_time}: TimeModule has a Time that is not a number: 'slow'"
    ):
        read_timing_db(bad_time)

    empty = make_art1_db(tmp_path / "empty.db", {})
    with pytest.raises(BenchError, match=f"{empty}: the TimeModule table is empty"):
        read_timing_db(empty)


def test_plots_are_pngs(three_targets: list[TargetTimings], tmp_path: Path) -> None:
    for draw, name in ((plots.figure2, "figure2.png"), (plots.figure3, "figure3.png")):
        out = draw(three_targets, tmp_path / name)
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert out.stat().st_size > 5000


def test_plots_without_matplotlib_say_so(
    three_targets: list[TargetTimings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(BenchError, match=r"plots need matplotlib.*pip install 'ocibuild\[plots\]'"):
        plots.figure3(three_targets, tmp_path / "figure3.png")
    assert not (tmp_path / "figure3.png").exists()


def test_report_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    native = make_art1_db(tmp_path / "timing_native.db", study_events([2.0, 2.0], [1.0, 1.0]))
    docker = make_art2_db(tmp_path / "timing_docker.db", study_events([4.0, 4.0], [1.0, 1.0]))
    out = tmp_path / "report"
    assert main(["bench", "report", f"native={native}", f"docker={docker}", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| docker | workers | 4 | 0.500 | 2 |" in printed
    assert sorted(p.name for p in out.iterdir()) == [
        "figure2.png",
        "figure3.png",
        "modules.csv",
        "modules.md",
        "table2.csv",
        "table2.md",
    ]
    assert "| native | p1:work:IntVectorSorter | 2 | 1.5 |" in (out / "modules.md").read_text()
    assert main(["bench", "report", str(tmp_path / "missing.db")]) == 1
    assert "missing.db: no such results directory" in capsys.readouterr().err


def test_a_failed_run_among_others_is_skipped_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bench report bench/results/*` after one failed run still tabulates the others."""
    results = tmp_path / "results"
    good, failed = results / "native-1", results / "podman-2"
    for run, target in ((good, "native"), (failed, "podman")):
        (run / "work" / "r01").mkdir(parents=True)
        (run / "metadata.json").write_text(f'{{"target": "{target}"}}')
    make_art1_db(good / "work" / "r01" / "timing.db", study_events([2.0], [1.0]))
    assert main(["bench", "report", str(good), str(failed)]) == 0
    out, err = capsys.readouterr()
    assert "| native | workers | 2 | 1.000 | 1 |" in out
    assert f"warning: skipped {failed}: the run has no timing database" in err
    assert main(["bench", "report", str(failed)]) == 1
    assert f"error: {failed}: the run has no timing database" in capsys.readouterr().err
