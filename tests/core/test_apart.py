"""Layers written in a process of their own (ocibuild.layer.apart): the same bytes as in a
thread, the job's outcome and errors brought back, a dead or cancelled child ended."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from ocibuild.compression import Compression
from ocibuild.errors import Cancelled, LayerError, SourceError
from ocibuild.layer.apart import write_apart
from ocibuild.layer.writer import write_layer
from testsupport.apart_jobs import Dies, Files, RaisesUnpicklable, Refused, Sleeps, file_entries

GZIP = Compression("gzip")


def apart(job: object, path: Path, cancel: threading.Event | None = None) -> tuple[object, object]:
    path.touch()
    seen: list[int] = []
    layer, outcome = write_apart(
        job, path, GZIP, 1451606400, seen.append, cancel or threading.Event()
    )  # type: ignore[arg-type]
    return (layer, seen), outcome


def test_a_layer_written_apart_is_the_layer_written_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCIBUILD_MAX_MEMBER_SIZE", "123456789")
    (layer, progress), (pid, limit) = apart(Files(40), tmp_path / "apart")  # type: ignore[misc]
    with open(tmp_path / "here", "wb") as sink:
        here = write_layer(file_entries(40), sink, GZIP, 1451606400)
    assert layer == here
    assert (tmp_path / "apart").read_bytes() == (tmp_path / "here").read_bytes()
    assert pid != os.getpid()
    assert limit == "123456789"  # the build's limits hold in the writer's process
    assert progress and progress[-1] == here.tar_size


def test_the_jobs_error_is_raised_as_it_was(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="member etc/evil is outside the package prefix"):
        apart(Refused(), tmp_path / "blob")


def test_an_error_that_cannot_travel_keeps_its_message(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match=r"a reader's own error \(3\)"):
        apart(RaisesUnpicklable(), tmp_path / "blob")


def test_a_writer_that_dies_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match="writer process ended with status 7"):
        apart(Dies(), tmp_path / "blob")


def test_a_cancelled_build_ends_its_writer(tmp_path: Path) -> None:
    cancel = threading.Event()
    pid_file = tmp_path / "pid"
    threading.Timer(1.0, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        apart(Sleeps(str(pid_file)), tmp_path / "blob", cancel)
    assert time.monotonic() - started < 10
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # ended and reaped
